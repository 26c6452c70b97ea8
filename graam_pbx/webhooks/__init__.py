"""Webhooks: a tenant's events delivered to its HTTP endpoints, signed, at least once."""
