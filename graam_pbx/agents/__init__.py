"""Agents' SIP devices (and, later, their sessions)."""
