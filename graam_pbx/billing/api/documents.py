"""Billing API: documents. An issued invoice's HTML, Factur-X PDF and XML, and the CSV of its
calls; each rendered once and served as first stored ever after."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import Response

from graam_pbx.billing import documents
from graam_pbx.billing.schemas import documents as schemas
from graam_pbx.deps import Caller, DbSession
from graam_pbx.rest import id_path

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])

InvoiceId = Annotated[int, id_path("The invoice's (or credit note's) id.")]


async def _document(
    session: DbSession, caller: Caller, invoice_id: int, fmt: str, suffix: str, disposition: str
) -> Response:
    invoice = await documents.readable_invoice(session, caller, invoice_id)
    content = await documents.stored_document(session, invoice.id, fmt)
    name = documents.file_name(invoice, suffix)
    return Response(
        content,
        media_type=documents.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'{disposition}; filename="{name}"'},
    )


@router.get(
    "/invoices/{invoice_id}/invoice.html",
    response_class=Response,
    responses=schemas.HTML,
    summary="An invoice as HTML (tenant admins their own, operators any)",
)
async def invoice_html(session: DbSession, caller: Caller, invoice_id: InvoiceId) -> Response:
    return await _document(session, caller, invoice_id, "html", ".html", "inline")


@router.get(
    "/invoices/{invoice_id}/invoice.pdf",
    response_class=Response,
    responses=schemas.PDF,
    summary="An invoice as a Factur-X PDF/A-3 (tenant admins their own, operators any)",
)
async def invoice_pdf(session: DbSession, caller: Caller, invoice_id: InvoiceId) -> Response:
    return await _document(session, caller, invoice_id, "pdf", ".pdf", "attachment")


@router.get(
    "/invoices/{invoice_id}/invoice.xml",
    response_class=Response,
    responses=schemas.XML,
    summary="An invoice's Factur-X XML, EN 16931 (tenant admins their own, operators any)",
)
async def invoice_xml(session: DbSession, caller: Caller, invoice_id: InvoiceId) -> Response:
    return await _document(session, caller, invoice_id, "xml", ".xml", "attachment")


@router.get(
    "/invoices/{invoice_id}/calls.csv",
    response_class=Response,
    responses=schemas.CSV,
    summary="Every rated call an invoice bills, as CSV (tenant admins their own, operators any)",
)
async def calls_csv(session: DbSession, caller: Caller, invoice_id: InvoiceId) -> Response:
    return await _document(session, caller, invoice_id, "csv", "-calls.csv", "attachment")
