"""The agents' state timeline (``agent_state_intervals``): what a report sums.

Sessions (login, pause, resume, logout) and Asterisk's events (a queue ringing an agent,
the agent answering, the call ending, the phone unreachable) move an agent from one state to
the next. Each move closes the agent's open interval and opens the next at the same instant, under a
per-agent transaction lock, in one call of the database function ``agent_state_enter``
(migration 0012): two moves of one agent never interleave, so intervals are contiguous,
never overlap, and at most one is open.

Only a login and a session's end move an agent unconditionally; every other move names the
states it may leave (``only_from``), never ``logged-out``: an Asterisk event read before a
logout committed cannot bring a logged-out agent back.

Services never commit: a move lives or dies with the change that caused it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.agents.models import AgentDevice, AgentSession, AgentStateInterval, PauseReason
from graam_pbx.auth.models import User

State = Literal[
    "available", "ringing", "on-call", "wrap-up", "paused", "unregistered", "logged-out"
]

# The states a pause or a resume switches at once; during a call (ringing, on call, wrap-up)
# or while the phone is unreachable, the new base state starts when that ends.
BASE_STATES: frozenset[str] = frozenset({"available", "paused"})
CALL_STATES: frozenset[str] = frozenset({"ringing", "on-call", "wrap-up"})

# One statement for any number of moves (migration 0012_agent_state_enter): for each, in
# order, the agent's session when asked, the per-agent lock, its open interval, then
# close-and-open at the same instant.
_APPLY = text("SELECT agent_state_apply(CAST(:moves AS jsonb))")
MoveKind = Literal["any", "live", "base", "complete"]


@dataclass(frozen=True)
class Move:
    """One move for ``apply``. ``any``: as ``enter``; ``live``: the same for an agent logged
    in to this tenant only; ``base``: such an agent to its base state (paused with its
    reason, else available; ``state`` is ignored); ``complete``: its call from ``queue_id``
    ended, into wrap-up for the queue's wrap-up time, else to its base state, from
    ``on-call`` only."""

    kind: MoveKind
    tenant_id: int
    agent_id: int
    state: State = "available"
    pause_reason_code: str | None = None
    only_from: frozenset[str] | None = None
    queue_id: int | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "tenant": self.tenant_id,
            "agent": self.agent_id,
            "state": self.state,
            "code": self.pause_reason_code,
            "only_from": sorted(self.only_from) if self.only_from is not None else None,
            "queue": self.queue_id,
        }


async def apply(session: AsyncSession, moves: Sequence[Move]) -> list[int]:
    """Make the moves in their order, in one statement. Each one's result: for a
    ``complete``, the seconds of the wrap-up it entered (else 0); else 1 when it moved."""
    if not moves:
        return []
    results = await session.scalar(
        _APPLY, {"moves": json.dumps([move.as_json() for move in moves])}
    )
    return [int(result) for result in results or []]


async def enter(
    session: AsyncSession,
    tenant_id: int,
    agent_id: int,
    state: State,
    pause_reason_code: str | None = None,
    *,
    only_from: Collection[str] | None = None,
) -> bool:
    """Move the agent to ``state`` (True), unless it is already there or, with ``only_from``,
    its current state is not one of those (False). An agent without any interval yet moves."""
    frozen = frozenset(only_from) if only_from is not None else None
    move = Move("any", tenant_id, agent_id, state, pause_reason_code, frozen)
    (moved,) = await apply(session, [move])
    return moved == 1


async def live_agents_on_device(session: AsyncSession, sip_username: str) -> list[tuple[int, int]]:
    """(tenant, agent) of the live sessions on the device with this SIP username."""
    rows = await session.execute(
        select(AgentSession.tenant_id, AgentSession.user_id)
        .join(AgentDevice, AgentDevice.id == AgentSession.device_id)
        .where(AgentDevice.sip_username == sip_username, AgentSession.ended_at.is_(None))
    )
    return [(tenant_id, user_id) for tenant_id, user_id in rows]


@dataclass(frozen=True)
class AgentNow:
    """An agent as a wallboard shows it: its name, its state since when, why when paused."""

    agent_id: int
    name: str
    state: str
    since: datetime
    pause_reason_code: str | None
    pause_reason_label: str | None  # from the tenant's catalogue (None: a free reason)


async def agents_now(
    session: AsyncSession, tenant_id: int, agent_ids: Collection[int] | None = None
) -> list[AgentNow]:
    """The tenant's agents that ever logged in (those of ``agent_ids`` only, when given), each
    in its current state, named, with its pause reason's label."""
    statement = (
        select(
            AgentStateInterval.agent_id,
            User.display_name,
            AgentStateInterval.state,
            AgentStateInterval.started_at,
            AgentStateInterval.pause_reason_code,
            PauseReason.label,
        )
        .join(User, User.id == AgentStateInterval.agent_id)
        .outerjoin(
            PauseReason,
            (PauseReason.tenant_id == AgentStateInterval.tenant_id)
            & (PauseReason.code == AgentStateInterval.pause_reason_code),
        )
        .where(
            AgentStateInterval.tenant_id == tenant_id,
            AgentStateInterval.ended_at.is_(None),
            User.tenant_id == tenant_id,
        )
    )
    if agent_ids is not None:
        statement = statement.where(AgentStateInterval.agent_id.in_(list(agent_ids)))
    rows = await session.execute(statement)
    return [AgentNow(*row) for row in rows]
