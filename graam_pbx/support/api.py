from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.auth.principal import Scope
from graam_pbx.deps import Caller, DbSession, client_address
from graam_pbx.errors import Forbidden
from graam_pbx.rest import Page, PageParams, error_responses, id_path, id_query, page_of
from graam_pbx.support import notify, service
from graam_pbx.support.models import SupportMessage, SupportRequest
from graam_pbx.support.schemas import (
    Status,
    SupportMessageCreate,
    SupportMessageOut,
    SupportRequestCreate,
    SupportRequestDetail,
    SupportRequestOut,
)

router = APIRouter(prefix="/api/v1/support-requests", tags=["support"])

RequestId = Annotated[int, id_path("The support request's id.")]


def request_out(request: SupportRequest, now: datetime | None = None) -> SupportRequestOut:
    return SupportRequestOut(
        id=request.id,
        tenant_id=request.tenant_id,
        subject=request.subject,
        priority=request.priority,
        status=request.status,
        requester_email=request.requester_email,
        created_at=request.created_at,
        due_at=request.due_at,
        answered_at=request.answered_at,
        closed_at=request.closed_at,
        overdue=service.is_overdue(request, now),
    )


def message_out(message: SupportMessage) -> SupportMessageOut:
    return SupportMessageOut(
        id=message.id,
        author=message.author_label,
        from_operator=message.from_operator,
        body=message.body,
        created_at=message.created_at,
    )


async def request_detail(session: AsyncSession, request: SupportRequest) -> SupportRequestDetail:
    messages = await service.conversation(session, request)
    return SupportRequestDetail(
        **request_out(request).model_dump(), messages=[message_out(m) for m in messages]
    )


async def _posted(
    session: AsyncSession, request: Request, background: BackgroundTasks, posted: service.Posted
) -> JSONResponse:
    """The request as it now stands (201), its e-mail sent once the response is out."""
    body = await request_detail(session, posted.request)
    # The response's background runs once the transaction has committed (DbSession).
    background.add_task(notify.dispatch, request.app.state.runtime.settings, posted.notification)
    return JSONResponse(body.model_dump(mode="json"), status_code=201, background=background)


@router.post(
    "",
    status_code=201,
    response_model=SupportRequestDetail,
    responses=error_responses(401, 403, 422),
    summary="File a support request (tenant admins and supervisors)",
    description="Due 24 h after filing (high), 48 h (medium) or 5 days (low); the operator's "
    "support address is e-mailed after the commit.",
)
async def file_request(
    data: SupportRequestCreate,
    principal: Caller,
    session: DbSession,
    request: Request,
    background: BackgroundTasks,
) -> JSONResponse:
    if principal.tenant_id is None:
        raise Forbidden("clients file support requests; operators answer them")
    scope = Scope(principal.tenant_id, principal, client_address(request))
    posted = await service.file_request(session, scope, data)
    return await _posted(session, request, background, posted)


@router.get(
    "",
    response_model=Page[SupportRequestOut],
    responses=error_responses(401, 403, 422),
    summary="Support requests, overdue first, then by due time",
    description="Operators see every tenant's (tenant_id narrows); a tenant's admins and "
    "supervisors see their own tenant's only.",
)
async def list_requests(
    principal: Caller,
    session: DbSession,
    page: PageParams,
    status: Annotated[Status | None, Query(description="Only requests in this status.")] = None,
    tenant_id: Annotated[int | None, id_query("Operators: one tenant's requests only.")] = None,
) -> Page[SupportRequestOut]:
    offset = page.after_id or 0  # the cursor is a position in this ordering
    now = datetime.now(UTC)
    rows, more = await service.list_requests(
        session,
        principal,
        tenant_id=tenant_id,
        status=status,
        offset=offset,
        limit=page.limit,
        now=now,
    )
    return page_of([request_out(r, now) for r in rows], offset + len(rows) if more else None)


@router.get(
    "/{request_id}",
    response_model=SupportRequestDetail,
    responses=error_responses(401, 403, 404, 422),
    summary="A support request and its conversation",
)
async def get_request(
    request_id: RequestId, principal: Caller, session: DbSession
) -> SupportRequestDetail:
    found = await service.get_request(session, principal, request_id)
    return await request_detail(session, found)


@router.post(
    "/{request_id}/messages",
    status_code=201,
    response_model=SupportRequestDetail,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Write in a request's conversation: the operator answers, the client adds",
    description="An operator's message answers the request (the requester is e-mailed); a "
    "client's puts it back to open (the operator's support address is e-mailed). A closed "
    "request takes no message (409).",
)
async def add_message(
    request_id: RequestId,
    data: SupportMessageCreate,
    principal: Caller,
    session: DbSession,
    request: Request,
    background: BackgroundTasks,
) -> JSONResponse:
    posted = await service.add_message(session, principal, request_id, data.body)
    return await _posted(session, request, background, posted)


@router.post(
    "/{request_id}/close",
    response_model=SupportRequestOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Close a support request (operators)",
)
async def close_request(
    request_id: RequestId, principal: Caller, session: DbSession
) -> SupportRequestOut:
    return request_out(await service.close_request(session, principal, request_id))
