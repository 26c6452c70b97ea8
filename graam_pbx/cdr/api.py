from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from graam_pbx.cdr import service
from graam_pbx.cdr.schemas import (
    CdrCursor,
    CdrFilters,
    CdrOut,
    Direction,
    Disposition,
    SummaryOut,
)
from graam_pbx.cdr.service import CdrScope
from graam_pbx.deps import Caller, DbSession
from graam_pbx.fields import MAX_ID, IsoDateTime
from graam_pbx.rest import MAX_PAGE, CursorParam, Page, error_responses, started_stream

# Admins and supervisors read the tenant's calls; agents only their own; operators every
# tenant's, or the one they name.
router = APIRouter(prefix="/api/v1/cdrs", tags=["call records"])


async def reading_scope(
    session: DbSession,
    principal: Caller,
    x_graam_tenant: Annotated[
        int | None,
        Header(
            ge=1,
            le=MAX_ID,
            description="Operators only, optional here: the tenant (id) to act in.",
        ),
    ] = None,
    tenant_id: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_ID,
            description="Only this tenant's legs (operators; a tenant user may name only its own).",
        ),
    ] = None,
) -> CdrScope:
    return await service.reading_scope(
        session, principal, acting_in=x_graam_tenant, tenant_filter=tenant_id
    )


Reading = Annotated[CdrScope, Depends(reading_scope)]


def cdr_filters(
    since: Annotated[
        IsoDateTime | None, Query(description="Started at or after (ISO 8601)")
    ] = None,
    until: Annotated[IsoDateTime | None, Query(description="Started before (ISO 8601)")] = None,
    direction: Direction | None = None,
    from_number: Annotated[
        str | None, Query(alias="from", max_length=80, description="The caller")
    ] = None,
    to_number: Annotated[
        str | None, Query(alias="to", max_length=80, description="What was dialled")
    ] = None,
    did: Annotated[str | None, Query(max_length=32, description="The number called")] = None,
    queue_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    agent_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="A user id")] = None,
    forwarded_from: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="Legs this user's forwarding rules sent (a user id)"),
    ] = None,
    disposition: Disposition | None = None,
    min_duration: Annotated[
        Decimal | None, Query(ge=0, le=10**8, description="Seconds, ringing included")
    ] = None,
    min_billsec: Annotated[
        Decimal | None, Query(ge=0, le=10**8, description="Seconds answered")
    ] = None,
    linkedid: Annotated[
        str | None, Query(max_length=150, description="Every leg of one call")
    ] = None,
    billable: Annotated[
        bool | None, Query(description="Legs billing counts (true) or never counts (false)")
    ] = None,
) -> CdrFilters:
    return CdrFilters(
        since=since,
        until=until,
        direction=direction,
        from_number=from_number,
        to_number=to_number,
        did=did,
        queue_id=queue_id,
        agent_id=agent_id,
        forwarded_from=forwarded_from,
        disposition=disposition,
        min_duration=min_duration,
        min_billsec=min_billsec,
        linkedid=linkedid,
        billable=billable,
    )


Filters = Annotated[CdrFilters, Depends(cdr_filters)]


@router.get(
    "",
    response_model=Page[CdrOut],
    responses=error_responses(401, 403, 422),
    summary="Call legs, oldest first, filtered; agents see only their own",
)
async def list_cdrs(
    scope: Reading,
    session: DbSession,
    filters: Filters,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Legs per page")] = 50,
    cursor: CursorParam = None,
) -> Page[CdrOut]:
    rows, after = await service.list_cdrs(
        session, scope, filters, after=CdrCursor.decode(cursor), limit=limit
    )
    return Page[CdrOut](
        items=[CdrOut.of(cdr) for cdr in rows], next_cursor=after.encode() if after else None
    )


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "Every matching leg, as CSV"},
        **error_responses(401, 403, 422),
    },
    summary="Every matching leg as CSV, streamed (any range, constant memory)",
)
async def export_cdrs(scope: Reading, filters: Filters, request: Request) -> StreamingResponse:
    # The first chunk (the first query) is made before the 200 starts: a failure is an error.
    chunks = await started_stream(service.export_csv(request.app.state.sessions, scope, filters))
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="cdrs.csv"'},
    )


@router.get(
    "/summary",
    response_model=SummaryOut,
    responses=error_responses(401, 403, 422),
    summary="Legs, calls, answered and billed seconds by day and direction",
    description="Days in the tenant's time zone; across tenants (an operator naming none), "
    "UTC days.",
)
async def summary(scope: Reading, session: DbSession, filters: Filters) -> SummaryOut:
    return await service.summary(session, scope, filters, datetime.now(UTC))
