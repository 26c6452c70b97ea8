"""Billing API schemas: termination."""
