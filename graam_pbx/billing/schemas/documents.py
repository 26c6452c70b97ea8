"""Billing API schemas: documents."""
