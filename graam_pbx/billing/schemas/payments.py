"""Billing API schemas: payments."""
