"""Reading call detail records: lists, exports and daily summaries.

A tenant's users read their own tenant's legs: agents only the legs they took
(``agent_user_id``), everyone else the whole tenant. An operator reads the tenant it acts in
(``X-Graam-Tenant``) or, naming none, every tenant's legs (those no tenant could be found for
included), optionally restricted to one tenant by ``?tenant_id=``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, distinct, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from graam_pbx.auth.principal import Principal, Role
from graam_pbx.cdr.models import Cdr
from graam_pbx.cdr.parse import micros, moment
from graam_pbx.cdr.schemas import (
    CdrCursor,
    CdrFilters,
    Direction,
    Disposition,
    SummaryOut,
    SummaryRow,
    billed_seconds,
    dialled,
    leg_disposition,
    summary_range,
)
from graam_pbx.errors import Invalid, NotFound
from graam_pbx.tenants.models import Tenant

EXPORT_CHUNK = 5000
EXPORT_COLUMNS = (
    "id",
    "tenant_id",
    "linkedid",
    "uniqueid",
    "sequence",
    "started_at",
    "answered_at",
    "ended_at",
    "duration",
    "billsec",
    "billed_seconds",
    "disposition",
    "direction",
    "from_number",
    "to_number",
    "did",
    "queue_id",
    "agent_id",
    "caller_id",
    "channel",
    "peer_channel",
    "last_application",
    "source",
    # Migration 0010_cdr_legs: added last, so the columns before keep their places.
    "refusal_reason",
    "billable",
    "device",
    # Migration 0035_cdr_forwarded_from.
    "forwarded_from",
)
_PLAIN_NUMBER = re.compile(r"\+?[0-9]+")


# A summary across tenants has no one tenant's zone: its days are UTC days.
CROSS_TENANT_ZONE = "UTC"


_Row = TypeVar("_Row")


@dataclass(frozen=True)
class CdrScope:
    """Whose legs a request reads: one tenant's, or every tenant's (``tenant_id`` None).

    Only an operator's scope can span tenants; it then includes legs no tenant was found for.
    """

    principal: Principal
    tenant_id: int | None

    @property
    def role(self) -> Role:
        return self.principal.role

    def restrict(
        self,
        statement: Select[_Row],
        tenant: InstrumentedAttribute[Any],
        agent: InstrumentedAttribute[Any],
    ) -> Select[_Row]:
        """``statement`` narrowed to the scope's tenant (every tenant's rows for an operator
        reading across tenants) and, for an agent, to its own rows (``agent``: the column
        holding the answering agent's user id)."""
        if self.tenant_id is not None:
            statement = statement.where(tenant == self.tenant_id)
        elif self.role is not Role.OPERATOR:
            raise AssertionError("only an operator reads across tenants")
        if self.role is Role.AGENT:
            statement = statement.where(agent == self.principal.user_id)
        return statement


async def reading_scope(
    session: AsyncSession,
    principal: Principal,
    *,
    acting_in: int | None,
    tenant_filter: int | None,
) -> CdrScope:
    """The legs ``principal`` reads, from its tenant header and ``?tenant_id=`` filter.

    A tenant user's filter may only name its own tenant (anything else is a 422, the same
    whether that tenant exists or not); an operator's filter must agree with its header.
    """
    if principal.tenant_id is not None:
        if tenant_filter not in (None, principal.tenant_id):
            raise Invalid("query.tenant_id", "a tenant's users read only their own tenant")
        return CdrScope(principal, principal.tenant_id)
    if acting_in is not None:
        if await session.get(Tenant, acting_in) is None:
            raise NotFound(f"no tenant {acting_in}")
        if tenant_filter not in (None, acting_in):
            raise Invalid("query.tenant_id", "differs from the X-Graam-Tenant header")
        return CdrScope(principal, acting_in)
    # A filter is not checked against existing tenants: a deleted tenant's legs stay readable.
    return CdrScope(principal, tenant_filter)


def _filtered(scope: CdrScope, filters: CdrFilters) -> Select[Cdr]:
    statement = scope.restrict(select(Cdr), Cdr.tenant_id, Cdr.agent_user_id)
    conditions: list[Any] = []
    if filters.since is not None:
        conditions.append(Cdr.started_at >= filters.since)
    if filters.until is not None:
        conditions.append(Cdr.started_at < filters.until)
    if filters.direction is not None:
        conditions.append(Cdr.direction == filters.direction.value)
    if filters.from_number is not None:
        conditions.append(Cdr.src == filters.from_number)
    if filters.to_number is not None:
        conditions.append(func.coalesce(Cdr.to_number, Cdr.dst) == filters.to_number)
    if filters.did is not None:
        conditions.append(Cdr.did == filters.did)
    if filters.queue_id is not None:
        conditions.append(Cdr.queue_id == filters.queue_id)
    if filters.agent_id is not None:
        conditions.append(Cdr.agent_user_id == filters.agent_id)
    if filters.forwarded_from is not None:
        conditions.append(Cdr.forwarded_from == filters.forwarded_from)
    if filters.disposition is Disposition.REFUSED:
        conditions.append(Cdr.refusal_reason.is_not(None))
    elif filters.disposition is not None:
        conditions.append(Cdr.disposition == filters.disposition.asterisk)
        conditions.append(Cdr.refusal_reason.is_(None))
    if filters.billable is not None:
        conditions.append(Cdr.billable.is_(filters.billable))
    if filters.min_duration is not None:
        conditions.append(Cdr.duration >= filters.min_duration)
    if filters.min_billsec is not None:
        conditions.append(Cdr.billsec >= filters.min_billsec)
    if filters.linkedid is not None:
        conditions.append(Cdr.linkedid == filters.linkedid)
    return statement.where(*conditions)


def _after(statement: Select[Cdr], cursor: CdrCursor | None) -> Select[Cdr]:
    if cursor is None:
        return statement
    started = moment(cursor.started_us)
    return statement.where(tuple_(Cdr.started_at, Cdr.id) > tuple_(started, cursor.id))


async def list_cdrs(
    session: AsyncSession,
    scope: CdrScope,
    filters: CdrFilters,
    *,
    after: CdrCursor | None,
    limit: int,
) -> tuple[list[Cdr], CdrCursor | None]:
    """One page of the scope's legs, oldest first; the cursor of the next page, if any."""
    statement = _after(_filtered(scope, filters), after)
    statement = statement.order_by(Cdr.started_at, Cdr.id).limit(limit + 1)
    rows = list((await session.scalars(statement)).all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, cursor_after(rows[-1])


def cursor_after(cdr: Cdr) -> CdrCursor:
    return CdrCursor(started_us=micros(cdr.started_at), id=cdr.id)


async def export_csv(
    sessions: async_sessionmaker[AsyncSession], scope: CdrScope, filters: CdrFilters
) -> AsyncIterator[str]:
    """The legs as CSV text, a chunk at a time: memory stays flat whatever the range.

    Each chunk is read in its own short transaction (keyset on start and id), so a long
    download holds no snapshot and no connection between chunks.
    """
    # The header goes out with the first rows, so that the first query runs before anything
    # is sent (an API route can still answer an error instead).
    head = csv_line(EXPORT_COLUMNS)
    after: CdrCursor | None = None
    while True:
        async with sessions() as session:
            rows, after = await list_cdrs(session, scope, filters, after=after, limit=EXPORT_CHUNK)
        yield head + "".join(csv_line(_export_row(cdr)) for cdr in rows)
        head = ""
        if after is None:
            return


def _export_row(cdr: Cdr) -> tuple[object, ...]:
    return (
        cdr.id,
        cdr.tenant_id or "",
        cdr.linkedid,
        cdr.uniqueid,
        cdr.sequence,
        cdr.started_at.isoformat(),
        cdr.answered_at.isoformat() if cdr.answered_at else "",
        cdr.ended_at.isoformat(),
        cdr.duration,
        cdr.billsec,
        billed_seconds(cdr.billsec),
        leg_disposition(cdr),
        cdr.direction or "",
        formula_safe(cdr.src),
        formula_safe(dialled(cdr)),
        formula_safe(cdr.did or ""),
        cdr.queue_id or "",
        cdr.agent_user_id or "",
        formula_safe(cdr.clid),
        formula_safe(cdr.channel),
        formula_safe(cdr.dstchannel),
        formula_safe(cdr.lastapp),
        cdr.source,
        cdr.refusal_reason or "",
        "true" if cdr.billable else "false",
        formula_safe(cdr.device or ""),
        cdr.forwarded_from or "",
    )


def formula_safe(text: str) -> str:
    """A caller controls its caller ID: a spreadsheet must never run it as a formula."""
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_line(values: Iterable[object]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)
    return out.getvalue()


async def summary(
    session: AsyncSession, scope: CdrScope, filters: CdrFilters, now: datetime
) -> SummaryOut:
    """Legs, calls, answered legs and billed time by day and direction.

    Days are the tenant's (its time zone) when the scope is one tenant, UTC days across
    tenants: one platform-wide day needs one zone, and an operator wanting a tenant's own
    days names it (``?tenant_id=``).
    """
    since, until = summary_range(filters, now)
    zone = CROSS_TENANT_ZONE
    if scope.tenant_id is not None:
        timezone = await session.scalar(select(Tenant.timezone).where(Tenant.id == scope.tenant_id))
        zone = timezone or "UTC"
    ranged = filters.model_copy(update={"since": since, "until": until})
    legs = _filtered(scope, ranged).subquery()
    day = func.date(func.timezone(zone, legs.c.started_at)).label("day")
    refused = legs.c.refusal_reason.is_not(None)
    # A refusal answers to play its announcement, a feature code to talk to the agent: neither
    # is an answered call.
    answered = and_(
        legs.c.disposition == "ANSWERED",
        legs.c.refusal_reason.is_(None),
        legs.c.direction.is_distinct_from(Direction.FEATURE.value),
    )
    statement = (
        select(
            day,
            legs.c.direction,
            func.count().label("legs"),
            func.count(distinct(legs.c.linkedid)).label("calls"),
            func.count().filter(answered).label("answered"),
            func.count().filter(refused).label("refused"),
            func.count().filter(legs.c.billable).label("billable"),
            func.coalesce(func.sum(legs.c.billsec).filter(legs.c.billable), 0).label(
                "billable_billsec"
            ),
            func.coalesce(func.sum(legs.c.billsec), 0).label("total_billsec"),
            func.round(func.avg(legs.c.billsec).filter(answered), 6).label("average_billsec"),
        )
        .group_by(day, legs.c.direction)
        .order_by(day, legs.c.direction)
    )
    rows = (await session.execute(statement)).all()
    return SummaryOut(
        tenant_id=scope.tenant_id,
        since=since,
        until=until,
        timezone=zone,
        items=[
            SummaryRow(
                day=row.day,
                direction=row.direction,
                legs=row.legs,
                calls=row.calls,
                answered=row.answered,
                refused=row.refused,
                billable=row.billable,
                billable_billsec=row.billable_billsec,
                total_billsec=row.total_billsec,
                average_billsec=row.average_billsec,
            )
            for row in rows
        ],
    )
