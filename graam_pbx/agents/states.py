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

from collections.abc import Collection
from typing import Literal

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.agents.models import AgentDevice, AgentSession

State = Literal[
    "available", "ringing", "on-call", "wrap-up", "paused", "unregistered", "logged-out"
]

# The states a pause or a resume switches at once; during a call (ringing, on call, wrap-up)
# or while the phone is unreachable, the new base state starts when that ends.
BASE_STATES: frozenset[str] = frozenset({"available", "paused"})
CALL_STATES: frozenset[str] = frozenset({"ringing", "on-call", "wrap-up"})

# One statement per move (migration 0012_agent_state_enter): the agent's session when asked,
# the per-agent lock, its open interval, then close-and-open at the same instant.
_ENTER = text(
    "SELECT agent_state_enter(:tenant_id, :agent_id, :state, :code, "
    "CAST(:only_from AS text[]), :session)"
)
Session = Literal["any", "live", "base"]


async def _enter(
    session: AsyncSession,
    tenant_id: int,
    agent_id: int,
    state: State,
    code: str | None,
    only_from: Collection[str] | None,
    which: Session,
) -> bool:
    moved = await session.scalar(
        _ENTER,
        {
            "tenant_id": tenant_id,
            "agent_id": agent_id,
            "state": state,
            "code": code,
            "only_from": sorted(only_from) if only_from is not None else None,
            "session": which,
        },
    )
    return bool(moved)


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
    return await _enter(session, tenant_id, agent_id, state, pause_reason_code, only_from, "any")


async def enter_live(
    session: AsyncSession,
    tenant_id: int,
    agent_id: int,
    state: State,
    *,
    only_from: Collection[str] | None = None,
) -> bool:
    """``enter``, for an agent logged in to this tenant only (else False)."""
    return await _enter(session, tenant_id, agent_id, state, None, only_from, "live")


async def enter_base(
    session: AsyncSession,
    tenant_id: int,
    agent_id: int,
    *,
    only_from: Collection[str] | None = None,
) -> bool:
    """Move a logged-in agent to its base state (paused with its reason, else available)."""
    return await _enter(session, tenant_id, agent_id, "available", None, only_from, "base")


_COMPLETE = text("SELECT agent_state_complete(:tenant_id, :queue_id, :agent_id)")


async def complete(session: AsyncSession, tenant_id: int, queue_id: int, agent_id: int) -> int:
    """The agent's call from this queue ended: into wrap-up for the queue's wrap-up time, else
    back to its base state, from ``on-call`` only. The seconds of the wrap-up entered, else 0."""
    seconds = await session.scalar(
        _COMPLETE, {"tenant_id": tenant_id, "queue_id": queue_id, "agent_id": agent_id}
    )
    return int(seconds or 0)


async def live_agents_on_device(session: AsyncSession, sip_username: str) -> list[tuple[int, int]]:
    """(tenant, agent) of the live sessions on the device with this SIP username."""
    rows = await session.execute(
        select(AgentSession.tenant_id, AgentSession.user_id)
        .join(AgentDevice, AgentDevice.id == AgentSession.device_id)
        .where(AgentDevice.sip_username == sip_username, AgentSession.ended_at.is_(None))
    )
    return [(tenant_id, user_id) for tenant_id, user_id in rows]
