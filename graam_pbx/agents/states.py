"""The agents' state timeline (``agent_state_intervals``): what a report sums.

Sessions (login, pause, resume, logout) and Asterisk's events (a queue ringing an agent,
the agent answering, the call ending, the phone unreachable) move an agent from one state to
the next. Each move closes the agent's open interval and opens the next at the same instant,
in one statement, under a per-agent transaction lock: two moves of one agent never
interleave, so intervals are contiguous, never overlap, and at most one is open.

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

_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended('graam-agent-state', :agent_id))")
_OPEN = text(
    "SELECT id, state, pause_reason_code FROM agent_state_intervals "
    "WHERE agent_id = :agent_id AND ended_at IS NULL"
)
# Close and open in one statement: the new interval starts exactly when the old one ends
# (never before it started, whatever the clocks of earlier transactions said).
_CLOSE_AND_OPEN = text(
    """
    WITH closed AS (
        UPDATE agent_state_intervals SET ended_at = greatest(clock_timestamp(), started_at)
        WHERE id = :open_id RETURNING ended_at
    )
    INSERT INTO agent_state_intervals (tenant_id, agent_id, state, pause_reason_code, started_at)
    VALUES (:tenant_id, :agent_id, :state, :code,
            coalesce((SELECT ended_at FROM closed), clock_timestamp()))
    """
)


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
    code = pause_reason_code if state == "paused" else None
    await session.execute(_LOCK, {"agent_id": agent_id})
    current = (await session.execute(_OPEN, {"agent_id": agent_id})).one_or_none()
    if current is None:
        if state == "logged-out":
            return False  # nothing to close: a timeline starts at a login
    else:
        if only_from is not None and current.state not in only_from:
            return False
        if current.state == state and current.pause_reason_code == code:
            return False
    await session.execute(
        _CLOSE_AND_OPEN,
        {
            "open_id": current.id if current is not None else None,
            "tenant_id": tenant_id,
            "agent_id": agent_id,
            "state": state,
            "code": code,
        },
    )
    return True


async def enter_base(
    session: AsyncSession,
    tenant_id: int,
    agent_id: int,
    *,
    only_from: Collection[str] | None = None,
) -> bool:
    """Move a logged-in agent to its base state (paused with its reason, else available)."""
    live = (
        await session.execute(
            select(AgentSession.paused, AgentSession.pause_reason).where(
                AgentSession.tenant_id == tenant_id,
                AgentSession.user_id == agent_id,
                AgentSession.ended_at.is_(None),
            )
        )
    ).one_or_none()
    if live is None:
        return False
    paused, reason = live
    if paused:
        return await enter(session, tenant_id, agent_id, "paused", reason, only_from=only_from)
    return await enter(session, tenant_id, agent_id, "available", only_from=only_from)


async def live_agents_on_device(session: AsyncSession, sip_username: str) -> list[tuple[int, int]]:
    """(tenant, agent) of the live sessions on the device with this SIP username."""
    rows = await session.execute(
        select(AgentSession.tenant_id, AgentSession.user_id)
        .join(AgentDevice, AgentDevice.id == AgentSession.device_id)
        .where(AgentDevice.sip_username == sip_username, AgentSession.ended_at.is_(None))
    )
    return [(tenant_id, user_id) for tenant_id, user_id in rows]
