"""Forwarding: calls the switch sends on to numbers outside it (external numbers)."""
