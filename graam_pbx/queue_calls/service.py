"""Reading queue calls: lists and CSV exports, scoped like call records.

Admins and supervisors read their tenant's queue calls, agents only the calls they answered,
operators the tenant they act in or every tenant's (``graam_pbx.cdr.service.reading_scope``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.cdr.parse import micros, moment
from graam_pbx.cdr.service import CdrScope, csv_line, formula_safe
from graam_pbx.queue_calls.models import QueueCall
from graam_pbx.queue_calls.schemas import QueueCallCursor, QueueCallFilters

EXPORT_CHUNK = 5000
EXPORT_COLUMNS = (
    "id",
    "tenant_id",
    "queue_id",
    "queue_name",
    "entry",
    "linkedid",
    "caller_uniqueid",
    "caller_number",
    "did",
    "entered_at",
    "position_at_entry",
    "answered_at",
    "agent_id",
    "device_id",
    "ended_at",
    "wait_seconds",
    "talk_seconds",
    "hold_seconds",
    "wrapup_seconds",
    "ring_no_answer",
    "outcome",
    "abandon_position",
    "exit_key",
    "source",
)


def _filtered(scope: CdrScope, filters: QueueCallFilters) -> Select[QueueCall]:
    statement = scope.restrict(select(QueueCall), QueueCall.tenant_id, QueueCall.agent_id)
    conditions: list[Any] = []
    if filters.since is not None:
        conditions.append(QueueCall.entered_at >= filters.since)
    if filters.until is not None:
        conditions.append(QueueCall.entered_at < filters.until)
    if filters.queue_id is not None:
        conditions.append(QueueCall.queue_id == filters.queue_id)
    if filters.agent_id is not None:
        conditions.append(QueueCall.agent_id == filters.agent_id)
    if filters.outcome is not None:
        conditions.append(QueueCall.outcome == filters.outcome.value)
    return statement.where(*conditions)


async def list_queue_calls(
    session: AsyncSession,
    scope: CdrScope,
    filters: QueueCallFilters,
    *,
    after: QueueCallCursor | None,
    limit: int,
) -> tuple[list[QueueCall], QueueCallCursor | None]:
    """One page of the scope's queue calls by entry time; the cursor of the next, if any."""
    statement = _filtered(scope, filters)
    if after is not None:
        entered = moment(after.entered_us)
        statement = statement.where(
            tuple_(QueueCall.entered_at, QueueCall.id) > tuple_(entered, after.id)
        )
    statement = statement.order_by(QueueCall.entered_at, QueueCall.id).limit(limit + 1)
    rows = list((await session.scalars(statement)).all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, QueueCallCursor(entered_us=micros(last.entered_at), id=last.id)


async def export_csv(
    sessions: async_sessionmaker[AsyncSession], scope: CdrScope, filters: QueueCallFilters
) -> AsyncIterator[str]:
    """The queue calls as CSV, a chunk per short transaction: memory stays flat."""
    head = csv_line(EXPORT_COLUMNS)
    after: QueueCallCursor | None = None
    while True:
        async with sessions() as session:
            rows, after = await list_queue_calls(
                session, scope, filters, after=after, limit=EXPORT_CHUNK
            )
        yield head + "".join(csv_line(_export_row(row)) for row in rows)
        head = ""
        if after is None:
            return


def _export_row(row: QueueCall) -> tuple[object, ...]:
    values: list[object] = []
    for name in EXPORT_COLUMNS:
        value = getattr(row, name)
        if isinstance(value, str):
            value = formula_safe(value)  # a caller sets its own number: never a formula
        elif isinstance(value, datetime):
            value = value.isoformat()
        values.append("" if value is None else value)
    return tuple(values)
