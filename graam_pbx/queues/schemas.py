from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from graam_pbx.destinations.schemas import Destination, RoutedTo
from graam_pbx.fields import Flag, NotNull, ObjectId, ObjectName
from graam_pbx.queues.models import JOIN_EMPTY, LEAVE_WHEN_EMPTY, STRATEGIES, Queue


class Strategy(StrEnum):
    RINGALL = "ringall"
    LEASTRECENT = "leastrecent"
    FEWESTCALLS = "fewestcalls"
    RANDOM = "random"
    RRMEMORY = "rrmemory"
    LINEAR = "linear"
    WRANDOM = "wrandom"


assert tuple(s.value for s in Strategy) == STRATEGIES  # noqa: S101


class JoinEmpty(StrEnum):
    """May a caller join when no member can answer? (Asterisk's ``joinempty``)"""

    YES = "yes"  # always: the caller waits for a member to come
    LOOSE = "loose"  # refused (outcome joinempty) when the queue has no member
    STRICT = "strict"  # refused also when every member is paused or unavailable


class LeaveWhenEmpty(StrEnum):
    """Must waiting callers leave when no member can answer? (``leavewhenempty``)"""

    NO = "no"  # never: they wait until answered, they give up or their max_wait
    LOOSE = "loose"  # they leave (outcome leaveempty) when the queue has no member any more
    STRICT = "strict"  # also when every member is paused or unavailable


assert tuple(j.value for j in JoinEmpty) == JOIN_EMPTY  # noqa: S101
assert tuple(v.value for v in LeaveWhenEmpty) == LEAVE_WHEN_EMPTY  # noqa: S101
JOIN_EMPTY_HELP = (
    "When no member can answer, a caller 'yes': joins anyway; 'loose': is refused if the queue "
    "has no member; 'strict': also if every member is paused or unavailable (outcome joinempty)."
)
LEAVE_WHEN_EMPTY_HELP = (
    "Waiting callers 'no': stay; 'loose': leave once the queue has no member; 'strict': also "
    "once every member is paused or unavailable (outcome leaveempty, then the fallback)."
)


class QueueCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "support",
                    "strategy": "rrmemory",
                    "ring_timeout": 15,
                    "max_wait": 300,
                    "fallback": {"type": "voicemail", "id": 2},
                    "announce_position": True,
                    "announce_frequency": 60,
                }
            ]
        },
    )

    name: ObjectName
    strategy: Strategy = Strategy.RINGALL
    ring_timeout: int = Field(15, ge=1, le=300, description="Seconds each member rings.")
    retry: int = Field(5, ge=0, le=300, description="Seconds between rounds.")
    wrapup_time: int = Field(0, ge=0, le=3600, description="Seconds an agent rests after a call.")
    max_wait: int | None = Field(
        None, ge=1, le=86400, description="Seconds a caller waits before the fallback; none: ever."
    )
    fallback: RoutedTo | None = Field(None, description="Where callers go after max_wait.")
    music_on_hold: ObjectName = Field(
        "default",
        description="Hold music: 'default' (the installation's) or one of the tenant's classes "
        "(/api/v1/moh-classes).",
    )
    announce_position: Flag = False
    announce_holdtime: Flag = False
    announce_frequency: int = Field(0, ge=0, le=3600, description="Seconds; 0 never announces.")
    weight: int = Field(0, ge=0, le=100, description="Priority over other queues sharing agents.")
    service_level_seconds: int = Field(
        20, ge=1, le=3600, description="Seconds within which an answer meets the service level."
    )
    short_abandon_seconds: int = Field(
        5, ge=0, le=600, description="A caller hanging up sooner is a short abandon."
    )
    join_empty: JoinEmpty = Field(JoinEmpty.YES, description=JOIN_EMPTY_HELP)
    leave_when_empty: LeaveWhenEmpty = Field(LeaveWhenEmpty.NO, description=LEAVE_WHEN_EMPTY_HELP)
    wallboard_waiting_warn: int = Field(
        3, ge=1, le=10000, description="Callers waiting that turn the wallboard amber."
    )
    wallboard_waiting_alarm: int = Field(
        6, ge=1, le=10000, description="Callers waiting that turn it red (not below the warning)."
    )
    wallboard_wait_warn_seconds: int = Field(
        30, ge=1, le=86400, description="Longest wait (seconds) that turns the wallboard amber."
    )
    wallboard_wait_alarm_seconds: int = Field(
        90, ge=1, le=86400, description="Longest wait that turns it red (not below the warning)."
    )


class QueueUpdate(BaseModel):
    """Any subset; ``max_wait`` and ``fallback`` may be set to null."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"strategy": "leastrecent", "max_wait": None}]},
    )

    name: Annotated[ObjectName | None, NotNull] = None
    strategy: Annotated[Strategy | None, NotNull] = None
    ring_timeout: Annotated[int | None, NotNull] = Field(None, ge=1, le=300)
    retry: Annotated[int | None, NotNull] = Field(None, ge=0, le=300)
    wrapup_time: Annotated[int | None, NotNull] = Field(None, ge=0, le=3600)
    max_wait: int | None = Field(None, ge=1, le=86400)
    fallback: RoutedTo | None = None
    music_on_hold: Annotated[ObjectName | None, NotNull] = None
    announce_position: Annotated[Flag | None, NotNull] = None
    announce_holdtime: Annotated[Flag | None, NotNull] = None
    announce_frequency: Annotated[int | None, NotNull] = Field(None, ge=0, le=3600)
    weight: Annotated[int | None, NotNull] = Field(None, ge=0, le=100)
    service_level_seconds: Annotated[int | None, NotNull] = Field(None, ge=1, le=3600)
    short_abandon_seconds: Annotated[int | None, NotNull] = Field(None, ge=0, le=600)
    join_empty: Annotated[JoinEmpty | None, NotNull] = Field(None, description=JOIN_EMPTY_HELP)
    leave_when_empty: Annotated[LeaveWhenEmpty | None, NotNull] = Field(
        None, description=LEAVE_WHEN_EMPTY_HELP
    )
    wallboard_waiting_warn: Annotated[int | None, NotNull] = Field(None, ge=1, le=10000)
    wallboard_waiting_alarm: Annotated[int | None, NotNull] = Field(None, ge=1, le=10000)
    wallboard_wait_warn_seconds: Annotated[int | None, NotNull] = Field(None, ge=1, le=86400)
    wallboard_wait_alarm_seconds: Annotated[int | None, NotNull] = Field(None, ge=1, le=86400)


class QueueOut(BaseModel):
    id: int
    name: str
    strategy: Strategy
    ring_timeout: int
    retry: int
    wrapup_time: int
    max_wait: int | None
    fallback: Destination | None
    music_on_hold: str
    announce_position: bool
    announce_holdtime: bool
    announce_frequency: int
    weight: int
    service_level_seconds: int
    short_abandon_seconds: int
    join_empty: JoinEmpty
    leave_when_empty: LeaveWhenEmpty
    wallboard_waiting_warn: int
    wallboard_waiting_alarm: int
    wallboard_wait_warn_seconds: int
    wallboard_wait_alarm_seconds: int
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, queue: Queue) -> QueueOut:
        return cls(
            id=queue.id,
            name=queue.name,
            strategy=Strategy(queue.strategy),
            ring_timeout=queue.ring_timeout,
            retry=queue.retry,
            wrapup_time=queue.wrapup_time,
            max_wait=queue.max_wait,
            fallback=Destination.of(queue.fallback_type, queue.fallback_id),
            music_on_hold=queue.music_on_hold,
            announce_position=queue.announce_position,
            announce_holdtime=queue.announce_holdtime,
            announce_frequency=queue.announce_frequency,
            weight=queue.weight,
            service_level_seconds=queue.service_level_seconds,
            short_abandon_seconds=queue.short_abandon_seconds,
            join_empty=JoinEmpty(queue.join_empty),
            leave_when_empty=LeaveWhenEmpty(queue.leave_when_empty),
            wallboard_waiting_warn=queue.wallboard_waiting_warn,
            wallboard_waiting_alarm=queue.wallboard_waiting_alarm,
            wallboard_wait_warn_seconds=queue.wallboard_wait_warn_seconds,
            wallboard_wait_alarm_seconds=queue.wallboard_wait_alarm_seconds,
            version=queue.version,
            created_at=queue.created_at,
            updated_at=queue.updated_at,
        )


class MemberCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"user_id": 12, "penalty": 0}]}
    )

    user_id: ObjectId = Field(description="An agent of the tenant.")
    penalty: int = Field(0, ge=0, le=100, description="Lower penalties ring first.")


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"penalty": 5}]})

    penalty: int = Field(ge=0, le=100)


class MemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    queue_id: int
    user_id: int
    penalty: int
