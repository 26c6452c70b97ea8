"""Payments the operator records, an invoice's payment state, and a tenant's statement.

An invoice is issued, partly paid, paid, overdue, disputed or credited (``invoice_status``).
A payment never exceeds what is still due and a credited invoice takes none; the payment that
settles a tenant's last overdue invoice reactivates it in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Principal
from graam_pbx.billing import dunning
from graam_pbx.billing.models import Invoice, Payment
from graam_pbx.errors import Conflict, Invalid, NotFound

ZERO = Decimal(0)


class InvoiceStatus(StrEnum):
    ISSUED = "issued"
    PAID = "paid"
    PARTLY_PAID = "partly_paid"
    OVERDUE = "overdue"
    DISPUTED = "disputed"
    CREDITED = "credited"


class Overpayment(Conflict):
    error_id = "overpayment"


class CreditedInvoice(Conflict):
    error_id = "invoice-credited"


def invoice_status(invoice: Invoice, *, today: date, open_dispute: bool, credited: bool) -> str:
    """The invoice's payment state on ``today``, the first that holds of: credited (a credit
    note exists for it), disputed, paid, overdue, partly paid, issued."""
    if credited:
        return InvoiceStatus.CREDITED.value
    if open_dispute:
        return InvoiceStatus.DISPUTED.value
    if invoice.paid_amount >= invoice.total:
        return InvoiceStatus.PAID.value
    if today > invoice.due_on:
        return InvoiceStatus.OVERDUE.value
    if invoice.paid_amount > ZERO:
        return InvoiceStatus.PARTLY_PAID.value
    return InvoiceStatus.ISSUED.value


@dataclass(frozen=True)
class Recorded:
    """A payment recorded, and the reactivation it caused (to e-mail after the commit)."""

    payment: Payment
    invoice: Invoice
    notices: list[dunning.StepNotice]


async def invoice_of(session: AsyncSession, invoice_id: int, tenant_id: int | None) -> Invoice:
    """The invoice (not a credit note: it is never paid), if ``tenant_id`` is None (operator)
    or its tenant."""
    invoice = await session.get(Invoice, invoice_id)
    if (
        invoice is None
        or invoice.kind != "invoice"
        or (tenant_id is not None and invoice.tenant_id != tenant_id)
    ):
        raise NotFound(f"no invoice {invoice_id}")
    return invoice


async def record_payment(
    session: AsyncSession,
    principal: Principal,
    invoice_id: int,
    *,
    amount: Decimal,
    received_on: date,
    reference: str,
    today: date,
    now: datetime,
) -> Recorded:
    """Record money received for an invoice (operators); 409 beyond what is still due or on a
    credited invoice. Reactivates the tenant when nothing overdue is left."""
    if amount <= ZERO:
        raise Invalid("body.amount", "a payment is more than zero")
    if received_on > today:
        raise Invalid("body.received_on", f"a payment is not received after today ({today})")
    tenant_id = await session.scalar(select(Invoice.tenant_id).where(Invoice.id == invoice_id))
    if tenant_id is None:
        raise NotFound(f"no invoice {invoice_id}")
    # The tenant's billing account first, then the invoice, as the dunning pass takes them
    # (its steps' foreign keys share-lock the invoice): the two never wait on each other.
    await dunning.lock_account(session, tenant_id)
    invoice = await session.get(
        Invoice, invoice_id, with_for_update={"key_share": True}, populate_existing=True
    )
    if invoice is None:
        raise NotFound(f"no invoice {invoice_id}")
    if invoice.kind != "invoice":
        raise Invalid("invoice", "a credit note takes no payment")
    if await dunning.credited_ids(session, [invoice.id]):
        raise CreditedInvoice(f"invoice {invoice.number} is credited: it takes no payment")
    due = invoice.total - invoice.paid_amount
    if amount > due:
        raise Overpayment(
            f"invoice {invoice.number} has {max(due, ZERO)} left to pay; {amount} is more",
            due=str(max(due, ZERO)),
        )
    payment = Payment(
        invoice_id=invoice.id,
        tenant_id=invoice.tenant_id,
        amount=amount,
        received_on=received_on,
        reference=reference,
        recorded_by=principal.label,
    )
    session.add(payment)
    invoice.paid_amount = invoice.paid_amount + amount
    if invoice.paid_amount >= invoice.total:
        paid_on = await session.scalar(
            select(Payment.received_on)
            .where(Payment.invoice_id == invoice.id)
            .order_by(Payment.received_on.desc())
            .limit(1)
        )
        invoice.paid_on = max(received_on, paid_on or received_on)
    await session.flush()
    await audit.record(
        session,
        principal,
        "record-payment",
        "invoice",
        invoice.id,
        {"number": invoice.number, "amount": str(amount), "received_on": received_on.isoformat()},
        tenant_id=invoice.tenant_id,
    )
    notices = await dunning.reactivate_if_settled(
        session, invoice.tenant_id, today, now, await dunning.legal_rates(session)
    )
    return Recorded(payment, invoice, notices)


async def payments_for(session: AsyncSession, invoice: Invoice) -> list[Payment]:
    """An invoice's payments, oldest first."""
    rows = await session.scalars(
        select(Payment)
        .where(Payment.invoice_id == invoice.id)
        .order_by(Payment.received_on, Payment.id)
    )
    return list(rows)


# ---- the statement -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementLine:
    invoice: Invoice
    status: str
    paid: Decimal
    balance: Decimal
    charges: dunning.LateCharges


@dataclass(frozen=True)
class Statement:
    tenant_id: int
    on: date
    lines: list[StatementLine]

    @property
    def total(self) -> Decimal:
        return sum((line.invoice.total for line in self.lines), ZERO)

    @property
    def paid(self) -> Decimal:
        return sum((line.paid for line in self.lines), ZERO)

    @property
    def balance(self) -> Decimal:
        return sum((line.balance for line in self.lines), ZERO)

    @property
    def late_interest(self) -> Decimal:
        return sum((line.charges.interest for line in self.lines), ZERO)

    @property
    def indemnities(self) -> Decimal:
        return sum((line.charges.indemnity for line in self.lines), ZERO)

    @property
    def amount_due(self) -> Decimal:
        """The balance plus the late charges: what settles the account today."""
        return self.balance + self.late_interest + self.indemnities


async def statement(session: AsyncSession, tenant_id: int, today: date) -> Statement:
    """Every invoice of the tenant with its state, balance and late charges as of ``today``.

    A credited invoice is settled by its credit note(s): its balance is what the credits and
    payments leave (never below zero) and it bears no late charges.
    """
    invoices = list(
        await session.scalars(
            select(Invoice)
            .where(Invoice.tenant_id == tenant_id, Invoice.kind == "invoice")
            .order_by(Invoice.issued_on, Invoice.id)
        )
    )
    ids = [i.id for i in invoices]
    credited = await dunning.credited_ids(session, ids)
    disputed = await dunning.disputed_ids(session, ids)
    paid = await dunning.payments_of(session, ids)
    credits: dict[int, Decimal] = {}
    if credited:
        rows = await session.execute(
            select(Invoice.credits_invoice_id, Invoice.total).where(
                Invoice.kind == "credit_note", Invoice.credits_invoice_id.in_(credited)
            )
        )
        for credited_id, total in rows:
            if credited_id is not None:
                credits[credited_id] = credits.get(credited_id, ZERO) + abs(total)
    rates = await dunning.legal_rates(session)
    lines: list[StatementLine] = []
    for invoice in invoices:
        balance = max(invoice.total - invoice.paid_amount - credits.get(invoice.id, ZERO), ZERO)
        charges = (
            dunning.LateCharges(ZERO, ZERO, 0)
            if invoice.id in credited
            else dunning.late_charges(invoice.total, invoice.due_on, paid[invoice.id], today, rates)
        )
        status = invoice_status(
            invoice,
            today=today,
            open_dispute=invoice.id in disputed,
            credited=invoice.id in credited,
        )
        lines.append(StatementLine(invoice, status, invoice.paid_amount, balance, charges))
    return Statement(tenant_id, today, lines)
