"""Late payment: interest and the €40 indemnity, and the dunning of unpaid invoices.

Code de commerce L441-10: from the day after an invoice's due date until it is paid, interest
accrues at three times the legal interest rate (the professionals' rate of the half-year each
day falls in); D441-5: €40 of recovery costs per invoice paid late. The contract lets the
operator suspend the service until paid in full: ``run_dunning`` does it past the due date
plus the account's grace days, and reactivates the tenant once nothing overdue is left.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit.models import AuditEntry
from graam_pbx.billing import money
from graam_pbx.billing.models import (
    BillingAccount,
    Dispute,
    DunningStep,
    Invoice,
    LegalInterestRate,
    Payment,
)
from graam_pbx.mail import SmtpRelay, deliver
from graam_pbx.settings import Settings
from graam_pbx.tenants.models import Tenant, TenantStatus

log = logging.getLogger(__name__)

ZERO = Decimal(0)
ONE_DAY = timedelta(days=1)


class NoLegalRate(ValueError):
    """No legal interest rate is known at all (the table is empty)."""


@dataclass(frozen=True)
class LateCharges:
    """What an invoice paid late (or still unpaid past its due date) costs on top of it."""

    interest: Decimal  # rounded to the cent once per invoice
    indemnity: Decimal  # money.RECOVERY_INDEMNITY, or 0 when never late
    days_late: int  # days interest accrued on (some amount was still due)

    @property
    def total(self) -> Decimal:
        return self.interest + self.indemnity


def half_year_of(day: date) -> date:
    """The first day of ``day``'s half-year (1 January or 1 July)."""
    return date(day.year, 1 if day.month < 7 else 7, 1)


def rate_on(day: date, rates: Mapping[date, Decimal]) -> Decimal:
    """The professionals' legal rate (percent) for ``day``: its half-year's, else the latest
    known before it; a day before every known rate takes the earliest one."""
    if not rates:
        raise NoLegalRate("no legal interest rate is known")
    start = half_year_of(day)
    known = rates.get(start)
    if known is not None:
        return known
    before = [s for s in rates if s <= start]
    return rates[max(before)] if before else rates[min(rates)]


def late_charges(
    invoice_total: Decimal,
    due_on: date,
    payments: Sequence[tuple[date, Decimal]],
    today: date,
    rates: Mapping[date, Decimal],
) -> LateCharges:
    """Interest and indemnity of an invoice due on ``due_on`` as of ``today``.

    Each day from the day after ``due_on`` until it is paid in full (or ``today``) bears
    interest on what was still due that day (VAT included): a payment lowers the base from
    the day after it was received. ``rates``: half-year start -> professionals' rate, percent.
    """
    paid_by: list[tuple[date, Decimal]] = sorted(payments)
    day = due_on + ONE_DAY
    weighted: list[Decimal] = []
    while day <= today:
        base = invoice_total - sum((amount for on, amount in paid_by if on < day), ZERO)
        if base <= ZERO:
            break
        # The base changes with partial payments while money.late_interest takes one amount:
        # each day's rate is weighted by that day's base (interest on 1 €), so the whole span
        # is still rounded to the cent once (money.late_interest's rule).
        weighted.append(base * rate_on(day, rates))
        day += ONE_DAY
    if not weighted:
        return LateCharges(ZERO, ZERO, 0)
    interest = money.late_interest(Decimal(1), weighted)
    return LateCharges(interest, money.RECOVERY_INDEMNITY, len(weighted))


async def legal_rates(session: AsyncSession) -> dict[date, Decimal]:
    """Every known half-year's professional legal rate, percent."""
    rows = await session.execute(
        select(LegalInterestRate.starts_on, LegalInterestRate.professional_rate)
    )
    return {starts_on: rate for starts_on, rate in rows}


async def payments_of(
    session: AsyncSession, invoice_ids: Iterable[int]
) -> dict[int, list[tuple[date, Decimal]]]:
    """Each invoice's payments as (received_on, amount)."""
    ids = list(invoice_ids)
    found: dict[int, list[tuple[date, Decimal]]] = {i: [] for i in ids}
    if ids:
        rows = await session.execute(
            select(Payment.invoice_id, Payment.received_on, Payment.amount).where(
                Payment.invoice_id.in_(ids)
            )
        )
        for invoice_id, received_on, amount in rows:
            found[invoice_id].append((received_on, amount))
    return found


async def credited_ids(session: AsyncSession, invoice_ids: Iterable[int]) -> set[int]:
    """Those of ``invoice_ids`` a credit note was issued for."""
    ids = list(invoice_ids)
    if not ids:
        return set()
    rows = await session.scalars(
        select(Invoice.credits_invoice_id).where(
            Invoice.kind == "credit_note", Invoice.credits_invoice_id.in_(ids)
        )
    )
    return {i for i in rows if i is not None}


async def disputed_ids(session: AsyncSession, invoice_ids: Iterable[int]) -> set[int]:
    """Those of ``invoice_ids`` with an open dispute."""
    ids = list(invoice_ids)
    if not ids:
        return set()
    rows = await session.scalars(
        select(Dispute.invoice_id).where(Dispute.state == "open", Dispute.invoice_id.in_(ids))
    )
    return set(rows)


def _credit_note_for() -> Any:
    credit = Invoice.__table__.alias("credit_note")
    return exists().where(credit.c.kind == "credit_note", credit.c.credits_invoice_id == Invoice.id)


def _open_dispute_on() -> Any:
    return exists().where(Dispute.invoice_id == Invoice.id, Dispute.state == "open")


async def overdue_invoices(session: AsyncSession, tenant_id: int, today: date) -> list[Invoice]:
    """The tenant's invoices past their due date and not paid in full, neither credited nor
    under an open dispute: what keeps a tenant suspended for payment."""
    rows = await session.scalars(
        select(Invoice)
        .where(
            Invoice.tenant_id == tenant_id,
            Invoice.kind == "invoice",
            Invoice.paid_amount < Invoice.total,
            Invoice.due_on < today,
            ~_credit_note_for(),
            ~_open_dispute_on(),
        )
        .order_by(Invoice.due_on, Invoice.id)
    )
    return list(rows)


# ---- notices of each step ----------------------------------------------------------------------


@dataclass(frozen=True)
class StepNotice:
    """One dunning step to e-mail once committed."""

    step: str
    tenant_id: int
    tenant_name: str
    billing_email: str
    invoice_id: int
    invoice_number: str
    total: Decimal
    balance: Decimal
    due_on: date
    charges: LateCharges
    step_id: int | None = None


_SUBJECTS = {
    "overdue": "Invoice {n} is overdue",
    "suspended": "Service suspended: invoice {n} is unpaid",
    "reactivated": "Service reactivated: thank you for your payment",
}


def compose(relay: SmtpRelay, notice: StepNotice) -> EmailMessage:
    """The e-mail of one dunning step (plain text)."""
    n = notice
    mail = EmailMessage()
    mail["From"] = relay.sender
    mail["To"] = n.billing_email
    mail["Subject"] = _SUBJECTS[n.step].format(n=n.invoice_number)
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = make_msgid(domain=relay.sender.rpartition("@")[2] or "graam-pbx")
    mail["X-Graam-Dunning"] = f"{n.step} {n.invoice_number}"
    charges = (
        f"Late-payment interest to date (three times the legal rate): €{n.charges.interest}\n"
        f"Fixed recovery indemnity: €{n.charges.indemnity}\n"
        "(claimed on your statement, outside the scope of VAT)\n"
    )
    if n.step == "overdue":
        body = (
            f"Invoice {n.invoice_number} of {n.tenant_name} was due on {n.due_on.isoformat()}.\n"
            f"Amount still due: €{n.balance} (invoice total €{n.total}).\n{charges}\n"
            "Without payment, the service will be suspended after the grace period."
        )
    elif n.step == "suspended":
        body = (
            f"Invoice {n.invoice_number} of {n.tenant_name}, due on {n.due_on.isoformat()}, is "
            f"still unpaid: €{n.balance}.\n{charges}\n"
            "Outbound calls are suspended until every overdue invoice is paid in full; inbound "
            "calls, the console and the API keep working."
        )
    else:
        body = (
            f"Every overdue invoice of {n.tenant_name} is settled: outbound calls work again.\n"
            f"Last invoice that held the suspension: {n.invoice_number}."
        )
    mail.set_content(body + "\n")
    return mail


async def send_notices(
    session_factory: async_sessionmaker[AsyncSession],
    relay: SmtpRelay | None,
    notices: Sequence[StepNotice],
    now: datetime,
) -> None:
    """E-mail each committed step to the account's billing address; a step's ``emailed_at``
    is set once its e-mail left. Never raises for the relay."""
    if relay is None:
        if notices:
            log.warning("dunning e-mail: no SMTP relay configured; %d not sent", len(notices))
        return
    sent: list[int] = []
    for notice in notices:
        if await deliver(relay, [compose(relay, notice)], purpose="dunning") and notice.step_id:
            sent.append(notice.step_id)
    if sent:
        async with session_factory() as session, session.begin():
            await session.execute(
                update(DunningStep).where(DunningStep.id.in_(sent)).values(emailed_at=now)
            )


def _audit(
    session: AsyncSession, tenant_id: int, action: str, invoice: Invoice, **changes: Any
) -> None:
    session.add(
        AuditEntry(
            tenant_id=tenant_id,
            actor_role="system",
            actor_label="billing-dunning",
            action=action,
            object_type="invoice",
            object_id=str(invoice.id),
            changes={"number": invoice.number, **changes},
        )
    )


async def _step(
    session: AsyncSession, tenant_id: int, invoice_id: int, step: str, now: datetime
) -> int | None:
    """Record a step once per invoice (the unique index): its id, or None if it was there."""
    made = await session.execute(
        insert(DunningStep)
        .values(tenant_id=tenant_id, invoice_id=invoice_id, step=step, at=now)
        .on_conflict_do_nothing(index_elements=["invoice_id", "step"])
        .returning(DunningStep.id)
    )
    return made.scalar_one_or_none()


async def _notice(
    session: AsyncSession,
    step: str,
    tenant: Tenant,
    account: BillingAccount,
    invoice: Invoice,
    step_id: int | None,
    today: date,
    rates: Mapping[date, Decimal],
) -> StepNotice:
    paid = (await payments_of(session, [invoice.id]))[invoice.id]
    return StepNotice(
        step=step,
        tenant_id=tenant.id,
        tenant_name=tenant.name,
        billing_email=account.billing_email,
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        total=invoice.total,
        balance=max(invoice.total - invoice.paid_amount, ZERO),
        due_on=invoice.due_on,
        charges=late_charges(invoice.total, invoice.due_on, paid, today, rates),
        step_id=step_id,
    )


async def lock_account(session: AsyncSession, tenant_id: int) -> BillingAccount | None:
    """The tenant's billing account, locked until the transaction ends (None: it has none).

    The account's row serialises the dunning passes and the payment endpoint for one tenant.
    """
    found: BillingAccount | None = await session.scalar(
        select(BillingAccount).where(BillingAccount.tenant_id == tenant_id).with_for_update()
    )
    return found


async def _status_set_by_hand(session: AsyncSession, tenant_id: int) -> bool:
    """Whether the tenant's status was set through the tenants' service (the operator's hand)
    after billing last suspended it: the suspension is then the operator's, not billing's.

    Audit ids are ordered as the entries were made, so no clock is compared."""
    suspended_at = (
        select(func.max(AuditEntry.id))
        .where(AuditEntry.tenant_id == tenant_id, AuditEntry.action == "suspend-for-payment")
        .scalar_subquery()
    )
    by_hand: bool | None = await session.scalar(
        select(
            exists().where(
                AuditEntry.tenant_id == tenant_id,
                AuditEntry.object_type == "tenant",
                AuditEntry.object_id == str(tenant_id),
                AuditEntry.action == "update",
                AuditEntry.changes.has_key("status"),
                AuditEntry.id > suspended_at,
            )
        )
    )
    return bool(by_hand)


async def reactivate_if_settled(
    session: AsyncSession,
    tenant_id: int,
    today: date,
    now: datetime,
    rates: Mapping[date, Decimal],
) -> list[StepNotice]:
    """Reactivate a tenant billing suspended once no overdue invoice is left unpaid; in the
    caller's transaction. A tenant the operator suspended by hand is never touched."""
    account = await lock_account(session, tenant_id)
    if account is None or account.suspended_for_payment_at is None:
        return []
    tenant = await session.get(Tenant, tenant_id, with_for_update=True)
    if tenant is None:
        return []
    if tenant.status != TenantStatus.SUSPENDED.value or await _status_set_by_hand(
        session, tenant_id
    ):
        # The operator changed the status by hand since (lifted the suspension, or lifted and
        # suspended again, or suspended it anew): billing's suspension is over.
        account.suspended_for_payment_at = None
        await session.flush()
        return []
    if await overdue_invoices(session, tenant_id, today):
        return []
    held_by: Invoice | None = await session.scalar(
        select(Invoice)
        .join(DunningStep, DunningStep.invoice_id == Invoice.id)
        .where(DunningStep.tenant_id == tenant_id, DunningStep.step == "suspended")
        .order_by(DunningStep.at.desc(), DunningStep.id.desc())
        .limit(1)
    )
    # Through the ORM: the config applier hears the tenant's change after the commit. A
    # tenant that gave notice while suspended serves out its notice as terminating.
    tenant.status = (
        TenantStatus.ACTIVE.value
        if account.terminates_on is None
        else TenantStatus.TERMINATING.value
    )
    account.suspended_for_payment_at = None
    await session.flush()
    if held_by is None:
        return []
    step_id = await _step(session, tenant_id, held_by.id, "reactivated", now)
    _audit(session, tenant_id, "reactivate-for-payment", held_by, status=tenant.status)
    return [await _notice(session, "reactivated", tenant, account, held_by, step_id, today, rates)]


async def dun_tenant(
    session: AsyncSession,
    tenant_id: int,
    today: date,
    now: datetime,
    rates: Mapping[date, Decimal],
) -> list[StepNotice]:
    """One tenant's dunning in the caller's transaction: each overdue invoice's notice once,
    the suspension past due date plus grace, the reactivation when settled."""
    account = await lock_account(session, tenant_id)
    if account is None:
        return []
    tenant = await session.get(Tenant, tenant_id, with_for_update=True)
    if tenant is None:
        return []
    notices: list[StepNotice] = []
    overdue = await overdue_invoices(session, tenant_id, today)
    for invoice in overdue:
        step_id = await _step(session, tenant_id, invoice.id, "overdue", now)
        if step_id is not None:
            _audit(
                session, tenant_id, "invoice-overdue", invoice, due_on=invoice.due_on.isoformat()
            )
            notices.append(
                await _notice(session, "overdue", tenant, account, invoice, step_id, today, rates)
            )
    grace = timedelta(days=account.grace_days)
    past_grace = [i for i in overdue if today > i.due_on + grace]
    if past_grace and account.suspended_for_payment_at is None:
        suspended_for = set(
            await session.scalars(
                select(DunningStep.invoice_id).where(
                    DunningStep.tenant_id == tenant_id, DunningStep.step == "suspended"
                )
            )
        )
        # Once per invoice: a tenant the operator reactivated by hand is not suspended again
        # for the same invoice (a later one past its grace still suspends it).
        fresh = [i for i in past_grace if i.id not in suspended_for]
        # Only an active tenant: one suspended by hand, terminating or terminated keeps its
        # status (and so is never reactivated by a payment).
        if fresh and tenant.status == TenantStatus.ACTIVE.value:
            tenant.status = TenantStatus.SUSPENDED.value
            account.suspended_for_payment_at = now
            await session.flush()
            for invoice in fresh:
                step_id = await _step(session, tenant_id, invoice.id, "suspended", now)
                _audit(session, tenant_id, "suspend-for-payment", invoice, status="suspended")
                notices.append(
                    await _notice(
                        session, "suspended", tenant, account, invoice, step_id, today, rates
                    )
                )
            return notices
    notices += await reactivate_if_settled(session, tenant_id, today, now, rates)
    return notices


async def run_dunning(
    session_factory: async_sessionmaker[AsyncSession],
    relay: SmtpRelay | None,
    settings: Settings,
    now: datetime,
) -> None:
    """The scheduler's pass: each tenant with an overdue invoice or a suspension for payment
    is dunned in its own transaction; the e-mails leave after each commit."""
    today = now.astimezone(ZoneInfo(settings.billing_timezone)).date()
    async with session_factory() as session:
        rates = await legal_rates(session)
        overdue = select(Invoice.tenant_id).where(
            Invoice.kind == "invoice",
            Invoice.paid_amount < Invoice.total,
            Invoice.due_on < today,
        )
        suspended = select(BillingAccount.tenant_id).where(
            BillingAccount.suspended_for_payment_at.is_not(None)
        )
        tenants = sorted(set((await session.scalars(overdue.union(suspended))).all()))
    for tenant_id in tenants:
        async with session_factory() as session, session.begin():
            notices = await dun_tenant(session, tenant_id, today, now, rates)
        await send_notices(session_factory, relay, notices, now)
