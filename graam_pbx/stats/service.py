"""KPIs of a tenant's queues and agents: Postgres sums per bucket, ``kpi`` combines them.

Every query is filtered on the scope's tenant; an agent reads only its own figures.
"""

from __future__ import annotations

import asyncio
import csv
import enum
import functools
import io
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    DateTime,
    and_,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from graam_pbx.agents.models import AgentStateInterval
from graam_pbx.auth.models import User
from graam_pbx.auth.principal import Role, Scope
from graam_pbx.cdr.models import Cdr
from graam_pbx.db import get_in_tenant
from graam_pbx.errors import Forbidden, Invalid
from graam_pbx.queue_calls.models import QueueCall
from graam_pbx.queue_calls.tracker import OUTCOMES
from graam_pbx.queues.models import Queue
from graam_pbx.stats import erlang, erlang_a
from graam_pbx.stats.kpi import (
    DEFAULT_SERVICE_LEVEL_SECONDS,
    DEFAULT_SHORT_ABANDON_SECONDS,
    AgentKpis,
    Interval,
    OutboundSums,
    QueueKpis,
    QueueSums,
    StateSums,
    agent_kpis,
    bucket_start,
    buckets,
    local_label,
    next_bucket,
    queue_kpis,
)
from graam_pbx.stats.models import QueueStatsRollup
from graam_pbx.tenants.models import Tenant

# Periods are read within these bounds (a date near year 1 or 9999 has no bucket around it).
EARLIEST_YEAR = 1970
LATEST_YEAR = 2199
# Beyond this many buckets a request is refused: ask for a wider interval.
MAX_BUCKETS = 3000
SHORTEST_BUCKET = {
    Interval.QUARTER: timedelta(minutes=15),
    Interval.HOUR: timedelta(hours=1),
    Interval.DAY: timedelta(hours=23),
    Interval.MONTH: timedelta(days=28),
}

# The facts other domains write, as Core tables (their columns are the KPIs' contract).
queue_calls = QueueCall.__table__
state_intervals = AgentStateInterval.__table__
cdr_legs = Cdr.__table__
# Queue calls pre-summed per queue and 15-minute UTC bucket (kept exact by the database).
queue_rollup = QueueStatsRollup.__table__
ROLLUP_BUCKET = timedelta(minutes=15)
ROLLUP_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

ANSWERED = ("answered", "transferred")


@dataclass(frozen=True)
class Period:
    """[since, until) cut in buckets of the tenant's wall clock."""

    since: datetime
    until: datetime
    interval: Interval
    zone: ZoneInfo
    starts: list[datetime]

    @functools.cached_property
    def ends(self) -> list[datetime]:
        """Each bucket's end: the next one's start (``buckets`` made them so), then one more."""
        return [*self.starts[1:], next_bucket(self.starts[-1], self.interval, self.zone)]


async def tenant_zone(session: AsyncSession, tenant_id: int) -> ZoneInfo:
    """The tenant's time zone (UTC if the tenant's is unknown to this system)."""
    name = await session.scalar(select(Tenant.timezone).where(Tenant.id == tenant_id))
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, OSError):
        return ZoneInfo("UTC")


def _aware(value: datetime, zone: ZoneInfo) -> datetime:
    # A date and time without an offset is the tenant's wall clock.
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


async def period(
    session: AsyncSession,
    scope: Scope,
    since: datetime | None,
    until: datetime | None,
    interval: Interval,
) -> Period:
    """The period asked for; by default the tenant's current day. Too many buckets: 422."""
    zone = await tenant_zone(session, scope.tenant_id)
    if since is None:
        since = (
            datetime.now(UTC).astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        )
    since = _aware(since, zone)
    _check_year("since", since)
    until = next_bucket(since, Interval.DAY, zone) if until is None else _aware(until, zone)
    _check_year("until", until)
    if until <= since:
        raise Invalid("query.until", "must be after since")
    if until - since > timedelta(days=3700):
        raise Invalid("query.until", "a period is ten years at most")
    shortest = SHORTEST_BUCKET[interval]
    if (until - since) / shortest > MAX_BUCKETS + 1:
        # Refused before the buckets are listed: ten years of quarters would take a while.
        raise Invalid(
            "query.interval",
            f"more than {MAX_BUCKETS} buckets of {interval.value}: take a wider one",
        )
    starts = buckets(since.astimezone(UTC), until.astimezone(UTC), interval, zone)
    if len(starts) > MAX_BUCKETS:
        raise Invalid(
            "query.interval",
            f"{len(starts)} buckets of {interval.value}: {MAX_BUCKETS} at most, take a wider one",
        )
    return Period(since.astimezone(UTC), until.astimezone(UTC), interval, zone, starts)


def _check_year(name: str, moment: datetime) -> None:
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise Invalid(f"query.{name}", f"must be between {EARLIEST_YEAR} and {LATEST_YEAR}")


def _bucket(at: Any, span: Period) -> ColumnElement[datetime]:
    """A bucket's start, in SQL; the same instant as ``kpi.bucket_start`` gives.

    15 minutes and hours: ``date_bin`` from the first bucket's start (true wherever offsets
    change by whole hours, as in Europe); days and months: ``date_trunc`` in the tenant's zone.
    """
    if span.interval is Interval.QUARTER:
        return func.date_bin(timedelta(minutes=15), at, span.starts[0])
    if span.interval is Interval.HOUR:
        return func.date_bin(timedelta(hours=1), at, span.starts[0])
    field = "day" if span.interval is Interval.DAY else "month"
    return func.date_trunc(field, at, span.zone.key)


# ---- queues ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueRow:
    bucket_start: datetime
    bucket_end: datetime
    queue_id: int
    queue_name: str | None
    kpis: QueueKpis


def _guard_queue_readers(scope: Scope) -> None:
    if scope.role is Role.AGENT:
        raise Forbidden("agents read their own figures: /api/v1/stats/agents")


async def queue_sums(
    session: AsyncSession,
    scope: Scope,
    span: Period,
    queue_id: int | None,
    *,
    rollup: bool = True,
) -> tuple[dict[tuple[datetime, int], QueueSums], dict[int, str]]:
    """Sums per (bucket, queue) of the tenant's queue calls, and the queues' names.

    Read from the 15-minute rollup when the period and its buckets are whole quarters of an
    hour (and ``rollup``), from the queue calls themselves otherwise: the same figures.
    """
    if not (rollup and whole_quarters(span)):
        return await _raw_queue_sums(session, scope, span, queue_id, None)
    sums, names, stale = await _rollup_queue_sums(session, scope, span, queue_id)
    if stale:
        # Rows counted with other thresholds than the queue's (the triggers' locks leave none;
        # a row restored or written by hand could): that queue's figures come from its calls.
        sums = {key: item for key, item in sums.items() if key[1] not in stale}
        names = {qid: name for qid, name in names.items() if qid not in stale}
        raw, raw_names = await _raw_queue_sums(session, scope, span, queue_id, sorted(stale))
        sums.update(raw)
        names.update(raw_names)
    return sums, names


def whole_quarters(span: Period) -> bool:
    """True when the period's bounds and its buckets' starts are 15-minute UTC bounds: each
    rollup bucket then lies in one of the period's buckets (true of every zone today)."""
    return all(
        (moment - ROLLUP_EPOCH) % ROLLUP_BUCKET == timedelta(0)
        for moment in (span.since, span.until, *span.starts)
    )


async def _rollup_queue_sums(
    session: AsyncSession, scope: Scope, span: Period, queue_id: int | None
) -> tuple[dict[tuple[datetime, int], QueueSums], dict[int, str], set[int]]:
    r = queue_rollup
    bucket = _bucket(r.c.bucket_start, span).label("bucket")
    # The thresholds each group was counted with, compared with the queues' own below (a
    # join with the queues here would cost a tenth of a year's query).
    counted_with = [
        func.min(r.c.service_level_seconds).label("service_level_min"),
        func.max(r.c.service_level_seconds).label("service_level_max"),
        func.min(r.c.short_abandon_seconds).label("short_abandon_min"),
        func.max(r.c.short_abandon_seconds).label("short_abandon_max"),
    ]
    summed = [
        func.sum(r.c[name]).label(name)
        for name in QueueSums.__dataclass_fields__
        if name != "longest_wait"
    ]
    statement = (
        select(
            bucket,
            r.c.queue_id,
            func.max(r.c.queue_name).label("queue_name"),
            *summed,
            func.max(r.c.longest_wait).label("longest_wait"),
            *counted_with,
        )
        .where(
            r.c.tenant_id == scope.tenant_id,
            r.c.bucket_start >= span.since,
            r.c.bucket_start < span.until,
        )
        .group_by(bucket, r.c.queue_id)
    )
    if queue_id is not None:
        statement = statement.where(r.c.queue_id == queue_id)
    thresholds_now = {
        row.id: (row.service_level_seconds, row.short_abandon_seconds)
        for row in await session.execute(
            select(Queue.id, Queue.service_level_seconds, Queue.short_abandon_seconds).where(
                Queue.tenant_id == scope.tenant_id
            )
        )
    }
    sums: dict[tuple[datetime, int], QueueSums] = {}
    names: dict[int, str] = {}
    stale: set[int] = set()
    width = len(QueueSums.__dataclass_fields__)
    # By position (the sums are selected in QueueSums' order): a year's buckets are read
    # in a fraction of the time names would take.
    for row in await session.execute(statement):
        bucket_at, qid, name = row[0], row[1], row[2]
        sl_min, sl_max, short_min, short_max = row[3 + width :]
        if {(sl_min, short_min), (sl_max, short_max)} != {thresholds_now.get(qid)}:
            stale.add(qid)
        sums[(bucket_at.astimezone(UTC), qid)] = QueueSums(*row[3 : 3 + width])
        _keep_name(names, qid, name)
    return sums, names, stale


def _keep_name(names: dict[int, str], queue_id: int, name: str) -> None:
    # The name recorded on the calls; one renamed queue shows its greatest name, either path.
    names[queue_id] = max(names.get(queue_id, name), name)


async def _raw_queue_sums(
    session: AsyncSession,
    scope: Scope,
    span: Period,
    queue_id: int | None,
    queue_ids: list[int] | None,
) -> tuple[dict[tuple[datetime, int], QueueSums], dict[int, str]]:
    qc = queue_calls
    bucket = _bucket(qc.c.entered_at, span).label("bucket")
    answered = qc.c.outcome.in_(ANSWERED)
    abandoned = qc.c.outcome == "abandoned"
    service_level = func.coalesce(Queue.service_level_seconds, DEFAULT_SERVICE_LEVEL_SECONDS)
    short_abandon = func.coalesce(Queue.short_abandon_seconds, DEFAULT_SHORT_ABANDON_SECONDS)

    def count(condition: ColumnElement[bool]) -> Any:
        return func.count().filter(condition)

    def total(value: Any, condition: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(value).filter(condition), 0)

    others = [count(qc.c.outcome == name).label(name) for name in OUTCOMES if name != "answered"]
    statement = (
        select(
            bucket,
            qc.c.queue_id,
            func.max(qc.c.queue_name).label("queue_name"),
            func.count().label("offered"),
            count(answered).label("answered"),
            count(and_(abandoned, qc.c.wait_seconds < short_abandon)).label("short_abandoned"),
            count(and_(answered, qc.c.wait_seconds <= service_level)).label("answered_within"),
            count(and_(abandoned, qc.c.wait_seconds <= service_level)).label("abandoned_within"),
            *others,
            total(qc.c.wait_seconds, answered).label("answered_wait"),
            total(qc.c.wait_seconds, abandoned).label("abandoned_wait"),
            total(qc.c.talk_seconds, answered).label("talk"),
            total(qc.c.hold_seconds, answered).label("hold"),
            total(qc.c.wrapup_seconds, answered).label("wrapup"),
            func.coalesce(func.max(qc.c.wait_seconds), 0).label("longest_wait"),
        )
        .select_from(
            qc.outerjoin(Queue, and_(Queue.id == qc.c.queue_id, Queue.tenant_id == qc.c.tenant_id))
        )
        .where(
            qc.c.tenant_id == scope.tenant_id,
            qc.c.entered_at >= span.since,
            qc.c.entered_at < span.until,
            # A deleted queue's calls keep its name but lose its id: not a queue to report on.
            qc.c.queue_id.is_not(None),
        )
        .group_by(bucket, qc.c.queue_id)
    )
    if queue_id is not None:
        statement = statement.where(qc.c.queue_id == queue_id)
    if queue_ids is not None:
        statement = statement.where(qc.c.queue_id.in_(queue_ids))
    sums: dict[tuple[datetime, int], QueueSums] = {}
    names: dict[int, str] = {}
    for row in (await session.execute(statement)).mappings():
        values = {name: row[name] for name in QueueSums.__dataclass_fields__}
        # "transferred" calls were answered first: the SQL counted them in both columns.
        sums[(row["bucket"].astimezone(UTC), row["queue_id"])] = QueueSums(**values)
        _keep_name(names, row["queue_id"], row["queue_name"])
    return sums, names


async def rebuild_queue_rollup(
    session: AsyncSession, tenant_id: int | None = None, queue_id: int | None = None
) -> int:
    """Recompute the 15-minute rollup from the queue calls (all, a tenant's or a queue's);
    the number of rollup rows written."""
    written = await session.scalar(
        text("SELECT queue_stats_rollup_rebuild(:tenant_id, :queue_id)"),
        {"tenant_id": tenant_id, "queue_id": queue_id},
    )
    return int(written or 0)


@dataclass(frozen=True)
class QueueFigures:
    """A period's queue KPIs: per bucket and queue, each queue's totals, and every queue
    together (the queues' sums added, then the KPIs' formulas: a ratio of sums, never a mean
    of ratios), per bucket and over the period."""

    rows: list[QueueRow]
    totals: list[QueueRow]
    combined: list[QueueKpis]  # one per bucket of the period
    combined_total: QueueKpis


async def queue_stats(
    session: AsyncSession, scope: Scope, span: Period, queue_id: int | None
) -> tuple[list[QueueRow], list[QueueRow]]:
    """Per bucket and queue, every bucket of the period; then each queue's totals."""
    figures = await queue_figures(session, scope, span, queue_id)
    return figures.rows, figures.totals


async def queue_figures(
    session: AsyncSession, scope: Scope, span: Period, queue_id: int | None
) -> QueueFigures:
    """``queue_stats`` and every queue together, from one read of the queues' sums."""
    _guard_queue_readers(scope)
    if queue_id is not None:
        queue = await get_in_tenant(session, Queue, scope.tenant_id, queue_id)
    sums, names = await queue_sums(session, scope, span, queue_id)
    queue_ids = sorted({key[1] for key in sums} | ({queue_id} if queue_id else set()))
    if queue_id is not None:
        names.setdefault(queue_id, queue.name)
    rows: list[QueueRow] = []
    totals: list[QueueRow] = []
    # Most buckets of a queue are empty (nights, a quiet queue): their KPIs are computed once
    # per request, not once per bucket and queue.
    empty = queue_kpis(QueueSums())
    for qid in queue_ids:
        overall = QueueSums()
        for start, end in zip(span.starts, span.ends, strict=True):
            item = sums.get((start, qid))
            kpis = empty
            if item is not None:
                overall = overall + item
                kpis = queue_kpis(item)
            rows.append(QueueRow(start, end, qid, names.get(qid), kpis))
        totals.append(QueueRow(span.since, span.until, qid, names.get(qid), queue_kpis(overall)))
    per_bucket: dict[datetime, QueueSums] = {}
    for (start, _queue), item in sums.items():
        per_bucket[start] = per_bucket.get(start, QueueSums()) + item
    together = QueueSums()
    for item in per_bucket.values():
        together = together + item
    combined = [queue_kpis(per_bucket[s]) if s in per_bucket else empty for s in span.starts]
    return QueueFigures(rows, totals, combined, queue_kpis(together))


# ---- agents ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentRow:
    bucket_start: datetime
    bucket_end: datetime
    agent_id: int
    kpis: AgentKpis


def _agent_filter(scope: Scope, agent_id: int | None) -> int | None:
    if scope.role is Role.AGENT:
        if agent_id not in (None, scope.principal.user_id):
            raise Forbidden("an agent reads only its own figures")
        return scope.principal.user_id
    return agent_id


async def agent_stats(
    session: AsyncSession, scope: Scope, span: Period, agent_id: int | None, now: datetime
) -> tuple[list[AgentRow], list[AgentRow]]:
    """Per bucket and agent: queue calls handled, time by state, outbound legs; then totals."""
    agent_id = _agent_filter(scope, agent_id)
    if agent_id is not None:
        await get_in_tenant(session, User, scope.tenant_id, agent_id)  # another's: 404
    calls = await _agent_call_sums(session, scope, span, agent_id)
    states = await _agent_state_sums(session, scope, span, agent_id, now)
    outbound = await _agent_outbound_sums(session, scope, span, agent_id)
    agent_ids = sorted(
        {k[1] for k in calls}
        | {k[1] for k in states}
        | {k[1] for k in outbound}
        | ({agent_id} if agent_id else set())
    )
    rows: list[AgentRow] = []
    totals: list[AgentRow] = []
    empty = agent_kpis(QueueSums(), StateSums(), OutboundSums())
    for aid in agent_ids:
        all_calls, all_states, all_out = QueueSums(), StateSums(), OutboundSums()
        for start, end in zip(span.starts, span.ends, strict=True):
            key = (start, aid)
            if key not in calls and key not in states and key not in outbound:
                rows.append(AgentRow(start, end, aid, empty))  # nothing in this bucket
                continue
            c = calls.get(key, QueueSums())
            s = states.get(key, StateSums())
            o = outbound.get(key, OutboundSums())
            all_calls, all_states, all_out = all_calls + c, all_states + s, all_out + o
            rows.append(AgentRow(start, end, aid, agent_kpis(c, s, o)))
        totals.append(
            AgentRow(span.since, span.until, aid, agent_kpis(all_calls, all_states, all_out))
        )
    return rows, totals


async def _agent_call_sums(
    session: AsyncSession, scope: Scope, span: Period, agent_id: int | None
) -> dict[tuple[datetime, int], QueueSums]:
    qc = queue_calls
    bucket = _bucket(qc.c.entered_at, span).label("bucket")
    statement = (
        select(
            bucket,
            qc.c.agent_id,
            func.count().label("answered"),
            func.coalesce(func.sum(qc.c.talk_seconds), 0).label("talk"),
            func.coalesce(func.sum(qc.c.hold_seconds), 0).label("hold"),
            func.coalesce(func.sum(qc.c.wrapup_seconds), 0).label("wrapup"),
        )
        .where(
            qc.c.tenant_id == scope.tenant_id,
            qc.c.entered_at >= span.since,
            qc.c.entered_at < span.until,
            qc.c.agent_id.is_not(None),
            qc.c.outcome.in_(ANSWERED),
        )
        .group_by(bucket, qc.c.agent_id)
    )
    if agent_id is not None:
        statement = statement.where(qc.c.agent_id == agent_id)
    return {
        (row.bucket.astimezone(UTC), row.agent_id): QueueSums(
            answered=row.answered, talk=row.talk, hold=row.hold, wrapup=row.wrapup
        )
        for row in await session.execute(statement)
    }


async def _agent_state_sums(
    session: AsyncSession, scope: Scope, span: Period, agent_id: int | None, now: datetime
) -> dict[tuple[datetime, int], StateSums]:
    # Each interval is cut at the buckets' bounds in SQL (the buckets come from kpi, so a
    # 23- or 25-hour day is exactly that), and summed per state and pause reason.
    grid = select(
        func.unnest(literal(span.starts, ARRAY(DateTime(timezone=True)))).label("b_start"),
        func.unnest(literal(span.ends, ARRAY(DateTime(timezone=True)))).label("b_end"),
    ).subquery("grid")
    si = state_intervals
    ended = func.coalesce(si.c.ended_at, literal(now, DateTime(timezone=True)))
    lower = func.greatest(si.c.started_at, grid.c.b_start, literal(span.since))
    upper = func.least(ended, grid.c.b_end, literal(span.until))
    seconds = func.sum(func.extract("epoch", upper - lower)).label("seconds")
    statement = (
        select(grid.c.b_start, si.c.agent_id, si.c.state, si.c.pause_reason_code, seconds)
        .select_from(si.join(grid, and_(si.c.started_at < grid.c.b_end, ended > grid.c.b_start)))
        .where(
            si.c.tenant_id == scope.tenant_id,
            si.c.started_at < span.until,
            or_(si.c.ended_at.is_(None), si.c.ended_at > span.since),
            si.c.started_at < literal(now, DateTime(timezone=True)),
        )
        .group_by(grid.c.b_start, si.c.agent_id, si.c.state, si.c.pause_reason_code)
    )
    if agent_id is not None:
        statement = statement.where(si.c.agent_id == agent_id)
    sums: dict[tuple[datetime, int], StateSums] = {}
    for row in await session.execute(statement):
        if row.seconds is None or row.seconds <= 0:
            continue
        key = (row.b_start.astimezone(UTC), row.agent_id)
        sums.setdefault(key, StateSums()).add(row.state, row.pause_reason_code, row.seconds)
    return sums


async def _agent_outbound_sums(
    session: AsyncSession, scope: Scope, span: Period, agent_id: int | None
) -> dict[tuple[datetime, int], OutboundSums]:
    legs = cdr_legs
    bucket = _bucket(legs.c.started_at, span).label("bucket")
    statement = (
        select(
            bucket,
            legs.c.agent_user_id,
            func.count().label("attempts"),
            func.count().filter(legs.c.billable).label("answered"),
            func.coalesce(func.sum(legs.c.billsec).filter(legs.c.billable), 0).label("talk"),
        )
        .where(
            legs.c.tenant_id == scope.tenant_id,
            legs.c.direction == "outbound",
            legs.c.agent_user_id.is_not(None),
            legs.c.started_at >= span.since,
            legs.c.started_at < span.until,
        )
        .group_by(bucket, legs.c.agent_user_id)
    )
    if agent_id is not None:
        statement = statement.where(legs.c.agent_user_id == agent_id)
    return {
        (row.bucket.astimezone(UTC), row.agent_user_id): OutboundSums(
            row.attempts, row.answered, row.talk
        )
        for row in await session.execute(statement)
    }


# ---- staffing -------------------------------------------------------------------------------


class StaffingModel(enum.StrEnum):
    ERLANG_C = "erlang-c"  # callers never abandon
    ERLANG_A = "erlang-a"  # callers abandon after an exponential patience


@dataclass(frozen=True)
class StaffingPlan:
    queue_id: int
    interval: Interval
    for_start: datetime
    for_end: datetime
    history_since: datetime
    history_until: datetime
    calls: Decimal  # expected in the coming interval
    aht_seconds: Decimal
    target_level: Decimal
    target_seconds: int
    model: StaffingModel  # the one used: Erlang A falls back to C when nobody abandoned
    staffing: erlang.Staffing | erlang_a.StaffingA


async def staffing(
    session: AsyncSession,
    scope: Scope,
    queue_id: int,
    *,
    interval: Interval,
    target_level: Decimal,
    target_seconds: int | None,
    history: int,
    calls: Decimal | None,
    aht_seconds: Decimal | None,
    now: datetime,
    model: StaffingModel = StaffingModel.ERLANG_C,
    patience_seconds: Decimal | None = None,
) -> StaffingPlan:
    """Agents needed in the coming interval from the last ``history`` intervals: Erlang C,
    or Erlang A with the callers' mean patience (given, else measured: the recent callers'
    waiting time over their abandons; with no abandon, Erlang C)."""
    _guard_queue_readers(scope)
    queue = await get_in_tenant(session, Queue, scope.tenant_id, queue_id)
    if interval not in (Interval.QUARTER, Interval.HOUR):
        raise Invalid("query.interval", "staffing is planned by 15min or hour")
    zone = await tenant_zone(session, scope.tenant_id)
    length = timedelta(minutes=15) if interval is Interval.QUARTER else timedelta(hours=1)
    current = bucket_start(now, interval, zone)
    coming = next_bucket(current, interval, zone)
    history_since = current - history * length
    span = Period(history_since, current, interval, zone, [history_since])
    sums, _ = await queue_sums(session, scope, span, queue_id)
    recent = QueueSums()
    for item in sums.values():
        recent = recent + item
    expected = calls if calls is not None else Decimal(recent.offered) / history
    if aht_seconds is None:
        if recent.answered == 0:
            if expected > 0:
                raise Invalid(
                    "query.aht_seconds",
                    "no call was answered in the recent intervals: give the handling time",
                )
            aht_seconds = Decimal(0)
        else:
            aht_seconds = (recent.talk + recent.hold + recent.wrapup) / recent.answered
    seconds = target_seconds if target_seconds is not None else queue.service_level_seconds
    traffic = (
        erlang.traffic_erlangs(expected, int(length.total_seconds()), aht_seconds)
        if aht_seconds > 0
        else Decimal(0)
    )
    if model is StaffingModel.ERLANG_A and patience_seconds is None:
        patience_seconds = erlang_a.patience_estimate(
            recent.answered_wait + recent.abandoned_wait, recent.abandoned
        )
        if patience_seconds is not None and patience_seconds <= 0:
            patience_seconds = None  # abandons at once: no patience to model
    plan: erlang.Staffing | erlang_a.StaffingA
    try:
        if model is StaffingModel.ERLANG_A and patience_seconds is not None:
            # Up to a second of arithmetic for a thousand agents: off the event loop.
            plan = await asyncio.to_thread(
                erlang_a.agents_needed,
                traffic,
                aht_seconds,
                patience_seconds,
                target_level,
                Decimal(seconds),
            )
        else:
            model = StaffingModel.ERLANG_C
            plan = erlang.agents_needed(traffic, aht_seconds, target_level, Decimal(seconds))
    except ValueError as err:
        raise Invalid("query.calls", str(err)) from err
    return StaffingPlan(
        queue_id=queue_id,
        interval=interval,
        for_start=coming,
        for_end=next_bucket(coming, interval, zone),
        history_since=history_since,
        history_until=current,
        calls=expected,
        aht_seconds=aht_seconds,
        target_level=target_level,
        target_seconds=seconds,
        model=model,
        staffing=plan,
    )


# ---- CSV ------------------------------------------------------------------------------------


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def queue_csv(rows: list[QueueRow], zone: ZoneInfo) -> str:
    """One line per bucket and queue, the same figures as the JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    names = list(QueueKpis.__dataclass_fields__)
    writer.writerow(["bucket_start", "bucket_end", "queue_id", "queue_name", *names])
    for row in rows:
        kpis = asdict(row.kpis)
        writer.writerow(
            [
                local_label(row.bucket_start, zone),
                local_label(row.bucket_end, zone),
                row.queue_id,
                _csv_text(row.queue_name),
                *(_cell(kpis[name]) for name in names),
            ]
        )
    return out.getvalue()


def agent_csv(rows: list[AgentRow], zone: ZoneInfo) -> str:
    """One line per bucket and agent; states and pause reasons as columns of their own."""
    reasons = sorted({code for row in rows for code in row.kpis.paused_seconds_by_reason})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    plain = [
        name
        for name in AgentKpis.__dataclass_fields__
        if name not in ("seconds_by_state", "paused_seconds_by_reason")
    ]
    states = list(rows[0].kpis.seconds_by_state) if rows else []
    writer.writerow(
        [
            "bucket_start",
            "bucket_end",
            "agent_id",
            *plain,
            *(f"seconds_{state}" for state in states),
            *(_csv_text(f"paused_seconds_{code or 'no-reason'}") for code in reasons),
        ]
    )
    for row in rows:
        kpis = asdict(row.kpis)
        writer.writerow(
            [
                local_label(row.bucket_start, zone),
                local_label(row.bucket_end, zone),
                row.agent_id,
                *(_cell(kpis[name]) for name in plain),
                *(_cell(row.kpis.seconds_by_state[state]) for state in states),
                *(_cell(row.kpis.paused_seconds_by_reason.get(code, "")) for code in reasons),
            ]
        )
    return out.getvalue()


def _csv_text(value: str | None) -> str:
    # A spreadsheet runs a cell starting with = + - @ as a formula: such names are quoted.
    text = value or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
