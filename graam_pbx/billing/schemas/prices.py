"""Billing API schemas: plans and monthly prices."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from graam_pbx.fields import Country, DisplayText, ObjectName
from graam_pbx.numbers.models import NumberType


def _iso_date_only(value: object) -> object:
    # pydantic also reads a number as seconds since 1970; the API documents ISO 8601 only.
    if not isinstance(value, date) and not (
        isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value)
    ):
        raise ValueError("write an ISO 8601 date, e.g. 2027-03-01")
    return value


# A day as ISO 8601 text (YYYY-MM-DD).
IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]

MonthlyAmount = Annotated[
    Decimal,
    Field(
        ge=0,
        max_digits=14,
        decimal_places=4,
        allow_inf_nan=False,
        examples=["12.5000"],
        description="A decimal string, at most 4 decimals, excluding VAT; never rounded",
    ),
]


class PlanCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"code": "premium", "name": "Premium"}]}
    )

    code: ObjectName = Field(description="What a tenant's plan names (a-z, 0-9, _ and -).")
    name: DisplayText


class PlanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str


class PriceCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "item": "number",
                    "plan_code": None,
                    "country": "FR",
                    "number_type": "geographic",
                    "amount": "1.5000",
                    "currency": "EUR",
                    "effective_on": "2027-03-01",
                }
            ]
        },
    )

    item: Literal["plan", "number", "user", "licence"] = Field(
        description="plan: the plan's own monthly price; number: per number of a country and "
        "type; user: per user authorised; licence: per call-centre licence."
    )
    plan_code: ObjectName | None = Field(
        None, description="The plan it is for (required for item plan); null: every plan."
    )
    country: Country | None = Field(None, description="Numbers only: the number's country.")
    number_type: NumberType | None = Field(None, description="Numbers only: the number's type.")
    amount: MonthlyAmount
    currency: Literal["EUR"] = "EUR"
    effective_on: IsoDate = Field(
        description="At least one month after publication, except an item's very first price "
        "(which may take effect today)."
    )


class PriceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    item: str
    plan_code: str | None
    country: str | None
    number_type: str | None
    amount: Decimal = Field(description="A decimal string (JSON), excluding VAT.")
    currency: str
    effective_on: date
    published_at: datetime
    notice_id: int | None = Field(
        description="The notice sent to the tenants it concerns (null: none was needed)."
    )
    in_force: bool = Field(description="Whether it is in force today (else upcoming or past).")
