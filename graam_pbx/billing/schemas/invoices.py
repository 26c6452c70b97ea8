"""Billing API schemas: invoices, credit notes and month-end runs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from graam_pbx.fields import MessageText

InvoiceKind = Literal["invoice", "credit_note"]


class InvoiceLineOut(BaseModel):
    """One line; ``amount`` is ``exact_amount`` rounded to the cent, once."""

    position: int
    kind: str = Field(description="plan, number, user, licence or calls.")
    label: str
    quantity: Decimal = Field(description="Items, or billed minutes for a calls line.")
    unit_price: Decimal | None = Field(description="Monthly price per item; none for calls.")
    exact_amount: Decimal = Field(description="Before the line's single rounding.")
    amount: Decimal
    country: str | None
    number_type: str | None
    calls: int | None = Field(description="Calls on a calls line.")
    billed_seconds: int | None = Field(description="Billed seconds on a calls line.")


class InvoiceOut(BaseModel):
    """An invoice or a credit note (``credits_invoice_id``: the invoice it cancels)."""

    id: int
    number: str = Field(examples=["F2026-000001"])
    kind: InvoiceKind
    tenant_id: int
    credits_invoice_id: int | None
    period_start: date
    period_end: date = Field(description="Last day of the period (inclusive).")
    issued_on: date
    due_on: date
    currency: str
    locale: str
    tax_status: str
    vat_rate: Decimal = Field(description="Percent.")
    net_total: Decimal
    vat_total: Decimal
    total: Decimal
    paid_amount: Decimal
    paid_on: date | None
    vat_mention: str | None = Field(description="Why no VAT is charged, where none is.")


class InvoiceDetail(InvoiceOut):
    """An invoice with its lines and the seller's and buyer's identities as issued."""

    lines: list[InvoiceLineOut]
    seller: dict[str, object]
    buyer: dict[str, object]


class InvoicingRunCreate(BaseModel):
    """A month-end run now: every ended month not invoiced yet, or ``month`` only."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"month": "2026-11-01"}]}
    )

    month: date | None = Field(
        None, description="The first day of a billing month: invoice that month only."
    )

    @field_validator("month")
    @classmethod
    def _first_of_month(cls, value: date | None) -> date | None:
        if value is not None and value.day != 1:
            raise ValueError("must be the first day of a month")
        return value


class RunFailure(BaseModel):
    tenant_id: int
    month: date


class InvoicingRunOut(BaseModel):
    """What the run made, and what it could not bill."""

    invoice_ids: list[int]
    unrated_calls: int = Field(description="Calls no rate matched: not invoiced, to be rated.")
    warnings: list[str] = Field(description="Items left off for want of a price.")
    failed: list[RunFailure]


class CreditNoteCreate(BaseModel):
    """Why the invoice is cancelled (kept in the audit log)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "Licences billed twice in March."}]},
    )

    reason: MessageText
