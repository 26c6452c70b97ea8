"""Billing API schemas: accounts."""
