"""Billing API: documents."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])
