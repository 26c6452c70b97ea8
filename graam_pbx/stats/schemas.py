from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from graam_pbx.stats.kpi import Interval


class QueueKpisOut(BaseModel):
    """One queue's KPIs over one bucket (or the whole period); ratios are fractions."""

    bucket_start: datetime = Field(description="On the tenant's wall clock, with its offset.")
    bucket_end: datetime
    queue_id: int
    queue_name: str | None
    offered: int
    answered: int = Field(description="Answered by an agent (transferred ones included).")
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
    service_level_answered: Decimal | None = Field(
        description="Asterisk's ServicelevelPerf: answered within T / answered."
    )
    service_level_perf2: Decimal | None = Field(
        description="(answered + abandoned within T) / (answered + abandoned): Asterisk's "
        "ServicelevelPerf2, except that Asterisk also counts time-outs as abandoned."
    )
    service_level_offered: Decimal | None = Field(
        description="Answered within T / (answered + abandoned)."
    )
    service_level_excluding_short: Decimal | None = Field(
        description="Answered within T / (answered + abandoned - short abandons)."
    )
    abandon_rate: Decimal | None
    average_speed_of_answer: Decimal | None
    average_time_to_abandon: Decimal | None
    average_handling_time: Decimal | None
    average_talk_time: Decimal | None
    longest_wait: Decimal
    talk_seconds: Decimal
    hold_seconds: Decimal
    wrapup_seconds: Decimal


class QueueStatsOut(BaseModel):
    timezone: str
    interval: Interval
    since: datetime
    until: datetime
    buckets: list[QueueKpisOut] = Field(description="Every bucket of the period, each queue.")
    totals: list[QueueKpisOut] = Field(description="Each queue over the whole period.")


class AgentKpisOut(BaseModel):
    bucket_start: datetime
    bucket_end: datetime
    agent_id: int
    answered: int = Field(description="Queue calls this agent answered.")
    average_handling_time: Decimal | None
    talk_seconds: Decimal
    hold_seconds: Decimal
    wrapup_seconds: Decimal
    occupancy: Decimal | None = Field(
        description="(on-call + wrap-up) / (available + ringing + on-call + wrap-up)."
    )
    seconds_by_state: dict[str, Decimal]
    paused_seconds_by_reason: dict[str, Decimal] = Field(
        description="By pause reason code ('' for a pause without a reason)."
    )
    outbound_attempts: int
    outbound_answered: int
    outbound_talk_seconds: Decimal


class AgentStatsOut(BaseModel):
    timezone: str
    interval: Interval
    since: datetime
    until: datetime
    buckets: list[AgentKpisOut]
    totals: list[AgentKpisOut]


class StaffingOut(BaseModel):
    queue_id: int
    model: str = Field(
        description="erlang-c: callers are assumed never to abandon; erlang-a: they abandon "
        "after a mean patience (asked for, and a patience known)."
    )
    interval: Interval
    for_start: datetime = Field(description="The coming interval the plan is for.")
    for_end: datetime
    history_since: datetime = Field(description="The recent intervals measured.")
    history_until: datetime
    calls: Decimal = Field(description="Calls expected in the interval.")
    aht_seconds: Decimal = Field(description="Average handling time: talk + hold + wrap-up.")
    target_level: Decimal
    target_seconds: int
    traffic_erlangs: Decimal
    agents: int
    service_level: Decimal = Field(description="Expected with that many agents.")
    probability_of_waiting: Decimal
    occupancy: Decimal
    probability_of_abandon: Decimal | None = Field(
        default=None, description="Erlang A: callers expected to give up."
    )
    patience_seconds: Decimal | None = Field(
        default=None, description="Erlang A: the callers' mean patience used."
    )
