from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated

import phonenumbers
from phonenumbers import PhoneNumberType
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from graam_pbx.fields import E164, Flag
from graam_pbx.numbers.models import NumberStatus, NumberType

# What the catalogue sells, by libphonenumber's own classification of each number.
# FIXED_LINE_OR_MOBILE is what the North American plan (and a few others) answers when the
# number alone cannot tell: those numbers sit in geographic area codes and are rated as
# such, so they are sold as geographic. Premium-rate, pager, voicemail-access and unknown
# numbers are never sold: they are refused.
_SOLD_TYPES: dict[int, NumberType] = {
    PhoneNumberType.FIXED_LINE: NumberType.GEOGRAPHIC,
    PhoneNumberType.FIXED_LINE_OR_MOBILE: NumberType.GEOGRAPHIC,
    PhoneNumberType.MOBILE: NumberType.MOBILE,
    PhoneNumberType.TOLL_FREE: NumberType.TOLL_FREE,
    PhoneNumberType.SHARED_COST: NumberType.NATIONAL,
    PhoneNumberType.VOIP: NumberType.NATIONAL,
    PhoneNumberType.PERSONAL_NUMBER: NumberType.NATIONAL,
    PhoneNumberType.UAN: NumberType.NATIONAL,
}


@dataclass(frozen=True)
class Classification:
    """Where a number belongs and what kind it is, as libphonenumber sees it."""

    country: str
    number_type: NumberType


def classify(e164: str) -> Classification:
    """The country and type of a number in E.164 form; ValueError when it is not sold."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        raise ValueError("not a number in E.164 form (+ and country code)") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid telephone number")
    # The parser skips punctuation and trailing text: only the exact E.164 form is a number.
    if phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) != e164:
        raise ValueError("not a number in E.164 form (+ and country code)")
    region = phonenumbers.region_code_for_number(parsed)
    if region is None or region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError("not a number of one country (non-geographic numbers are not sold)")
    kind = phonenumbers.number_type(parsed)
    sold = _SOLD_TYPES.get(kind)
    if sold is None:
        name = PhoneNumberType.to_string(kind).lower().replace("_", "-")
        raise ValueError(f"{name} numbers are not sold")
    return Classification(region, sold)


def _sellable(e164: str) -> str:
    classify(e164)
    return e164


Currency = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    Field(examples=["EUR"], description="ISO 4217 code, 3 upper-case letters"),
]
Money = Annotated[
    Decimal,
    Field(
        ge=0,
        max_digits=12,
        decimal_places=4,
        examples=["1.5000"],
        description="A decimal string (or number), at most 4 decimals; never rounded",
    ),
]


class CatalogueNumberIn(BaseModel):
    """One number the operator offers; country and type are derived from the number."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"e164": "+33142685300", "monthly_price": "1.50", "currency": "EUR"}]
        },
    )

    e164: Annotated[E164, AfterValidator(_sellable)]
    monthly_price: Money
    currency: Currency


MAX_CATALOGUE_BATCH = 1000


class CatalogueNumberOut(BaseModel):
    """A catalogue entry as the operator sees it, holder included."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    e164: str
    country: str
    number_type: NumberType
    monthly_price: Decimal
    currency: str
    status: NumberStatus
    tenant_id: int | None
    assigned_at: datetime | None
    released_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class AvailableNumberOut(BaseModel):
    """A number any tenant may buy."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    e164: str
    country: str
    number_type: NumberType
    monthly_price: Decimal
    currency: str


class NumberPurchase(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"e164": "+33142685300"}]}
    )

    e164: E164


class NumberRelease(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"port_out": False}]})

    port_out: Flag = Field(
        False,
        description="Keep the number for the tenant's port-out request: it is never sold again.",
    )


class NumberOut(BaseModel):
    """One of the tenant's numbers."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    e164: str
    country: str
    number_type: NumberType
    monthly_price: Decimal
    currency: str
    status: NumberStatus
    assigned_at: datetime | None
    released_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
