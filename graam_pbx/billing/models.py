"""Billing's tables: prices, rate decks, what tenants hold, rated calls, invoices, payments.

Money columns are ``numeric`` and read as ``Decimal``; see ``money.py`` for every rounding.
Issued invoices and their lines are never updated (a credit note corrects them); the
``billing_holdings`` history is written by database triggers (migration 0017_billing), so
no code path that changes a number, a user or a licence count can forget it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base, Timestamped, Versioned

MONEY = Numeric(14, 4)  # a price or an invoice amount (cents, and 4 decimals for unit prices)
RATE = Numeric(14, 6)  # a price per minute, a connect fee, a rated call's exact amount
EXACT = Numeric(18, 6)  # sums of exact amounts before their single rounding


class BillingPlan(Timestamped, Base):
    """A kind of subscription: its code is what ``tenants.plan`` names."""

    __tablename__ = "billing_plans"
    __table_args__ = (CheckConstraint("code ~ '^[a-z0-9][a-z0-9_-]{0,63}$'", name="code_alphabet"),)

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class Price(Base):
    """One monthly price, in force from ``effective_on`` until the next of the same item.

    ``item``: ``plan`` (the plan's own price), ``number`` (per number of a country and type),
    ``user`` (per user authorised) or ``licence`` (per call-centre licence). ``plan_code``
    NULL means every plan (a plan's own row wins over it).
    """

    __tablename__ = "billing_prices"
    __table_args__ = (
        CheckConstraint("item in ('plan', 'number', 'user', 'licence')", name="item_known"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint(
            "(item = 'number') = (country IS NOT NULL AND number_type IS NOT NULL)",
            name="number_has_country_and_type",
        ),
        CheckConstraint("item <> 'plan' OR plan_code IS NOT NULL", name="plan_price_names_plan"),
        UniqueConstraint(
            "item",
            "plan_code",
            "country",
            "number_type",
            "effective_on",
            name="uq_billing_prices_item_effective",
            postgresql_nulls_not_distinct=True,
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    item: Mapped[str] = mapped_column(String(16))
    plan_code: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("billing_plans.code", ondelete="RESTRICT")
    )
    country: Mapped[str | None] = mapped_column(String(2))
    number_type: Mapped[str | None] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    effective_on: Mapped[date] = mapped_column(Date)
    published_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    published_by: Mapped[str] = mapped_column(String(254))
    notice_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("notices.id", ondelete="SET NULL")
    )


class BillingAccount(Timestamped, Versioned, Base):
    """Who a tenant is on its invoices, how it is taxed, and its subscription's dates."""

    __tablename__ = "billing_accounts"
    __table_args__ = (
        CheckConstraint(
            "tax_status in ('fr', 'eu_business', 'outside_eu')", name="tax_status_known"
        ),
        CheckConstraint("locale in ('fr', 'en')", name="locale_known"),
        CheckConstraint("siren IS NULL OR siren ~ '^[0-9]{9}$'", name="siren_format"),
        CheckConstraint("grace_days >= 0", name="grace_not_negative"),
    )

    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    legal_name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(Text)
    country: Mapped[str] = mapped_column(String(2))
    siren: Mapped[str | None] = mapped_column(String(9))
    vat_number: Mapped[str | None] = mapped_column(String(20))
    tax_status: Mapped[str] = mapped_column(String(16))
    billing_email: Mapped[str] = mapped_column(String(254))
    locale: Mapped[str] = mapped_column(String(2), default="fr")
    subscribed_on: Mapped[date] = mapped_column(Date)
    # Days after an invoice's due date before the service is suspended for it.
    grace_days: Mapped[int] = mapped_column(Integer, default=15)
    # Termination: the day notice was given and the last day of service (30 days later or more).
    notice_given_on: Mapped[date | None] = mapped_column(Date)
    terminates_on: Mapped[date | None] = mapped_column(Date)
    # Set when billing suspended the tenant (non-payment), cleared when it reactivates it.
    suspended_for_payment_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Holding(Base):
    """What a tenant held and when: a number, a user, or a licence count (``quantity``).

    Written only by triggers on ``phone_numbers``, ``users`` and ``tenants`` (0017_billing);
    ``held_until`` NULL: still held.
    """

    __tablename__ = "billing_holdings"
    __table_args__ = (
        CheckConstraint("item in ('number', 'user', 'licences')", name="item_known"),
        Index("ix_billing_holdings_tenant_item_from", "tenant_id", "item", "held_from"),
        Index(
            "ix_billing_holdings_open",
            "item",
            "ref_id",
            postgresql_where="held_until IS NULL",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    item: Mapped[str] = mapped_column(String(16))
    ref_id: Mapped[int | None] = mapped_column(BigInteger)  # the number's or user's id
    label: Mapped[str | None] = mapped_column(String(254))  # the number's E.164
    country: Mapped[str | None] = mapped_column(String(2))
    number_type: Mapped[str | None] = mapped_column(String(16))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    held_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    held_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RateDeck(Base):
    """A version of the outbound prices, in force from ``activates_at`` until the next one."""

    __tablename__ = "rate_decks"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    activates_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), unique=True)
    published_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    published_by: Mapped[str] = mapped_column(String(254))
    rates_count: Mapped[int] = mapped_column(Integer, default=0)
    notice_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("notices.id", ondelete="SET NULL")
    )
    corrected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Rate(Base):
    """A price per minute to destinations starting with ``prefix`` (E.164 digits, no "+").

    ``origin_country`` and ``number_type`` are "" for any; a call takes the longest prefix,
    then an exact origin over any, then an exact type over any.
    """

    __tablename__ = "rates"
    __table_args__ = (
        CheckConstraint("prefix ~ '^[0-9]{1,15}$'", name="prefix_digits"),
        CheckConstraint("price_per_minute >= 0", name="price_not_negative"),
        CheckConstraint("connect_fee >= 0", name="fee_not_negative"),
    )

    deck_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("rate_decks.id", ondelete="CASCADE"), primary_key=True
    )
    prefix: Mapped[str] = mapped_column(String(15), primary_key=True)
    origin_country: Mapped[str] = mapped_column(String(2), primary_key=True, default="")
    number_type: Mapped[str] = mapped_column(String(16), primary_key=True, default="")
    destination_country: Mapped[str] = mapped_column(String(2))
    price_per_minute: Mapped[Decimal] = mapped_column(RATE)
    connect_fee: Mapped[Decimal] = mapped_column(RATE, default=Decimal(0))


class RatedCall(Base):
    """One billable outbound leg (a CDR) and its price; ``amount`` NULL: no rate matched.

    ``period`` is the first day of the billing month (in the billing time zone) the call
    started in; ``invoice_id`` is set when an invoice bills it, and then it never changes.
    """

    __tablename__ = "rated_calls"
    __table_args__ = (
        Index("ix_rated_calls_tenant_period", "tenant_id", "period"),
        Index("ix_rated_calls_unrated", "period", postgresql_where="amount IS NULL"),
    )

    cdr_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    period: Mapped[date] = mapped_column(Date)
    to_number: Mapped[str] = mapped_column(String(32))
    origin_country: Mapped[str] = mapped_column(String(2))
    destination_country: Mapped[str] = mapped_column(String(2))
    number_type: Mapped[str] = mapped_column(String(16))
    billsec: Mapped[Decimal] = mapped_column(Numeric(14, 6))
    billed_seconds: Mapped[int] = mapped_column(Integer)
    deck_id: Mapped[int | None] = mapped_column(BigInteger)
    prefix: Mapped[str | None] = mapped_column(String(15))
    price_per_minute: Mapped[Decimal | None] = mapped_column(RATE)
    connect_fee: Mapped[Decimal | None] = mapped_column(RATE)
    amount: Mapped[Decimal | None] = mapped_column(RATE)
    rated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    invoice_id: Mapped[int | None] = mapped_column(BigInteger)


class InvoiceCounter(Base):
    """The last number given in a series: gap-free because it is taken in the invoice's
    own transaction (a rolled-back invoice gives its number back)."""

    __tablename__ = "invoice_counters"

    series: Mapped[str] = mapped_column(String(16), primary_key=True)
    last: Mapped[int] = mapped_column(BigInteger, default=0)


class Invoice(Base):
    """An issued invoice or credit note: never updated but for its payment state columns."""

    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("kind in ('invoice', 'credit_note')", name="kind_known"),
        CheckConstraint(
            "tax_status in ('fr', 'eu_business', 'outside_eu')", name="tax_status_known"
        ),
        CheckConstraint("(kind = 'credit_note') = (credits_invoice_id IS NOT NULL)", name="credit"),
        # One monthly invoice per tenant and period: concurrent month-end runs make one.
        Index(
            "uq_invoices_tenant_period",
            "tenant_id",
            "period_start",
            unique=True,
            postgresql_where="kind = 'invoice'",
        ),
        # One credit note per invoice: a second one would cancel it twice.
        Index(
            "uq_invoices_credits_invoice_id",
            "credits_invoice_id",
            unique=True,
            postgresql_where="credits_invoice_id IS NOT NULL",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="invoice")
    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )
    credits_invoice_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("invoices.id", ondelete="RESTRICT")
    )
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)  # inclusive
    issued_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    locale: Mapped[str] = mapped_column(String(2))
    tax_status: Mapped[str] = mapped_column(String(16))
    vat_rate: Mapped[Decimal] = mapped_column(Numeric(5, 2))  # percent
    net_total: Mapped[Decimal] = mapped_column(MONEY)
    vat_total: Mapped[Decimal] = mapped_column(MONEY)
    total: Mapped[Decimal] = mapped_column(MONEY)
    # The seller and the buyer as they were when it was issued (the mandatory mentions).
    seller: Mapped[dict[str, object]] = mapped_column(JSONB)
    buyer: Mapped[dict[str, object]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Payment state (payments.py): what has been paid, and whether a dispute is open.
    paid_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    paid_on: Mapped[date | None] = mapped_column(Date)
    # Calls of its periods with no rate when it was issued: left off, billed once rated.
    unrated_calls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    emailed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class InvoiceLine(Base):
    """One line: a fixed item of the month, or the calls to one country and number type."""

    __tablename__ = "invoice_lines"
    __table_args__ = (
        CheckConstraint(
            "kind in ('plan', 'number', 'user', 'licence', 'calls', 'unrated', 'credit')",
            name="kind_known",
        ),
    )

    invoice_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("invoices.id", ondelete="RESTRICT"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    unit_price: Mapped[Decimal | None] = mapped_column(RATE)
    exact_amount: Mapped[Decimal] = mapped_column(EXACT)  # the sum before the line's rounding
    amount: Mapped[Decimal] = mapped_column(MONEY)  # rounded to the cent, once
    country: Mapped[str | None] = mapped_column(String(2))
    number_type: Mapped[str | None] = mapped_column(String(16))
    calls: Mapped[int | None] = mapped_column(Integer)
    billed_seconds: Mapped[int | None] = mapped_column(BigInteger)


class InvoiceDocument(Base):
    """An issued invoice's rendered file (pdf, facturx, html, csv), kept as first sent."""

    __tablename__ = "invoice_documents"

    invoice_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("invoices.id", ondelete="RESTRICT"), primary_key=True
    )
    format: Mapped[str] = mapped_column(String(16), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Payment(Base):
    """Money the operator received for an invoice (partial payments too)."""

    __tablename__ = "payments"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    invoice_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("invoices.id", ondelete="RESTRICT"), index=True
    )
    tenant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    received_on: Mapped[date] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(200), default="")
    recorded_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Dispute(Base):
    """A client's contest of an invoice (within 30 days of issue), and its outcome."""

    __tablename__ = "invoice_disputes"
    __table_args__ = (
        CheckConstraint("state in ('open', 'rejected', 'accepted')", name="state_known"),
        Index(
            "uq_invoice_disputes_open",
            "invoice_id",
            unique=True,
            postgresql_where="state = 'open'",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    invoice_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("invoices.id", ondelete="RESTRICT"), index=True
    )
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    opened_by: Mapped[str] = mapped_column(String(254))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[str | None] = mapped_column(Text)


class LegalInterestRate(Base):
    """France's legal interest rate for a half-year (published each semester), in percent."""

    __tablename__ = "legal_interest_rates"
    __table_args__ = (
        CheckConstraint(
            "extract(day from starts_on) = 1 AND extract(month from starts_on) in (1, 7)",
            name="half_year_start",
        ),
    )

    starts_on: Mapped[date] = mapped_column(Date, primary_key=True)
    professional_rate: Mapped[Decimal] = mapped_column(Numeric(6, 3))
    individual_rate: Mapped[Decimal] = mapped_column(Numeric(6, 3))


class DunningStep(Base):
    """One step of recovering an unpaid invoice: overdue, suspended, reactivated."""

    __tablename__ = "dunning_steps"
    __table_args__ = (
        CheckConstraint("step in ('overdue', 'suspended', 'reactivated')", name="step_known"),
        Index("uq_dunning_steps_once", "invoice_id", "step", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger, index=True)
    invoice_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("invoices.id", ondelete="RESTRICT")
    )
    step: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    emailed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PortOutRequest(Base):
    """A client's request to take a number to another operator, until the number leaves."""

    __tablename__ = "port_out_requests"
    __table_args__ = (
        CheckConstraint(
            "state in ('requested', 'accepted', 'completed', 'rejected', 'cancelled')",
            name="state_known",
        ),
        Index(
            "uq_port_out_requests_pending",
            "phone_number_id",
            unique=True,
            postgresql_where="state in ('requested', 'accepted')",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )
    phone_number_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("phone_numbers.id", ondelete="RESTRICT")
    )
    e164: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="requested")
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    requested_by: Mapped[str] = mapped_column(String(254))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(Text, default="")


class CdrArchive(Base):
    """A month of CDRs moved out of Postgres into a compressed file, and its checksum."""

    __tablename__ = "cdr_archives"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    archived_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


__all__ = [
    "BillingAccount",
    "BillingPlan",
    "CdrArchive",
    "Dispute",
    "DunningStep",
    "Holding",
    "Invoice",
    "InvoiceCounter",
    "InvoiceDocument",
    "InvoiceLine",
    "LegalInterestRate",
    "Payment",
    "PortOutRequest",
    "Price",
    "Rate",
    "RateDeck",
    "RatedCall",
]
