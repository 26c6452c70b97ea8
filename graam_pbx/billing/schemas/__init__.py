"""Billing API schemas (pydantic), one module per area."""
