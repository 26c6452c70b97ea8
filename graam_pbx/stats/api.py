from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from graam_pbx.deps import DbSession, Member, Reader
from graam_pbx.fields import MAX_ID, IsoDateTime
from graam_pbx.rest import error_responses, id_path
from graam_pbx.stats import service
from graam_pbx.stats.kpi import Interval
from graam_pbx.stats.schemas import (
    AgentKpisOut,
    AgentStatsOut,
    QueueKpisOut,
    QueueStatsOut,
    StaffingOut,
)

# Supervisors and admins read their tenant's queues and agents; an agent only its own figures.
router = APIRouter(prefix="/api/v1/stats", tags=["statistics"])

Since = Annotated[
    IsoDateTime | None,
    Query(
        description="Start (ISO 8601; without an offset, the tenant's wall clock). "
        "Default: today's midnight in the tenant's time zone."
    ),
]
Until = Annotated[
    IsoDateTime | None, Query(description="End, excluded. Default: the day after since.")
]
IntervalParam = Annotated[Interval, Query(description="Bucket length, on the tenant's wall clock.")]
QueueFilter = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this queue")]
AgentFilter = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this agent (user id)")]
CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "The same figures, one line a bucket"}
}


def _queue_out(row: service.QueueRow, zone: ZoneInfo) -> QueueKpisOut:
    return QueueKpisOut(
        bucket_start=row.bucket_start.astimezone(zone),
        bucket_end=row.bucket_end.astimezone(zone),
        queue_id=row.queue_id,
        queue_name=row.queue_name,
        **asdict(row.kpis),
    )


def _agent_out(row: service.AgentRow, zone: ZoneInfo) -> AgentKpisOut:
    return AgentKpisOut(
        bucket_start=row.bucket_start.astimezone(zone),
        bucket_end=row.bucket_end.astimezone(zone),
        agent_id=row.agent_id,
        **asdict(row.kpis),
    )


Row = TypeVar("Row", service.QueueRow, service.AgentRow)


@dataclass(frozen=True)
class _Report(Generic[Row]):
    """A request's period and its figures: by bucket, and over the whole period."""

    span: service.Period
    rows: list[Row]
    totals: list[Row]


async def _queue_report(
    scope: Reader,
    session: DbSession,
    since: Since = None,
    until: Until = None,
    interval: IntervalParam = Interval.HOUR,
    queue_id: QueueFilter = None,
) -> _Report[service.QueueRow]:
    span = await service.period(session, scope, since, until, interval)
    rows, totals = await service.queue_stats(session, scope, span, queue_id)
    return _Report(span, rows, totals)


async def _agent_report(
    scope: Member,
    session: DbSession,
    since: Since = None,
    until: Until = None,
    interval: IntervalParam = Interval.HOUR,
    agent_id: AgentFilter = None,
) -> _Report[service.AgentRow]:
    span = await service.period(session, scope, since, until, interval)
    rows, totals = await service.agent_stats(session, scope, span, agent_id, datetime.now(UTC))
    return _Report(span, rows, totals)


QueueReport = Annotated[_Report[service.QueueRow], Depends(_queue_report)]
AgentReport = Annotated[_Report[service.AgentRow], Depends(_agent_report)]


def _csv(text: str, filename: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/queues", response_model=QueueStatsOut, responses=error_responses(401, 403, 404, 422))
async def queue_stats(report: QueueReport) -> QueueStatsOut:
    zone = report.span.zone
    return QueueStatsOut(
        timezone=zone.key,
        interval=report.span.interval,
        since=report.span.since.astimezone(zone),
        until=report.span.until.astimezone(zone),
        buckets=[_queue_out(row, zone) for row in report.rows],
        totals=[_queue_out(row, zone) for row in report.totals],
    )


@router.get(
    "/queues/export.csv",
    response_class=Response,
    responses={**error_responses(401, 403, 404, 422), **CSV},
)
async def export_queue_stats(report: QueueReport) -> Response:
    return _csv(service.queue_csv(report.rows, report.span.zone), "queue-stats.csv")


@router.get("/agents", response_model=AgentStatsOut, responses=error_responses(401, 403, 404, 422))
async def agent_stats(report: AgentReport) -> AgentStatsOut:
    zone = report.span.zone
    return AgentStatsOut(
        timezone=zone.key,
        interval=report.span.interval,
        since=report.span.since.astimezone(zone),
        until=report.span.until.astimezone(zone),
        buckets=[_agent_out(row, zone) for row in report.rows],
        totals=[_agent_out(row, zone) for row in report.totals],
    )


@router.get(
    "/agents/export.csv",
    response_class=Response,
    responses={**error_responses(401, 403, 404, 422), **CSV},
)
async def export_agent_stats(report: AgentReport) -> Response:
    return _csv(service.agent_csv(report.rows, report.span.zone), "agent-stats.csv")


@router.get(
    "/queues/{queue_id}/staffing",
    response_model=StaffingOut,
    responses=error_responses(401, 403, 404, 422),
)
async def queue_staffing(
    queue_id: Annotated[int, id_path("The queue's id")],
    scope: Reader,
    session: DbSession,
    target_level: Annotated[
        Decimal, Query(gt=0, lt=1, description="Fraction answered within target_seconds")
    ] = Decimal("0.8"),
    target_seconds: Annotated[
        int | None, Query(ge=1, le=3600, description="Default: the queue's service level")
    ] = None,
    interval: Annotated[
        Interval, Query(description="15min or hour: the coming one is planned")
    ] = Interval.QUARTER,
    history: Annotated[
        int, Query(ge=1, le=96, description="Recent intervals whose volume and AHT are used")
    ] = 4,
    calls: Annotated[
        Decimal | None,
        Query(ge=0, le=10**6, description="Expected calls in the interval, instead of measured"),
    ] = None,
    aht_seconds: Annotated[
        Decimal | None,
        Query(gt=0, le=86400, description="Handling time instead of the measured one"),
    ] = None,
    model: Annotated[
        service.StaffingModel,
        Query(description="erlang-a models callers who give up (README: Staffing)"),
    ] = service.StaffingModel.ERLANG_C,
    patience_seconds: Annotated[
        Decimal | None,
        Query(gt=0, le=86400, description="Erlang A: mean patience instead of the measured one"),
    ] = None,
) -> StaffingOut:
    plan = await service.staffing(
        session,
        scope,
        queue_id,
        interval=interval,
        target_level=target_level,
        target_seconds=target_seconds,
        history=history,
        calls=calls,
        aht_seconds=aht_seconds,
        now=datetime.now(UTC),
        model=model,
        patience_seconds=patience_seconds,
    )
    return StaffingOut(
        queue_id=plan.queue_id,
        model=plan.model,
        interval=plan.interval,
        for_start=plan.for_start,
        for_end=plan.for_end,
        history_since=plan.history_since,
        history_until=plan.history_until,
        calls=plan.calls,
        aht_seconds=plan.aht_seconds,
        target_level=plan.target_level,
        target_seconds=plan.target_seconds,
        **asdict(plan.staffing),
    )
