"""Billing API: termination (the client's notice) and port-out requests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from graam_pbx.auth.principal import Role, Scope
from graam_pbx.billing import portout, termination
from graam_pbx.billing.models import PortOutRequest
from graam_pbx.billing.portout import PortOutState
from graam_pbx.billing.schemas.termination import (
    PortOutCreate,
    PortOutOut,
    PortOutUpdate,
    TerminationCreate,
    TerminationOut,
)
from graam_pbx.deps import Caller, DbSession, allow, client_address
from graam_pbx.errors import Forbidden
from graam_pbx.rest import Page, PageParams, error_responses, id_path, id_query, page_of
from graam_pbx.settings import Settings

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])

PortOutId = Annotated[int, id_path("The port-out request's id.")]
TenantAdmin = Annotated[Scope, Depends(allow(Role.ADMIN))]
TenantReader = Annotated[Scope, Depends(allow(Role.ADMIN, Role.SUPERVISOR))]


def _today(request: Request) -> date:
    settings: Settings = request.app.state.runtime.settings
    return termination.billing_today(settings, datetime.now(UTC))


def termination_out(view: termination.Termination) -> TerminationOut:
    return TerminationOut(
        tenant_id=view.tenant_id,
        status=view.status,
        notice_given_on=view.notice_given_on,
        terminates_on=view.terminates_on,
        earliest_last_day=view.earliest_last_day,
    )


def port_out_out(row: PortOutRequest) -> PortOutOut:
    return PortOutOut(
        id=row.id,
        tenant_id=row.tenant_id,
        number_id=row.phone_number_id,
        e164=row.e164,
        state=PortOutState(row.state),
        requested_at=row.requested_at,
        requested_by=row.requested_by,
        updated_at=row.updated_at,
        note=row.note,
    )


@router.get(
    "/termination",
    response_model=TerminationOut,
    responses=error_responses(401, 404, 422),
    summary="The tenant's termination notice, if any",
    description="Its status, the notice's day and last day of service (null without a "
    "notice), and the earliest last day a notice given today may name (30 days ahead).",
)
async def get_termination(
    scope: TenantReader, session: DbSession, request: Request
) -> TerminationOut:
    return termination_out(await termination.get_termination(session, scope, _today(request)))


@router.post(
    "/termination",
    status_code=201,
    response_model=TerminationOut,
    responses=error_responses(401, 404, 409, 422),
    summary="Give notice of termination (the tenant's admin)",
    description="`last_day` must be 30 days after today (billing clock) or later, else 422 on "
    "`body.last_day` naming the earliest day. The tenant becomes `terminating` until its last "
    "day, then `terminated`; its final invoice bills the started month in full. 409 "
    "`no-billing-account` without a billing account, `notice-already-given` while one runs.",
)
async def give_notice(
    data: TerminationCreate, scope: TenantAdmin, session: DbSession, request: Request
) -> TerminationOut:
    view = await termination.give_notice(session, scope, data.last_day, _today(request))
    return termination_out(view)


@router.delete(
    "/termination",
    status_code=204,
    responses=error_responses(401, 404, 409, 422),
    summary="Withdraw the notice before its last day (the tenant's admin)",
    description="The tenant is active again. 404 without a notice; 409 `termination-final` "
    "on or after the last day.",
)
async def withdraw_notice(scope: TenantAdmin, session: DbSession, request: Request) -> Response:
    await termination.withdraw_notice(session, scope, _today(request))
    return Response(status_code=204)


@router.post(
    "/port-outs",
    status_code=201,
    response_model=PortOutOut,
    responses=error_responses(401, 404, 409, 422),
    summary="Ask to port one of the tenant's numbers out (the tenant's admin)",
    description="A request in state `requested`. 422 on `body.number_id` if the number is "
    "not the tenant's; 409 `port-out-pending` while another request for it is under way.",
)
async def request_port_out(
    data: PortOutCreate, scope: TenantAdmin, session: DbSession
) -> PortOutOut:
    row = await portout.request_port_out(session, scope, data.number_id, datetime.now(UTC))
    return port_out_out(row)


@router.get(
    "/port-outs",
    response_model=Page[PortOutOut],
    responses=error_responses(401, 422),
    summary="Port-out requests (a tenant: its own; operators: all, or one tenant's)",
)
async def list_port_outs(
    principal: Caller,
    session: DbSession,
    page: PageParams,
    tenant_id: Annotated[int | None, id_query("Operators: one tenant's requests.")] = None,
    state: Annotated[PortOutState | None, Query(description="Only in this state.")] = None,
) -> Page[PortOutOut]:
    _ensure_reader(principal.role)
    rows, after = await portout.list_port_outs(
        session,
        principal,
        tenant_id=tenant_id,
        state=state,
        after_id=page.after_id,
        limit=page.limit,
    )
    return page_of([port_out_out(r) for r in rows], after)


@router.get(
    "/port-outs/{port_out_id}",
    response_model=PortOutOut,
    responses=error_responses(401, 404, 422),
    summary="One port-out request",
)
async def get_port_out(port_out_id: PortOutId, principal: Caller, session: DbSession) -> PortOutOut:
    _ensure_reader(principal.role)
    return port_out_out(await portout.get_port_out(session, principal, port_out_id))


@router.patch(
    "/port-outs/{port_out_id}",
    response_model=PortOutOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Move a port-out request on",
    description="The operator: `accepted`, `rejected` (from requested or accepted), "
    "`completed` (from accepted: the number leaves, status `ported_out`, never sold again; "
    "409 `number-in-use` naming the routes that still use it). The tenant's admin: "
    "`cancelled` while requested. 409 `port-out-state` for any other move.",
)
async def move_port_out(
    port_out_id: PortOutId,
    data: PortOutUpdate,
    principal: Caller,
    session: DbSession,
    request: Request,
) -> PortOutOut:
    row = await portout.move_port_out(
        session,
        principal,
        port_out_id,
        PortOutState(data.state),
        data.note,
        datetime.now(UTC),
        client_address(request),
    )
    return port_out_out(row)


def _ensure_reader(role: Role) -> None:
    if role is Role.AGENT:
        raise Forbidden("an agent may not read port-out requests")
