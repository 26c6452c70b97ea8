"""Greetings and announcements: tenants' own audio."""
