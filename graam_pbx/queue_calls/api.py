from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from graam_pbx.cdr.api import Reading
from graam_pbx.deps import DbSession
from graam_pbx.errors import Invalid
from graam_pbx.fields import MAX_ID, IsoDateTime
from graam_pbx.queue_calls import service
from graam_pbx.queue_calls.schemas import QueueCallCursor, QueueCallFilters, QueueCallOut
from graam_pbx.queue_calls.tracker import Outcome
from graam_pbx.rest import MAX_PAGE, CursorParam, Page, error_responses, started_stream

# Scoped like call records: admins and supervisors their tenant, agents the calls they
# answered, operators the tenant they act in or every tenant.
router = APIRouter(prefix="/api/v1/queue-calls", tags=["call records"])


def queue_call_filters(
    since: Annotated[
        IsoDateTime | None, Query(description="Entered the queue at or after (ISO 8601)")
    ] = None,
    until: Annotated[
        IsoDateTime | None, Query(description="Entered the queue before (ISO 8601)")
    ] = None,
    queue_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    agent_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="A user id")] = None,
    outcome: Outcome | None = None,
) -> QueueCallFilters:
    if since is not None and until is not None and until <= since:
        raise Invalid("query.until", "must be after since")
    return QueueCallFilters(
        since=since, until=until, queue_id=queue_id, agent_id=agent_id, outcome=outcome
    )


Filters = Annotated[QueueCallFilters, Depends(queue_call_filters)]


@router.get(
    "",
    response_model=Page[QueueCallOut],
    responses=error_responses(401, 403, 422),
    summary="Queue calls (one per caller's stay in a queue), by entry time, filtered",
)
async def list_queue_calls(
    scope: Reading,
    session: DbSession,
    filters: Filters,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Rows per page")] = 50,
    cursor: CursorParam = None,
) -> Page[QueueCallOut]:
    rows, after = await service.list_queue_calls(
        session, scope, filters, after=QueueCallCursor.decode(cursor), limit=limit
    )
    return Page[QueueCallOut](
        items=[QueueCallOut.of(row) for row in rows],
        next_cursor=after.encode() if after else None,
    )


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "Every matching queue call, as CSV"},
        **error_responses(401, 403, 422),
    },
    summary="Every matching queue call as CSV, streamed (any range, constant memory)",
)
async def export_queue_calls(
    scope: Reading, filters: Filters, request: Request
) -> StreamingResponse:
    # The first query runs before the 200 starts: a failure is still an error answer.
    chunks = await started_stream(service.export_csv(request.app.state.sessions, scope, filters))
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="queue-calls.csv"'},
    )
