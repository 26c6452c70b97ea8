"""Call-centre KPIs as pure functions: buckets in the tenant's time zone, sums, formulas.

No database here. ``service.py`` has Postgres sum the facts per bucket (the fast path); the
functions below sum the same facts in Python (``sum_queue_calls``, ``sum_agent_states``) for
the golden tests and small sets, and turn sums into KPIs (``queue_kpis``, ``agent_kpis``).
Seconds and ratios are ``Decimal``; each rounding is one named function.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from graam_pbx.queue_calls.tracker import OUTCOMES

DEFAULT_SERVICE_LEVEL_SECONDS = 20
DEFAULT_SHORT_ABANDON_SECONDS = 5

STATES = ("available", "ringing", "on-call", "wrap-up", "paused", "unregistered", "logged-out")
# Time an agent is at the queue's disposal (occupancy's denominator), and busy with calls.
STAFFED_STATES = ("available", "ringing", "on-call", "wrap-up")
HANDLING_STATES = ("on-call", "wrap-up")

ZERO = Decimal(0)


class Interval(StrEnum):
    QUARTER = "15min"
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


def round_seconds(value: Decimal) -> Decimal:
    """Durations and averages reported to the millisecond, halves away from zero."""
    return value.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)


def round_ratio(value: Decimal) -> Decimal:
    """Ratios (service levels, occupancy) reported as a fraction to 1/10,000 (0.8883 = 88.83 %)."""
    return value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def _ratio(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    """None when there is nothing to divide by: no calls is no service level, not 0 % nor 100 %."""
    if not denominator:
        return None
    return round_ratio(Decimal(numerator) / Decimal(denominator))


def _mean(total: Decimal, count: int) -> Decimal | None:
    return round_seconds(total / count) if count else None


# ---------------------------------------------------------------------------------------------
# Buckets


def bucket_start(at: datetime, interval: Interval, zone: ZoneInfo) -> datetime:
    """The start (UTC) of the bucket holding ``at``, bucketed by the wall clock of ``zone``.

    Truncation keeps the wall clock's ``fold``: in the hour repeated when clocks go back, 02:30
    before and 02:30 after the change are two buckets (a 25-hour day has 25 hourly buckets),
    and a day is from one local midnight to the next (23 or 25 hours around a change).
    """
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    local = at.astimezone(zone)
    if interval is Interval.QUARTER:
        start = local.replace(minute=local.minute - local.minute % 15, second=0, microsecond=0)
    elif interval is Interval.HOUR:
        start = local.replace(minute=0, second=0, microsecond=0)
    elif interval is Interval.DAY:
        start = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
    else:
        start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0, fold=0)
    return start.astimezone(UTC)


def next_bucket(start: datetime, interval: Interval, zone: ZoneInfo) -> datetime:
    """The start (UTC) of the bucket after the one starting at ``start``."""
    if interval is Interval.QUARTER:
        return bucket_start(start + timedelta(minutes=15), interval, zone)
    if interval is Interval.HOUR:
        return bucket_start(start + timedelta(hours=1), interval, zone)
    local = start.astimezone(zone)
    if interval is Interval.DAY:
        # Noon of the next day is never in a change: its midnight is the next bucket.
        noon = local.replace(hour=12, fold=0) + timedelta(days=1)
        return bucket_start(noon, interval, zone)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1, tzinfo=zone).astimezone(UTC)


def buckets(since: datetime, until: datetime, interval: Interval, zone: ZoneInfo) -> list[datetime]:
    """Every bucket start (UTC) of the buckets meeting [since, until), in order."""
    starts: list[datetime] = []
    start = bucket_start(since, interval, zone)
    while start < until:
        starts.append(start)
        start = next_bucket(start, interval, zone)
    return starts


def local_label(start: datetime, zone: ZoneInfo) -> str:
    """A bucket's start on the tenant's wall clock, with its offset (ISO 8601)."""
    return start.astimezone(zone).isoformat()


# ---------------------------------------------------------------------------------------------
# Facts


@dataclass(frozen=True)
class QueueCallFact:
    """One row of ``queue_calls``: what the KPIs read of it."""

    queue_id: int
    entered_at: datetime
    outcome: str
    wait_seconds: Decimal
    agent_id: int | None = None
    talk_seconds: Decimal = ZERO
    hold_seconds: Decimal = ZERO
    wrapup_seconds: Decimal = ZERO


@dataclass(frozen=True)
class StateInterval:
    """One row of ``agent_state_intervals`` (``ended_at`` None: still in that state)."""

    agent_id: int
    state: str
    started_at: datetime
    ended_at: datetime | None
    pause_reason_code: str | None = None


@dataclass(frozen=True)
class Thresholds:
    """A queue's service-level and short-abandon thresholds, in seconds."""

    service_level_seconds: int = DEFAULT_SERVICE_LEVEL_SECONDS
    short_abandon_seconds: int = DEFAULT_SHORT_ABANDON_SECONDS


# ---------------------------------------------------------------------------------------------
# Sums (what SQL returns per bucket, or what sum_queue_calls adds up)


@dataclass
class QueueSums:
    """Additive counters of one queue (or agent) over one bucket; ``+`` merges two."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    answered_within: int = 0
    abandoned_within: int = 0
    timeout: int = 0
    full: int = 0
    joinempty: int = 0
    leaveempty: int = 0
    closed: int = 0
    exitkey: int = 0
    transferred: int = 0
    answered_wait: Decimal = ZERO
    abandoned_wait: Decimal = ZERO
    talk: Decimal = ZERO
    hold: Decimal = ZERO
    wrapup: Decimal = ZERO
    longest_wait: Decimal = ZERO

    def __add__(self, other: QueueSums) -> QueueSums:
        # Field names listed once (dataclasses.fields() on every call was most of a year's
        # totals): every counter adds up, the longest wait is the longer one.
        added = {name: getattr(self, name) + getattr(other, name) for name in _ADDED_FIELDS}
        return QueueSums(**added, longest_wait=max(self.longest_wait, other.longest_wait))

    def add(self, fact: QueueCallFact, thresholds: Thresholds) -> None:
        """Count one queue call in."""
        self.offered += 1
        self.longest_wait = max(self.longest_wait, fact.wait_seconds)
        if fact.outcome in ("answered", "transferred"):
            # A transferred call was answered by the agent first (Asterisk's AgentComplete
            # reason "transfer"): it counts as answered and as transferred.
            self.answered += 1
            self.answered_wait += fact.wait_seconds
            self.talk += fact.talk_seconds
            self.hold += fact.hold_seconds
            self.wrapup += fact.wrapup_seconds
            if fact.wait_seconds <= thresholds.service_level_seconds:
                self.answered_within += 1
            if fact.outcome == "transferred":
                self.transferred += 1
        elif fact.outcome == "abandoned":
            self.abandoned += 1
            self.abandoned_wait += fact.wait_seconds
            if fact.wait_seconds <= thresholds.service_level_seconds:
                self.abandoned_within += 1
            if fact.wait_seconds < thresholds.short_abandon_seconds:
                self.short_abandoned += 1
        elif fact.outcome in OUTCOMES:
            setattr(self, fact.outcome, getattr(self, fact.outcome) + 1)
        else:
            raise ValueError(f"unknown outcome {fact.outcome!r}")


# QueueSums' counters that add up (all but the longest wait).
_ADDED_FIELDS = tuple(f.name for f in fields(QueueSums) if f.name != "longest_wait")


def sum_queue_calls(
    facts: Iterable[QueueCallFact],
    *,
    interval: Interval,
    zone: ZoneInfo,
    thresholds: dict[int, Thresholds] | None = None,
    by: str = "queue",
) -> dict[tuple[datetime, int], QueueSums]:
    """Sums per (bucket start, queue id) — or per (bucket, agent id) with ``by="agent"``.

    A call is counted in the bucket it entered the queue in. By agent, only answered calls
    (those with an agent) count.
    """
    sums: dict[tuple[datetime, int], QueueSums] = {}
    for fact in facts:
        key_id = fact.queue_id if by == "queue" else fact.agent_id
        if key_id is None:
            continue
        key = (bucket_start(fact.entered_at, interval, zone), key_id)
        limits = (thresholds or {}).get(fact.queue_id, Thresholds())
        sums.setdefault(key, QueueSums()).add(fact, limits)
    return sums


@dataclass
class StateSums:
    """Seconds an agent spent in each state, and paused by reason, over one bucket."""

    seconds: dict[str, Decimal] = field(default_factory=dict)
    paused_by_reason: dict[str, Decimal] = field(default_factory=dict)

    def add(self, state: str, reason: str | None, seconds: Decimal) -> None:
        self.seconds[state] = self.seconds.get(state, ZERO) + seconds
        if state == "paused":
            code = reason or ""
            self.paused_by_reason[code] = self.paused_by_reason.get(code, ZERO) + seconds

    def __add__(self, other: StateSums) -> StateSums:
        return StateSums(
            _merged(self.seconds, other.seconds),
            _merged(self.paused_by_reason, other.paused_by_reason),
        )


def _merged(one: dict[str, Decimal], other: dict[str, Decimal]) -> dict[str, Decimal]:
    merged = dict(one)
    for key, seconds in other.items():
        merged[key] = merged.get(key, ZERO) + seconds
    return merged


def _seconds(delta: timedelta) -> Decimal:
    # timedelta is exact in microseconds: no float on the way.
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return Decimal(micros) / 1_000_000


def sum_agent_states(
    intervals: Iterable[StateInterval],
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    interval: Interval,
    zone: ZoneInfo,
) -> dict[tuple[datetime, int], StateSums]:
    """Seconds per (bucket start, agent id), each state interval split at bucket boundaries.

    An open interval (no ``ended_at``) runs until ``now``; nothing is counted past ``until``.
    """
    sums: dict[tuple[datetime, int], StateSums] = {}
    for item in intervals:
        ended = item.ended_at if item.ended_at is not None else now
        # The part of the interval inside [since, until), cut at the buckets' bounds.
        start, end = max(item.started_at, since), min(ended, until)
        if start >= end:
            continue
        bucket = bucket_start(start, interval, zone)
        while bucket < end:
            following = next_bucket(bucket, interval, zone)
            piece = min(end, following) - max(start, bucket)
            if piece > timedelta(0):
                sums.setdefault((bucket, item.agent_id), StateSums()).add(
                    item.state, item.pause_reason_code, _seconds(piece)
                )
            bucket = following
    return sums


# ---------------------------------------------------------------------------------------------
# Formulas


@dataclass(frozen=True)
class QueueKpis:
    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    timeout: int
    full: int
    joinempty: int
    leaveempty: int
    closed: int
    exitkey: int
    transferred: int
    answered_within: int
    abandoned_within: int
    # The four service levels of the README, as fractions (None: no call to judge).
    service_level_answered: Decimal | None
    service_level_perf2: Decimal | None
    service_level_offered: Decimal | None
    service_level_excluding_short: Decimal | None
    abandon_rate: Decimal | None
    average_speed_of_answer: Decimal | None
    average_time_to_abandon: Decimal | None
    average_handling_time: Decimal | None
    average_talk_time: Decimal | None
    longest_wait: Decimal
    talk_seconds: Decimal
    hold_seconds: Decimal
    wrapup_seconds: Decimal


def queue_kpis(sums: QueueSums) -> QueueKpis:
    """The KPIs of one bucket's sums (formulas in the README, "Statistics")."""
    judged = sums.answered + sums.abandoned
    handling = sums.talk + sums.hold + sums.wrapup
    return QueueKpis(
        offered=sums.offered,
        answered=sums.answered,
        abandoned=sums.abandoned,
        short_abandoned=sums.short_abandoned,
        timeout=sums.timeout,
        full=sums.full,
        joinempty=sums.joinempty,
        leaveempty=sums.leaveempty,
        closed=sums.closed,
        exitkey=sums.exitkey,
        transferred=sums.transferred,
        answered_within=sums.answered_within,
        abandoned_within=sums.abandoned_within,
        service_level_answered=_ratio(sums.answered_within, sums.answered),
        service_level_perf2=_ratio(sums.answered_within + sums.abandoned_within, judged),
        service_level_offered=_ratio(sums.answered_within, judged),
        service_level_excluding_short=_ratio(sums.answered_within, judged - sums.short_abandoned),
        abandon_rate=_ratio(sums.abandoned, sums.offered),
        average_speed_of_answer=_mean(sums.answered_wait, sums.answered),
        average_time_to_abandon=_mean(sums.abandoned_wait, sums.abandoned),
        average_handling_time=_mean(handling, sums.answered),
        average_talk_time=_mean(sums.talk, sums.answered),
        longest_wait=round_seconds(sums.longest_wait),
        talk_seconds=round_seconds(sums.talk),
        hold_seconds=round_seconds(sums.hold),
        wrapup_seconds=round_seconds(sums.wrapup),
    )


@dataclass(frozen=True)
class OutboundSums:
    """An agent's outbound legs over one bucket (from CDRs)."""

    attempts: int = 0
    answered: int = 0
    talk: Decimal = ZERO

    def __add__(self, other: OutboundSums) -> OutboundSums:
        return OutboundSums(
            self.attempts + other.attempts, self.answered + other.answered, self.talk + other.talk
        )


@dataclass(frozen=True)
class AgentKpis:
    answered: int
    average_handling_time: Decimal | None
    talk_seconds: Decimal
    hold_seconds: Decimal
    wrapup_seconds: Decimal
    occupancy: Decimal | None
    seconds_by_state: dict[str, Decimal]
    paused_seconds_by_reason: dict[str, Decimal]
    outbound_attempts: int
    outbound_answered: int
    outbound_talk_seconds: Decimal


def agent_kpis(calls: QueueSums, states: StateSums, outbound: OutboundSums) -> AgentKpis:
    """One agent's KPIs over one bucket; occupancy = (on call + wrap-up) / staffed time."""
    staffed = sum((states.seconds.get(s, ZERO) for s in STAFFED_STATES), ZERO)
    handling = sum((states.seconds.get(s, ZERO) for s in HANDLING_STATES), ZERO)
    return AgentKpis(
        answered=calls.answered,
        average_handling_time=_mean(calls.talk + calls.hold + calls.wrapup, calls.answered),
        talk_seconds=round_seconds(calls.talk),
        hold_seconds=round_seconds(calls.hold),
        wrapup_seconds=round_seconds(calls.wrapup),
        occupancy=_ratio(handling, staffed),
        seconds_by_state={s: round_seconds(states.seconds.get(s, ZERO)) for s in STATES},
        paused_seconds_by_reason={
            code: round_seconds(seconds)
            for code, seconds in sorted(states.paused_by_reason.items())
        },
        outbound_attempts=outbound.attempts,
        outbound_answered=outbound.answered,
        outbound_talk_seconds=round_seconds(outbound.talk),
    )
