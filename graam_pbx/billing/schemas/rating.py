"""Billing API schemas: rating runs and unrated calls."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from graam_pbx.fields import MAX_ID

FIRST_MONTH = date(2000, 1, 1)
LAST_MONTH = date(2999, 12, 1)


def _first_of_month(value: date) -> date:
    if value.day != 1:
        raise ValueError("a billing month is written as its first day, YYYY-MM-01")
    if not FIRST_MONTH <= value <= LAST_MONTH:
        raise ValueError("a billing month between 2000-01-01 and 2999-12-01")
    return value


# A billing month: its first day (YYYY-MM-01).
Month = Annotated[
    date,
    AfterValidator(_first_of_month),
    Field(description="The billing month, as its first day (YYYY-MM-01).", examples=["2026-11-01"]),
]


class RatingRunCreate(BaseModel):
    """Rate (again) a billing month's calls not yet invoiced, of one tenant or all."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"month": "2026-11-01", "tenant_id": 12}]}
    )

    month: Month
    tenant_id: int | None = Field(None, ge=1, le=MAX_ID, description="Only this tenant's calls.")


class RatingReportOut(BaseModel):
    month: date
    tenant_id: int | None
    rated: int = Field(description="Calls given a price in this run.")
    unrated: int = Field(description="Calls no rate matched: flagged, amount empty.")


class UnratedCallOut(BaseModel):
    cdr_id: int
    tenant_id: int
    to_number: str
    origin: str = Field(description="The caller ID's country, else the tenant's.")
    destination_country: str
    type: str = Field(description="The destination's number type.")
    started_at: datetime
    billsec: Decimal = Field(description="Exact seconds.")
    billed_seconds: int
