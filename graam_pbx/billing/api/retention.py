"""Billing API: retention. An invoice's CDRs (archived months included), a tenant's whole
data, and a person's erasure."""

from __future__ import annotations

import contextlib
import os
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from graam_pbx.audit import service as audit
from graam_pbx.billing import invoicing, retention
from graam_pbx.billing.schemas import retention as schemas
from graam_pbx.deps import Caller, DbSession
from graam_pbx.rest import error_responses, id_path, id_query
from graam_pbx.settings import Settings

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])

InvoiceId = Annotated[int, id_path("The invoice's (or credit note's) id.")]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.runtime.settings
    return settings


@router.get(
    "/invoices/{invoice_id}/cdrs.csv",
    response_class=Response,
    responses=schemas.CDRS_CSV,
    summary="The CDRs of an invoice's period, from the archives or Postgres (tenant admins "
    "their own, operators any)",
)
async def invoice_cdrs(
    request: Request, session: DbSession, caller: Caller, invoice_id: InvoiceId
) -> Response:
    invoice = await invoicing.get_invoice(session, caller, invoice_id)
    content = await retention.archived_calls(session, _settings(request), invoice.id)
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{invoice.number}-cdrs.csv"'},
    )


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@router.get(
    "/export",
    response_class=FileResponse,
    responses=schemas.EXPORT_ZIP,
    summary="A tenant's whole data as a ZIP (tenant admins their own; operators ?tenant_id=)",
)
async def export(
    request: Request,
    session: DbSession,
    caller: Caller,
    tenant_id: Annotated[int | None, id_query("Operators: the tenant to export.")] = None,
) -> FileResponse:
    tenant = retention.export_tenant_of(caller, tenant_id)
    path = await retention.export_tenant(session, _settings(request), tenant)
    await audit.record(session, caller, "export", "tenant", tenant, {}, tenant_id=tenant)
    return FileResponse(
        path,
        media_type="application/zip",
        filename=f"tenant-{tenant}-export.zip",
        background=BackgroundTask(_remove, str(path)),
    )


@router.post(
    "/erasures",
    response_model=schemas.ErasureOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Erase a person where billing does not need it: a user, or a caller's number",
)
async def erase(
    request: Request, session: DbSession, caller: Caller, data: schemas.ErasureCreate
) -> schemas.ErasureOut:
    settings = _settings(request)
    if data.user_id is not None:
        report = await retention.erase_user(session, settings, caller, data.user_id)
    else:
        assert data.phone_number is not None  # noqa: S101 - the schema requires one of them
        report = await retention.erase_phone_number(
            session, settings, caller, data.phone_number, data.tenant_id
        )
    return schemas.ErasureOut(
        kind="user" if report.kind == "user" else "phone_number",
        user_id=report.user_id,
        cdrs=report.cdrs,
        queue_calls=report.queue_calls,
        archives_unreadable=report.archives_unreadable,
    )
