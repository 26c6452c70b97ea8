"""Billing API: invoices, credit notes and month-end runs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.billing import invoicing
from graam_pbx.billing.models import Invoice
from graam_pbx.billing.schemas.invoices import (
    CreditNoteCreate,
    InvoiceDetail,
    InvoiceKind,
    InvoiceLineOut,
    InvoiceOut,
    InvoicingRunCreate,
    InvoicingRunOut,
    RunFailure,
)
from graam_pbx.deps import Caller, DbSession, Operator
from graam_pbx.rest import Page, PageParams, error_responses, id_path, id_query, page_of
from graam_pbx.settings import Settings

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])

InvoiceId = Annotated[int, id_path("The invoice's (or credit note's) id.")]


def invoice_out(invoice: Invoice) -> InvoiceOut:
    return InvoiceOut(
        id=invoice.id,
        number=invoice.number,
        kind="credit_note" if invoice.kind == "credit_note" else "invoice",
        tenant_id=invoice.tenant_id,
        credits_invoice_id=invoice.credits_invoice_id,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        issued_on=invoice.issued_on,
        due_on=invoice.due_on,
        currency=invoice.currency,
        locale=invoice.locale,
        tax_status=invoice.tax_status,
        vat_rate=invoice.vat_rate,
        net_total=invoice.net_total,
        vat_total=invoice.vat_total,
        total=invoice.total,
        paid_amount=invoice.paid_amount,
        paid_on=invoice.paid_on,
        vat_mention=invoicing.vat_mention(invoice.tax_status, invoice.locale),
    )


async def invoice_detail(session: AsyncSession, invoice: Invoice) -> InvoiceDetail:
    lines = await invoicing.invoice_lines(session, invoice)
    return InvoiceDetail(
        **invoice_out(invoice).model_dump(),
        lines=[
            InvoiceLineOut(
                position=line.position,
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
            for line in lines
        ],
        seller=invoice.seller,
        buyer=invoice.buyer,
    )


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.runtime.settings
    return settings


@router.get(
    "/invoices",
    response_model=Page[InvoiceOut],
    responses=error_responses(401, 403, 422),
    summary="Invoices and credit notes, oldest first",
    description="A tenant's admins see their own tenant's; operators every tenant's "
    "(tenant_id narrows). Supervisors and agents do not see billing (403).",
)
async def list_invoices(
    principal: Caller,
    session: DbSession,
    page: PageParams,
    tenant_id: Annotated[int | None, id_query("Operators: one tenant's invoices only.")] = None,
    kind: Annotated[InvoiceKind | None, Query(description="Invoices or credit notes only.")] = None,
) -> Page[InvoiceOut]:
    rows, next_after = await invoicing.list_invoices(
        session,
        principal,
        tenant_id=tenant_id,
        kind=kind,
        after_id=page.after_id,
        limit=page.limit,
    )
    return page_of([invoice_out(row) for row in rows], next_after)


@router.get(
    "/invoices/{invoice_id}",
    response_model=InvoiceDetail,
    responses=error_responses(401, 403, 404, 422),
    summary="An invoice with its lines, totals and VAT mention",
)
async def get_invoice(
    invoice_id: InvoiceId, principal: Caller, session: DbSession
) -> InvoiceDetail:
    invoice = await invoicing.get_invoice(session, principal, invoice_id)
    return await invoice_detail(session, invoice)


@router.post(
    "/invoicing-runs",
    response_model=InvoicingRunOut,
    responses=error_responses(401, 403, 422),
    summary="Run the month-end invoicing now (operators)",
    description="Makes every invoice of an ended billing month not made yet (or of `month` "
    "only), one transaction per tenant and month; running it again makes nothing new. "
    "Answers the new invoices' ids, the unrated calls left off and the items without a price.",
)
async def run_invoicing(
    data: InvoicingRunCreate, principal: Operator, session: DbSession, request: Request
) -> InvoicingRunOut:
    report = await invoicing.invoice_due_report(
        request.app.state.sessions, _settings(request), datetime.now(UTC), month=data.month
    )
    await audit.record(
        session,
        principal,
        "run",
        "invoicing",
        None,
        {
            "month": data.month.isoformat() if data.month else None,
            "invoice_ids": report.invoice_ids,
        },
    )
    return InvoicingRunOut(
        invoice_ids=report.invoice_ids,
        unrated_calls=report.unrated_calls,
        warnings=report.warnings,
        failed=[RunFailure(tenant_id=t, month=m) for t, m in report.failed],
    )


@router.post(
    "/invoices/{invoice_id}/credit-notes",
    status_code=201,
    response_model=InvoiceDetail,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Cancel an invoice by a credit note (operators)",
    description="A credit note of the whole invoice: its lines negated, numbered in the A "
    "series. An invoice is credited once (409 after); a credit note is never credited (409).",
)
async def credit_invoice(
    invoice_id: InvoiceId,
    data: CreditNoteCreate,
    principal: Operator,
    session: DbSession,
    request: Request,
) -> InvoiceDetail:
    today = datetime.now(ZoneInfo(_settings(request).billing_timezone)).date()
    note = await invoicing.credit_invoice(session, principal, invoice_id, data.reason, today=today)
    return await invoice_detail(session, note)
