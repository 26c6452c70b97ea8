"""Billing API schemas: retention."""
