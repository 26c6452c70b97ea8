"""The operator's API of Asterisk nodes and tenants' placements."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["cluster"])
