"""Pydantic models of the campaigns API, one module per area."""
