"""Billing API: payments, disputes, legal interest rates and the statement."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Request
from sqlalchemy import select

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Role, Scope
from graam_pbx.billing import disputes, dunning, payments
from graam_pbx.billing.models import Dispute, Invoice, LegalInterestRate, Payment
from graam_pbx.billing.periods import DISPUTE_DAYS
from graam_pbx.billing.schemas.payments import (
    DisputeCreate,
    DisputeOut,
    DisputeResolve,
    InvoicePaymentsOut,
    LegalRateIn,
    LegalRateOut,
    PaymentCreate,
    PaymentOut,
    StatementLineOut,
    StatementOut,
)
from graam_pbx.deps import Caller, DbSession, Operator, allow
from graam_pbx.errors import Forbidden, Invalid, NotFound
from graam_pbx.mail import SmtpRelay
from graam_pbx.rest import Page, PageParams, error_responses, id_path, id_query, page_of
from graam_pbx.settings import Settings
from graam_pbx.tenants.models import Tenant

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])

InvoiceId = Annotated[int, id_path("The invoice's id.")]
DisputeId = Annotated[int, id_path("The dispute's id.")]
HalfYear = Annotated[date, Path(description="1 January or 1 July of a year.")]
TenantAdmin = Annotated[Scope, Depends(allow(Role.ADMIN))]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.runtime.settings
    return settings


def _today(request: Request, now: datetime) -> date:
    """Today on the billing clock."""
    return now.astimezone(ZoneInfo(_settings(request).billing_timezone)).date()


def payment_out(payment: Payment) -> PaymentOut:
    return PaymentOut(
        id=payment.id,
        invoice_id=payment.invoice_id,
        tenant_id=payment.tenant_id,
        amount=payment.amount,
        received_on=payment.received_on,
        reference=payment.reference,
        recorded_by=payment.recorded_by,
        created_at=payment.created_at,
    )


def dispute_out(dispute: Dispute) -> DisputeOut:
    return DisputeOut(
        id=dispute.id,
        invoice_id=dispute.invoice_id,
        tenant_id=dispute.tenant_id,
        reason=dispute.reason,
        state=dispute.state,
        opened_at=dispute.opened_at,
        opened_by=dispute.opened_by,
        resolved_at=dispute.resolved_at,
        resolution=dispute.resolution,
    )


async def _invoice_payments(
    session: DbSession, invoice: Invoice, today: date
) -> InvoicePaymentsOut:
    credited = bool(await dunning.credited_ids(session, [invoice.id]))
    disputed = bool(await dunning.disputed_ids(session, [invoice.id]))
    rows = await payments.payments_for(session, invoice)
    return InvoicePaymentsOut(
        invoice_id=invoice.id,
        number=invoice.number,
        total=invoice.total,
        paid_amount=invoice.paid_amount,
        paid_on=invoice.paid_on,
        status=payments.InvoiceStatus(
            payments.invoice_status(invoice, today=today, open_dispute=disputed, credited=credited)
        ),
        payments=[payment_out(p) for p in rows],
    )


@router.post(
    "/invoices/{invoice_id}/payments",
    status_code=201,
    response_model=InvoicePaymentsOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Record a payment received for an invoice (operators)",
    description="Partial payments add up; a payment beyond what is still due, or on a "
    "credited invoice, is refused (409). The payment that settles the tenant's last overdue "
    "invoice reactivates a tenant billing suspended, in the same transaction.",
)
async def record_payment(
    invoice_id: InvoiceId,
    data: PaymentCreate,
    principal: Operator,
    session: DbSession,
    request: Request,
    background: BackgroundTasks,
) -> InvoicePaymentsOut:
    now = datetime.now(UTC)
    today = _today(request, now)
    recorded = await payments.record_payment(
        session,
        principal,
        invoice_id,
        amount=data.amount,
        received_on=data.received_on,
        reference=data.reference,
        today=today,
        now=now,
    )
    if recorded.notices:
        # Background tasks run after the response, so after the commit (DbSession).
        relay = SmtpRelay.from_settings(_settings(request))
        background.add_task(
            dunning.send_notices, request.app.state.sessions, relay, recorded.notices, now
        )
    return await _invoice_payments(session, recorded.invoice, today)


@router.get(
    "/invoices/{invoice_id}/payments",
    response_model=InvoicePaymentsOut,
    responses=error_responses(401, 403, 404, 422),
    summary="An invoice's payments and payment state",
    description="Operators see any invoice; a tenant's admins their own.",
)
async def list_payments(
    invoice_id: InvoiceId, principal: Caller, session: DbSession, request: Request
) -> InvoicePaymentsOut:
    if principal.tenant_id is not None and principal.role is not Role.ADMIN:
        raise Forbidden(f"a {principal.role} may not do this")
    invoice = await payments.invoice_of(session, invoice_id, principal.tenant_id)
    return await _invoice_payments(session, invoice, _today(request, datetime.now(UTC)))


# ---- disputes ----------------------------------------------------------------------------------


@router.post(
    "/invoices/{invoice_id}/disputes",
    status_code=201,
    response_model=DisputeOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Contest an invoice (the tenant's admins)",
    description=f"Within {DISPUTE_DAYS} days of the invoice's issue (later: 422 on "
    "``invoice``); one open dispute per invoice (409). While it is open the invoice is not "
    "dunned: no suspension for it.",
)
async def open_dispute(
    invoice_id: InvoiceId,
    data: DisputeCreate,
    scope: TenantAdmin,
    session: DbSession,
    request: Request,
) -> DisputeOut:
    now = datetime.now(UTC)
    dispute = await disputes.open_dispute(
        session, scope, invoice_id, data.reason, _today(request, now), now
    )
    return dispute_out(dispute)


@router.get(
    "/disputes",
    response_model=Page[DisputeOut],
    responses=error_responses(401, 403, 422),
    summary="Disputes, oldest first",
    description="Operators see every tenant's (tenant_id narrows); a tenant's admins their own.",
)
async def list_disputes(
    principal: Caller,
    session: DbSession,
    page: PageParams,
    tenant_id: Annotated[int | None, id_query("Operators: one tenant's disputes only.")] = None,
    invoice_id: Annotated[int | None, id_query("One invoice's disputes only.")] = None,
    state: Annotated[
        Literal["open", "rejected", "accepted"] | None, Query(description="Only in this state.")
    ] = None,
) -> Page[DisputeOut]:
    if principal.tenant_id is not None:
        if principal.role is not Role.ADMIN:
            raise Forbidden(f"a {principal.role} may not do this")
        tenant_id = principal.tenant_id
    rows = await disputes.list_disputes(
        session,
        tenant_id,
        invoice_id=invoice_id,
        state=state,
        after_id=page.after_id,
        limit=page.limit,
    )
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return page_of([dispute_out(d) for d in rows], rows[-1].id if more else None)


@router.patch(
    "/disputes/{dispute_id}",
    response_model=DisputeOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Resolve a dispute (operators)",
    description="rejected: the invoice is dunned again; accepted: issue a credit note for "
    "the invoice through the invoices' credit endpoint. A resolved dispute is final (409).",
)
async def resolve_dispute(
    dispute_id: DisputeId, data: DisputeResolve, principal: Operator, session: DbSession
) -> DisputeOut:
    dispute = await disputes.resolve_dispute(
        session, principal, dispute_id, data.state, data.resolution, datetime.now(UTC)
    )
    return dispute_out(dispute)


# ---- legal interest rates ----------------------------------------------------------------------


def rate_out(rate: LegalInterestRate) -> LegalRateOut:
    return LegalRateOut(
        starts_on=rate.starts_on,
        professional_rate=rate.professional_rate,
        individual_rate=rate.individual_rate,
    )


def _half_year(starts_on: date) -> date:
    if starts_on.day != 1 or starts_on.month not in (1, 7):
        raise Invalid("path.starts_on", "a half-year starts on 1 January or 1 July")
    return starts_on


@router.get(
    "/legal-interest-rates",
    response_model=list[LegalRateOut],
    responses=error_responses(401, 403),
    summary="France's legal interest rates by half-year (operators)",
    description="Late-payment interest is three times the professionals' rate of each day's "
    "half-year; a half-year missing here takes the latest known rate before it.",
)
async def list_rates(principal: Operator, session: DbSession) -> list[LegalRateOut]:
    rows = await session.scalars(select(LegalInterestRate).order_by(LegalInterestRate.starts_on))
    return [rate_out(r) for r in rows]


@router.get(
    "/legal-interest-rates/{starts_on}",
    response_model=LegalRateOut,
    responses=error_responses(401, 403, 404, 422),
    summary="One half-year's legal interest rates (operators)",
)
async def get_rate(starts_on: HalfYear, principal: Operator, session: DbSession) -> LegalRateOut:
    rate = await session.get(LegalInterestRate, _half_year(starts_on))
    if rate is None:
        raise NotFound(f"no legal interest rate for {starts_on.isoformat()}")
    return rate_out(rate)


@router.put(
    "/legal-interest-rates/{starts_on}",
    response_model=LegalRateOut,
    responses=error_responses(401, 403, 422),
    summary="Set a half-year's legal interest rates (operators)",
    description="The rates the Ministry publishes each semester, in percent a year.",
)
async def put_rate(
    starts_on: HalfYear, data: LegalRateIn, principal: Operator, session: DbSession
) -> LegalRateOut:
    day = _half_year(starts_on)
    rate = await session.get(LegalInterestRate, day, with_for_update=True)
    before: dict[str, str] | None = None
    if rate is None:
        rate = LegalInterestRate(starts_on=day)
        session.add(rate)
    else:
        before = {
            "professional_rate": str(rate.professional_rate),
            "individual_rate": str(rate.individual_rate),
        }
    rate.professional_rate = data.professional_rate
    rate.individual_rate = data.individual_rate
    await session.flush()
    await audit.record(
        session,
        principal,
        "set-legal-rate",
        "legal-interest-rate",
        day.isoformat(),
        {
            "professional_rate": str(data.professional_rate),
            "individual_rate": str(data.individual_rate),
            "before": before,
        },
    )
    return rate_out(rate)


# ---- the statement -----------------------------------------------------------------------------


@router.get(
    "/statement",
    response_model=StatementOut,
    responses=error_responses(401, 403, 404, 422),
    summary="A tenant's statement: every invoice, its balance and its late charges",
    description="Tenant admins see their own; operators name the tenant (tenant_id). Late "
    "interest (three times the legal rate, daily, on the amount due VAT included) and the €40 "
    "recovery indemnity per late invoice are claimed here, outside VAT.",
)
async def get_statement(
    principal: Caller,
    session: DbSession,
    request: Request,
    tenant_id: Annotated[int | None, id_query("Operators: the tenant.")] = None,
) -> StatementOut:
    if principal.tenant_id is not None:
        if principal.role is not Role.ADMIN:
            raise Forbidden(f"a {principal.role} may not do this")
        tenant_id = principal.tenant_id
    elif tenant_id is None:
        raise Invalid("query.tenant_id", "operators name the tenant")
    if await session.get(Tenant, tenant_id) is None:
        raise NotFound(f"no tenant {tenant_id}")
    found = await payments.statement(session, tenant_id, _today(request, datetime.now(UTC)))
    return StatementOut(
        tenant_id=found.tenant_id,
        on=found.on,
        invoices=[
            StatementLineOut(
                invoice_id=line.invoice.id,
                number=line.invoice.number,
                issued_on=line.invoice.issued_on,
                due_on=line.invoice.due_on,
                status=payments.InvoiceStatus(line.status),
                total=line.invoice.total,
                paid=line.paid,
                balance=line.balance,
                days_late=line.charges.days_late,
                late_interest=line.charges.interest,
                indemnity=line.charges.indemnity,
            )
            for line in found.lines
        ],
        total=found.total,
        paid=found.paid,
        balance=found.balance,
        late_interest=found.late_interest,
        indemnities=found.indemnities,
        amount_due=found.amount_due,
    )
