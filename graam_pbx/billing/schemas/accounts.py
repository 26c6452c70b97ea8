"""Billing API schemas: billing accounts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from graam_pbx.billing.accounts import siren_problem, vat_problem
from graam_pbx.billing.schemas.prices import IsoDate
from graam_pbx.fields import Country, DisplayText, Email, MessageText


def _siren(value: str) -> str:
    problem = siren_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _vat(value: str) -> str:
    problem = vat_problem(value)
    if problem:
        raise ValueError(problem)
    return value


Siren = Annotated[
    str,
    AfterValidator(_siren),
    Field(examples=["732829320"], description="9 digits (Luhn's check)"),
]
VatNumber = Annotated[
    str,
    Field(max_length=20),
    AfterValidator(_vat),
    Field(
        examples=["FR44732829320"],
        description="FR + 2 check digits + SIREN, or another EU country's VAT prefix (EL for "
        "Greece) + 2 to 12 characters",
    ),
]


class AccountWrite(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "legal_name": "Acme SAS",
                    "address": "1 rue de la Paix\n75002 Paris",
                    "country": "FR",
                    "siren": "732829320",
                    "vat_number": "FR44732829320",
                    "tax_status": "fr",
                    "billing_email": "billing@acme.example",
                    "locale": "fr",
                }
            ]
        },
    )

    legal_name: DisplayText
    address: Annotated[MessageText, Field(max_length=1000)]
    country: Country
    siren: Siren | None = None
    vat_number: VatNumber | None = None
    tax_status: Literal["fr", "eu_business", "outside_eu"] = Field(
        description="fr: French VAT; eu_business: reverse charge (an EU country other than "
        "France, VAT number required); outside_eu: out of scope of EU VAT."
    )
    billing_email: Email = Field(description="Where invoices are sent.")
    locale: Literal["fr", "en"] = "fr"
    subscribed_on: IsoDate | None = Field(
        None,
        description="Operators only (others may resend it unchanged): the first period "
        "starts on it. Absent on creation: the day the tenant was created.",
    )
    grace_days: Annotated[int, Field(ge=0, le=365, strict=True)] | None = Field(
        None,
        description="Operators only: days after an invoice's due date before suspension "
        "(15 when first absent).",
    )


class AccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    tenant_id: int
    legal_name: str
    address: str
    country: str
    siren: str | None
    vat_number: str | None
    tax_status: str
    billing_email: str
    locale: str
    subscribed_on: date
    grace_days: int
    notice_given_on: date | None
    terminates_on: date | None
    suspended_for_payment_at: datetime | None
    version: int
