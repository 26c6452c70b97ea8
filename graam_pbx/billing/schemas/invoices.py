"""Billing API schemas: invoices."""
