"""Tenants: the companies a call centre operator sells service to."""
