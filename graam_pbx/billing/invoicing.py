"""Month-end invoices, one per tenant and billing month, and credit notes that cancel them.

An invoice bills a period's fixed part (``fixed.py``) and every rated call of the tenant
not yet invoiced up to that month, grouped by destination country and number type, each
line rounded once. It is numbered in its own transaction (``numbering.py``) and never
changes once issued but for its payment columns: a correction is a credit note.

The month-end job (``invoice_due``) is idempotent and catches up: each pass makes every
invoice of an ended month not made yet, one transaction per tenant and month, under a lock
on the tenant's billing account, so concurrent passes make each invoice once.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Principal, Role
from graam_pbx.billing import fixed, money, numbering, periods, rating
from graam_pbx.billing.models import BillingAccount, Holding, Invoice, InvoiceLine, RatedCall
from graam_pbx.billing.pricebook import PriceBook, price_book
from graam_pbx.errors import Conflict, Forbidden, Invalid, NotFound
from graam_pbx.settings import Settings
from graam_pbx.tenants.models import Tenant

log = logging.getLogger(__name__)

VAT_RATES: Final[dict[str, Decimal]] = {
    "fr": Decimal("20.00"),
    "eu_business": Decimal("0.00"),
    "outside_eu": Decimal("0.00"),
}

# The mention French law requires on an invoice without VAT, by tax status and language.
VAT_MENTIONS: Final[dict[tuple[str, str], str]] = {
    # A business customer in another EU country pays the VAT itself (reverse charge).
    ("eu_business", "fr"): "Autoliquidation — article 196 de la directive 2006/112/CE",
    ("eu_business", "en"): "Reverse charge — Article 196 of Directive 2006/112/EC",
    # A service to a business outside the EU is supplied where the customer is.
    ("outside_eu", "fr"): "TVA non applicable — article 259-1 du CGI",
    ("outside_eu", "en"): "VAT not applicable — Article 259-1 of the French General Tax Code",
}

MINUTE_PRECISION: Final = Decimal("0.0001")  # billed minutes shown on a calls line


class AlreadyCredited(Conflict):
    error_id = "invoice-already-credited"


class NotCreditable(Conflict):
    error_id = "invoice-not-creditable"


@dataclass
class RunReport:
    """What a month-end run made, and what it could not bill."""

    invoice_ids: list[int] = field(default_factory=list)
    # Calls up to an invoiced month that no rate matched: not invoiced, reported.
    unrated_calls: int = 0
    warnings: list[str] = field(default_factory=list)
    failed: list[tuple[int, date]] = field(default_factory=list)


def vat_rate_of(tax_status: str) -> Decimal:
    """The VAT rate (percent) of a tax status: 20 % in France, 0 % otherwise."""
    return VAT_RATES[tax_status]


def vat_mention(tax_status: str, locale: str) -> str | None:
    """The legal mention explaining an invoice's 0 % VAT (None where VAT is charged)."""
    return VAT_MENTIONS.get((tax_status, "fr" if locale == "fr" else "en"))


def billed_minutes(billed_seconds: int) -> Decimal:
    """Billed minutes as shown on a calls line (a quantity, not money: 4 decimals)."""
    return (Decimal(billed_seconds) / money.SIXTY).quantize(MINUTE_PRECISION, ROUND_HALF_UP)


def due_months(
    subscribed_on: date,
    terminates_on: date | None,
    now: datetime,
    zone: ZoneInfo,
    invoiced: Collection[date],
) -> list[date]:
    """The billing months, from the subscription's on, whose period has ended by ``now`` on
    the billing clock and that ``invoiced`` (first days of months) does not hold yet."""
    months: list[date] = []
    month = periods.month_start(subscribed_on)
    while True:
        period = periods.period_of_month(
            month, zone, subscribed_on=subscribed_on, terminates_on=terminates_on
        )
        if period is None or period.ends_at > now:
            return months
        if month not in invoiced:
            months.append(month)
        month = periods.next_month(month)


_TAKE_CALLS = text(
    """
    WITH taken AS (
      UPDATE rated_calls SET invoice_id = :invoice_id
       WHERE tenant_id = :tenant_id AND amount IS NOT NULL AND invoice_id IS NULL
         AND period <= :month
      RETURNING destination_country, number_type, billed_seconds, amount
    )
    SELECT destination_country, number_type, count(*) AS calls,
           sum(billed_seconds) AS billed_seconds, sum(amount) AS exact
      FROM taken GROUP BY destination_country, number_type
     ORDER BY destination_country, number_type
    """
)


async def _calls_lines(
    session: AsyncSession, tenant_id: int, month: date, invoice_id: int, locale: str
) -> list[fixed.Line]:
    """The calls lines of an invoice; its calls are marked as billed by it, in one statement."""
    rows = await session.execute(
        _TAKE_CALLS, {"invoice_id": invoice_id, "tenant_id": tenant_id, "month": month}
    )
    lines: list[fixed.Line] = []
    for country, number_type, calls, seconds, exact in rows.all():
        lines.append(
            fixed.Line(
                kind="calls",
                label=fixed.label_of("calls", locale, country=country, kind_of=number_type),
                quantity=billed_minutes(int(seconds)),
                unit_price=None,
                exact_amount=Decimal(exact),
                amount=money.round_line(Decimal(exact)),
                country=country,
                number_type=number_type,
                calls=int(calls),
                billed_seconds=int(seconds),
            )
        )
    return lines


def seller_of(settings: Settings) -> dict[str, object]:
    """The operator's identity as printed on an invoice (its mandatory mentions)."""
    return {
        "name": settings.seller_name,
        "address": settings.seller_address,
        "country": settings.seller_country,
        "siren": settings.seller_siren,
        "vat_number": settings.seller_vat_number,
        "legal_form": settings.seller_legal_form,
        "iban": settings.seller_iban,
    }


def buyer_of(account: BillingAccount) -> dict[str, object]:
    """The client's identity as printed on an invoice, from its billing account."""
    return {
        "tenant_id": account.tenant_id,
        "legal_name": account.legal_name,
        "address": account.address,
        "country": account.country,
        "siren": account.siren,
        "vat_number": account.vat_number,
        "billing_email": account.billing_email,
    }


async def invoice_tenant_month(
    session: AsyncSession,
    tenant_id: int,
    month: date,
    settings: Settings,
    today: date,
    *,
    report: RunReport | None = None,
    books: dict[date, PriceBook] | None = None,
    rate: bool = True,
) -> Invoice | None:
    """Issue the tenant's invoice of ``month`` (None: already issued, not ended by ``today``
    on the billing clock, or no period then).

    ``rate``: rate the tenant's calls of the month first (False: the caller just rated it).
    """
    account = await session.scalar(
        select(BillingAccount).where(BillingAccount.tenant_id == tenant_id).with_for_update()
    )
    if account is None:
        return None
    month = periods.month_start(month)
    zone = ZoneInfo(settings.billing_timezone)
    period = periods.period_of_month(
        month, zone, subscribed_on=account.subscribed_on, terminates_on=account.terminates_on
    )
    if period is None or period.last >= today:
        return None  # no day of the month subscribed, or the period has not ended
    issued = await session.scalar(
        select(Invoice.id).where(
            Invoice.tenant_id == tenant_id,
            Invoice.kind == "invoice",
            Invoice.period_start >= month,
            Invoice.period_start < periods.next_month(month),
        )
    )
    if issued is not None:
        return None
    if rate:
        await rating.rate_period(session, month=month, zone=zone, tenant_id=tenant_id)
    else:
        # No rating of the month may change its calls while they are taken (rating's lock).
        await rating.lock_month(session, month)

    plan = await session.scalar(select(Tenant.plan).where(Tenant.id == tenant_id))
    held = (
        await session.scalars(
            select(Holding).where(
                Holding.tenant_id == tenant_id,
                Holding.held_from < period.ends_at,
                (Holding.held_until.is_(None)) | (Holding.held_until > period.starts_at),
            )
        )
    ).all()
    book = books.get(period.first) if books is not None else None
    if book is None:
        book = await price_book(session, period.first)
        if books is not None:
            books[period.first] = book
    fixed_part = fixed.fixed_part(period, list(held), plan or "", book, account.locale)

    invoice_id = int(
        (
            await session.execute(text("SELECT nextval(pg_get_serial_sequence('invoices', 'id'))"))
        ).scalar_one()
    )
    calls = await _calls_lines(session, tenant_id, month, invoice_id, account.locale)
    unrated = await session.scalar(
        select(func.count())
        .select_from(RatedCall)
        .where(
            RatedCall.tenant_id == tenant_id,
            RatedCall.amount.is_(None),
            RatedCall.invoice_id.is_(None),
            RatedCall.period <= month,
        )
    )
    lines = [*fixed_part.lines, *calls]
    vat_rate = vat_rate_of(account.tax_status)
    net = sum((line.amount for line in lines), Decimal(0))
    vat = money.vat_of(net, vat_rate)
    # Taken last, so that the series' row is locked for as short a time as possible.
    number = await numbering.next_number(session, "invoice", today.year)
    invoice = Invoice(
        id=invoice_id,
        number=number,
        kind="invoice",
        tenant_id=tenant_id,
        period_start=period.first,
        period_end=period.last,
        issued_on=today,
        due_on=today + timedelta(days=periods.PAYMENT_DAYS),
        currency="EUR",
        locale=account.locale,
        tax_status=account.tax_status,
        vat_rate=vat_rate,
        net_total=net,
        vat_total=vat,
        total=net + vat,
        seller=seller_of(settings),
        buyer=buyer_of(account),
        paid_amount=Decimal(0),
        unrated_calls=int(unrated or 0),
    )
    session.add(invoice)
    await session.flush()
    session.add_all(_line_rows(invoice_id, lines))
    await session.flush()
    if report is not None:
        report.invoice_ids.append(invoice_id)
        report.unrated_calls += int(unrated or 0)
        report.warnings.extend(f"{number} (tenant {tenant_id}): {w}" for w in fixed_part.warnings)
    if unrated:
        log.warning(
            "unrated calls left off an invoice tenant=%s invoice=%s unrated=%s",
            tenant_id,
            number,
            unrated,
        )
    for warning in fixed_part.warnings:
        log.warning("invoice item unpriced tenant=%s invoice=%s %s", tenant_id, number, warning)
    return invoice


def _line_rows(invoice_id: int, lines: list[fixed.Line]) -> list[InvoiceLine]:
    return [
        InvoiceLine(
            invoice_id=invoice_id,
            position=position,
            kind=line.kind,
            label=line.label,
            quantity=line.quantity,
            unit_price=line.unit_price,
            exact_amount=line.exact_amount,
            amount=line.amount,
            country=line.country,
            number_type=line.number_type,
            calls=line.calls,
            billed_seconds=line.billed_seconds,
        )
        for position, line in enumerate(lines, start=1)
    ]


async def invoice_due_report(
    session_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    now: datetime,
    *,
    month: date | None = None,
    tenant_ids: Collection[int] | None = None,
) -> RunReport:
    """The month-end job with its report: every ended, not yet invoiced billing month of every
    tenant with a billing account (``month``: that month only; ``tenant_ids``: those only)."""
    zone = ZoneInfo(settings.billing_timezone)
    today = now.astimezone(zone).date()
    # One read of the accounts and of what is invoiced, not one per tenant.
    async with session_factory() as session:
        query = select(
            BillingAccount.tenant_id, BillingAccount.subscribed_on, BillingAccount.terminates_on
        ).order_by(BillingAccount.tenant_id)
        issued_query = select(Invoice.tenant_id, Invoice.period_start).where(
            Invoice.kind == "invoice"
        )
        if tenant_ids is not None:
            query = query.where(BillingAccount.tenant_id.in_(list(tenant_ids)))
            issued_query = issued_query.where(Invoice.tenant_id.in_(list(tenant_ids)))
        accounts = (await session.execute(query)).all()
        invoiced: dict[int, set[date]] = {}
        for tenant_id, start in (await session.execute(issued_query)).all():
            invoiced.setdefault(tenant_id, set()).add(periods.month_start(start))
    report = RunReport()
    work: list[tuple[int, list[date]]] = []
    for tenant_id, subscribed_on, terminates_on in accounts:
        months = due_months(subscribed_on, terminates_on, now, zone, invoiced.get(tenant_id, ()))
        if month is not None:
            months = [due for due in months if due == periods.month_start(month)]
        if months:
            work.append((tenant_id, months))
    # Each month's calls are rated once for every tenant (legs not rated yet), rather than once
    # per tenant: a deck is loaded once per month, not a thousand times.
    for due in sorted({due for _, months in work for due in months}):
        async with session_factory() as session, session.begin():
            await rating.rate_period(session, month=due, zone=zone, only_new=True)
    books: dict[date, PriceBook] = {}
    for tenant_id, months in work:
        for due in months:
            try:
                async with session_factory() as session, session.begin():
                    await invoice_tenant_month(
                        session,
                        tenant_id,
                        due,
                        settings,
                        today,
                        report=report,
                        books=books,
                        rate=False,
                    )
            except Exception:
                # Its later months wait: a tenant's invoices are made in the order of its months.
                log.exception("invoicing failed tenant=%s month=%s", tenant_id, due)
                report.failed.append((tenant_id, due))
                break
    return report


async def invoice_due(
    session_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    now: datetime,
    *,
    month: date | None = None,
    tenant_ids: Collection[int] | None = None,
) -> list[int]:
    """The month-end job (the billing scheduler's pass): the ids of the invoices it made."""
    report = await invoice_due_report(
        session_factory, settings, now, month=month, tenant_ids=tenant_ids
    )
    return report.invoice_ids


async def credit_invoice(
    session: AsyncSession,
    principal: Principal,
    invoice_id: int,
    reason: str,
    *,
    today: date | None = None,
) -> Invoice:
    """A credit note cancelling the whole invoice (operators only); an invoice is credited once."""
    if principal.role is not Role.OPERATOR:
        raise Forbidden("only operators issue credit notes")
    if not reason.strip():
        raise Invalid("body.reason", "must not be blank")
    original = await session.scalar(
        select(Invoice).where(Invoice.id == invoice_id).with_for_update()
    )
    if original is None:
        raise NotFound(f"no invoice {invoice_id}")
    if original.kind != "invoice":
        raise NotCreditable(f"{original.number} is a credit note: it cannot be credited")
    credited = await session.scalar(
        select(Invoice.number).where(Invoice.credits_invoice_id == original.id)
    )
    if credited is not None:
        raise AlreadyCredited(
            f"{original.number} is already credited by {credited}", credit_note=credited
        )
    issued_on = today or datetime.now(UTC).date()
    lines = (
        await session.scalars(
            select(InvoiceLine)
            .where(InvoiceLine.invoice_id == original.id)
            .order_by(InvoiceLine.position)
        )
    ).all()
    number = await numbering.next_number(session, "credit_note", issued_on.year)
    note = Invoice(
        number=number,
        kind="credit_note",
        tenant_id=original.tenant_id,
        credits_invoice_id=original.id,
        period_start=original.period_start,
        period_end=original.period_end,
        issued_on=issued_on,
        due_on=issued_on,
        currency=original.currency,
        locale=original.locale,
        tax_status=original.tax_status,
        vat_rate=original.vat_rate,
        net_total=-original.net_total,
        vat_total=-original.vat_total,
        total=-original.total,
        seller=original.seller,
        buyer=original.buyer,
        paid_amount=Decimal(0),
    )
    session.add(note)
    await session.flush()
    session.add_all(
        InvoiceLine(
            invoice_id=note.id,
            position=line.position,
            kind=line.kind,
            label=line.label,
            quantity=-line.quantity,
            unit_price=line.unit_price,
            exact_amount=-line.exact_amount,
            amount=-line.amount,
            country=line.country,
            number_type=line.number_type,
            calls=line.calls,
            billed_seconds=line.billed_seconds,
        )
        for line in lines
    )
    await session.flush()
    await audit.record(
        session,
        principal,
        "credit",
        "invoice",
        original.id,
        {"credit_note": number, "credit_note_id": note.id, "reason": reason},
        tenant_id=original.tenant_id,
    )
    return note


async def get_invoice(session: AsyncSession, principal: Principal, invoice_id: int) -> Invoice:
    """An invoice or credit note the caller may read: its tenant's admins, and operators."""
    _ensure_reader(principal)
    statement = select(Invoice).where(Invoice.id == invoice_id)
    if not principal.is_operator:
        statement = statement.where(Invoice.tenant_id == principal.tenant_id)
    found = await session.scalar(statement)
    if found is None:
        raise NotFound(f"no invoice {invoice_id}")
    return found


async def invoice_lines(session: AsyncSession, invoice: Invoice) -> list[InvoiceLine]:
    """An invoice's lines in their order."""
    rows = await session.scalars(
        select(InvoiceLine)
        .where(InvoiceLine.invoice_id == invoice.id)
        .order_by(InvoiceLine.position)
    )
    return list(rows.all())


async def list_invoices(
    session: AsyncSession,
    principal: Principal,
    *,
    tenant_id: int | None,
    kind: str | None,
    after_id: int | None,
    limit: int,
) -> tuple[list[Invoice], int | None]:
    """Invoices by id: a tenant admin's own tenant's, an operator's all (or one tenant's)."""
    _ensure_reader(principal)
    statement = select(Invoice)
    if not principal.is_operator:
        statement = statement.where(Invoice.tenant_id == principal.tenant_id)
    elif tenant_id is not None:
        statement = statement.where(Invoice.tenant_id == tenant_id)
    if kind is not None:
        statement = statement.where(Invoice.kind == kind)
    if after_id is not None:
        statement = statement.where(Invoice.id > after_id)
    rows = list((await session.scalars(statement.order_by(Invoice.id).limit(limit + 1))).all())
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, rows[-1].id
    return rows, None


def _ensure_reader(principal: Principal) -> None:
    # Billing is the admin's: supervisors and agents do not see what the tenant pays.
    if not principal.is_operator and principal.role is not Role.ADMIN:
        raise Forbidden(f"a {principal.role} may not see invoices")
