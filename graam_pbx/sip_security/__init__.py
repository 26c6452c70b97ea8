"""Blocking SIP sources that keep failing to authenticate (Asterisk's security events)."""
