"""Billing API schemas: payments, disputes, legal interest rates, the statement."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from graam_pbx.billing.payments import InvoiceStatus
from graam_pbx.fields import DisplayText, MessageText


def _decimal_string(value: Any) -> Any:
    # Money travels as a decimal string ("120.50"): a JSON number may already be a binary
    # fraction by the time it is parsed.
    if not isinstance(value, str):
        raise ValueError('a decimal string, e.g. "120.50"')
    return value


Amount = Annotated[
    Decimal,
    BeforeValidator(_decimal_string, json_schema_input_type=str),
    Field(
        gt=0,
        max_digits=12,
        decimal_places=2,
        allow_inf_nan=False,
        description="Euros, a decimal string with at most 2 decimals.",
        examples=["120.50"],
    ),
]

Percent = Annotated[
    Decimal,
    BeforeValidator(_decimal_string, json_schema_input_type=str),
    Field(
        ge=0,
        lt=100,
        max_digits=6,
        decimal_places=3,
        allow_inf_nan=False,
        description="Percent a year, a decimal string with at most 3 decimals.",
        examples=["2.76"],
    ),
]


class PaymentCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"amount": "1200.00", "received_on": "2025-10-05", "reference": "SEPA 8812"}
            ]
        },
    )

    amount: Amount
    received_on: date = Field(description="The day the money reached the operator's account.")
    reference: DisplayText | Literal[""] = Field("", description="The bank's reference.")


class PaymentOut(BaseModel):
    id: int
    invoice_id: int
    tenant_id: int
    amount: Decimal
    received_on: date
    reference: str
    recorded_by: str
    created_at: datetime


class InvoicePaymentsOut(BaseModel):
    invoice_id: int
    number: str
    total: Decimal
    paid_amount: Decimal
    paid_on: date | None
    status: InvoiceStatus
    payments: list[PaymentOut]


class DisputeCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "The 12 March calls to Spain were not ours."}]},
    )

    reason: MessageText


class DisputeResolve(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"state": "accepted", "resolution": "Credit note for the Spain calls."}]
        },
    )

    state: Literal["rejected", "accepted"] = Field(
        description="accepted: the operator then issues a credit note for the invoice."
    )
    resolution: MessageText


class DisputeOut(BaseModel):
    id: int
    invoice_id: int
    tenant_id: int
    reason: str
    state: Literal["open", "rejected", "accepted"]
    opened_at: datetime
    opened_by: str
    resolved_at: datetime | None
    resolution: str | None


class LegalRateIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"professional_rate": "2.76", "individual_rate": "6.65"}]},
    )

    professional_rate: Percent
    individual_rate: Percent


class LegalRateOut(BaseModel):
    starts_on: date = Field(description="1 January or 1 July: the half-year it is in force.")
    professional_rate: Decimal
    individual_rate: Decimal


class StatementLineOut(BaseModel):
    invoice_id: int
    number: str
    issued_on: date
    due_on: date
    status: InvoiceStatus
    total: Decimal = Field(description="VAT included.")
    paid: Decimal
    balance: Decimal
    days_late: int
    late_interest: Decimal = Field(description="Three times the legal rate, to date.")
    indemnity: Decimal = Field(description="The fixed €40 recovery indemnity, once if late.")


class StatementOut(BaseModel):
    tenant_id: int
    on: date = Field(description="The day the late charges are computed to (billing clock).")
    invoices: list[StatementLineOut]
    total: Decimal
    paid: Decimal
    balance: Decimal
    late_interest: Decimal
    indemnities: Decimal
    amount_due: Decimal = Field(
        description="balance + late_interest + indemnities; the late charges are outside VAT."
    )
