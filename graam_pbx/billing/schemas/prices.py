"""Billing API schemas: prices."""
