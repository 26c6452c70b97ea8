"""Voicemail boxes."""
