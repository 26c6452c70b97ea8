"""Billing API schemas: rates."""
