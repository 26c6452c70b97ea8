"""Agent sessions: login, logout and pause, under the tenant's concurrent-licence limit.

The limit holds in Postgres, whatever the number of requests or control-plane processes: a
login locks its tenant's row (``FOR NO KEY UPDATE``, the lock ``set_licences`` also
takes), then counts the live sessions in a statement of its own, so the count sees every
login committed before the lock was granted. A partial unique index keeps one live session
per agent.

Services never commit. Each change notes its tenant in ``session.info``; after the commit,
the callback the session factory was given (``on_agent_change``) hears the tenants, and the
agent worker makes Asterisk's queue members match. A rolled-back change is never announced.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction

from graam_pbx.agents import pause_reasons, states
from graam_pbx.agents.models import AgentDevice, AgentSession, AgentStateEvent
from graam_pbx.auth.models import User
from graam_pbx.auth.principal import Role, Scope
from graam_pbx.db import NOTIFY_KEY
from graam_pbx.errors import Conflict, Forbidden, GraamError, Invalid, NotFound
from graam_pbx.metrics import AGENT_SESSIONS_ENDED, LICENCE_REFUSALS
from graam_pbx.queues.models import Queue, QueueMember
from graam_pbx.tenants.models import Tenant, TenantStatus

Source = Literal["api", "phone", "web"]  # web: the console's "My day" page
EndReason = Literal["logout", "forced", "unregistered", "unreachable", "max-length"]

# Asterisk's device states of a device that is on a call (the live view's "on_call").
ON_CALL_STATES = frozenset({"INUSE", "BUSY", "RINGINUSE", "ONHOLD"})

PENDING_KEY = "graam_agent_tenants"
# Where agent changes committed in an API process are announced to the active worker
# (``pg_notify``; graam_pbx.cluster.signals listens there); the payload names the tenants,
# comma-separated.
AGENTS_CHANNEL = "graam_agents_changed"
CALLBACK_KEY = "on_agent_change"
AgentChangeCallback = Callable[[set[int]], None]


class LicenceExhausted(GraamError):
    """Every licence of the tenant is in use: the login is refused (and the refusal kept)."""

    status_code = 409
    error_id = "licence-exhausted"


@dataclass(frozen=True)
class LoginResult:
    session: AgentSession
    created: bool  # False: the agent was already logged in


@dataclass(frozen=True)
class LiveSession:
    """A live session with who and what it is, for the supervisors' view."""

    session: AgentSession
    display_name: str
    sip_username: str
    extension: str


@dataclass(frozen=True)
class QueueSeat:
    """One queue member Asterisk must have: an agent's device in one of its queues."""

    tenant_id: int
    queue_id: int
    user_id: int
    sip_username: str
    penalty: int
    paused: bool
    pause_reason: str | None


# ---- after-commit announcements -----------------------------------------------------------------


def _note_change(session: AsyncSession, tenant_id: int) -> None:
    pending: set[int] = session.info.setdefault(PENDING_KEY, set())
    pending.add(tenant_id)


@event.listens_for(Session, "after_flush")
def _note_memberships(session: Session, _: UOWTransaction) -> None:
    # A logged-in agent added to (or removed from) a queue is a member at once.
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, QueueMember) and obj.tenant_id is not None:
            session.info.setdefault(PENDING_KEY, set()).add(obj.tenant_id)


@event.listens_for(Session, "after_commit")
def _announce(session: Session) -> None:
    pending: set[int] = session.info.pop(PENDING_KEY, set())
    callback: AgentChangeCallback | None = session.info.get(CALLBACK_KEY)
    if pending and callback is not None:
        callback(pending)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)


# ---- login, logout, pause -----------------------------------------------------------------------


def _ensure_may_act(scope: Scope, user_id: int) -> None:
    if scope.role is Role.AGENT and scope.principal.user_id != user_id:
        raise Forbidden("an agent logs in, out and pauses only itself")


# The tenant's licences under its row lock, with the agent (disabled or not) and the id of
# its device to log in with (the named one, else its first), in one round trip. Logins of one
# tenant take its row lock one at a time, here and in every other process; NO KEY UPDATE lets
# other tables' foreign keys to the tenant go on meanwhile. The agent and its device are read
# under the lock too: a request that turns out to be refused holds it only until its rollback.
# Parameters: tenant, agent, device asked for (or NULL), the agents' role.
_LOGIN_CHECK = """
    SELECT t.licences, u.id, u.disabled,
           (SELECT d.id FROM agent_devices d
            WHERE d.tenant_id = t.id AND d.user_id = u.id
              AND ($3::bigint IS NULL OR d.id = $3::bigint)
            ORDER BY d.id LIMIT 1)
    FROM tenants t
    LEFT JOIN users u ON u.id = $2 AND u.tenant_id = t.id AND u.role = $4
    WHERE t.id = $1
    FOR NO KEY UPDATE OF t
"""


# Under the tenant's lock, in one round trip (the lock is held until the commit): count the
# live sessions, find the agent's own, and only when there is none and a licence is free,
# insert the session, its login event and the agent's move to ``available`` (the timeline's
# own function, with states.py's form of the move), and, in an API process, tell the active
# worker (``pg_notify``: delivered when, and only if, the transaction commits); when none is
# free, the refusal's event and who holds the licences (the refusal's details: the very
# sessions the count saw). The statement starts after the lock is granted, so its snapshot
# holds every login committed before. (The count cannot share the locking statement: a
# statement's snapshot is taken before it waits for the lock.) The move's function runs its
# own statements with fresh snapshots and reads no table this statement writes.
# Parameters: tenant, agent, device, source, actor, licences, refusal reason, moves (JSON),
# notify or not, channel, payload.
_LOGIN_IF_FREE = """
    WITH live AS (
        SELECT count(*) AS in_use, max(id) FILTER (WHERE user_id = $2) AS mine
        FROM agent_sessions WHERE tenant_id = $1 AND ended_at IS NULL
    ), made AS (
        INSERT INTO agent_sessions (tenant_id, user_id, device_id, source, started_by, paused)
        SELECT $1, $2, $3, $4, $5, false FROM live
        WHERE live.mine IS NULL AND live.in_use < $6
        RETURNING id, started_at
    ), logged AS (
        INSERT INTO agent_state_events (tenant_id, user_id, session_id, kind, source,
                                        actor_user_id)
        SELECT $1, $2, made.id, 'login', $4, $5 FROM made
    ), refused AS (
        INSERT INTO agent_state_events (tenant_id, user_id, kind, reason, source,
                                        actor_user_id)
        SELECT $1, $2, 'refused', $7, $4, $5 FROM live
        WHERE live.mine IS NULL AND live.in_use >= $6
    ), holders AS (
        SELECT array_agg(ROW(s.user_id, u.display_name, s.started_at) ORDER BY s.started_at, s.id)
               AS holders
        FROM agent_sessions s JOIN users u ON u.id = s.user_id
        WHERE s.tenant_id = $1 AND s.ended_at IS NULL
    )
    SELECT live.in_use, live.mine, made.id, made.started_at,
           (SELECT agent_state_apply($8::jsonb) FROM made) AS moved,
           (SELECT pg_notify($10, $11) FROM made WHERE $9) AS notified,
           CASE WHEN live.mine IS NULL AND live.in_use >= $6 THEN (SELECT holders FROM holders)
           END AS holders
    FROM live LEFT JOIN made ON true
"""


async def _fetch_row(session: AsyncSession, sql: str, *args: Any) -> Sequence[Any] | None:
    """One row of ``sql`` (the driver's ``$n`` parameters), in the session's transaction.

    Straight through asyncpg once the transaction has begun: the hot path of a login storm,
    where SQLAlchemy's statement machinery costs about twice what the driver's round trip
    does in this process. The transaction's first statement goes through SQLAlchemy, which
    begins it.
    """
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    if driver is not None and driver.is_in_transaction():
        row: Sequence[Any] | None = await driver.fetchrow(sql, *args)
        return row
    return (await connection.exec_driver_sql(sql, args)).first()


def _record(
    session: AsyncSession,
    scope: Scope | None,
    *,
    tenant_id: int,
    user_id: int,
    kind: str,
    source: str,
    session_id: int | None = None,
    reason: str | None = None,
) -> None:
    session.add(
        AgentStateEvent(
            tenant_id=tenant_id,
            user_id=user_id,
            session_id=session_id,
            kind=kind,
            reason=reason,
            source=source,
            actor_user_id=scope.principal.user_id if scope is not None else None,
        )
    )


# Checks a login's device passes before its session is made, each raising to refuse:
# (session, tenant id, device id). The cluster layer adds one (its device registered on the
# tenant's node: graam_pbx/cluster/placement.py); this domain knows no nodes.
LoginGuard = Callable[[AsyncSession, int, int], Awaitable[None]]
LOGIN_GUARDS: list[LoginGuard] = []


async def login(
    session: AsyncSession,
    scope: Scope,
    user_id: int,
    *,
    device_id: int | None = None,
    source: Source = "api",
) -> LoginResult:
    """Log an agent in with its device (the named one, else its first) if a licence is free.

    A refusal raises LicenceExhausted after adding a ``refused`` event: the caller commits
    anyway to keep it.
    """
    _ensure_may_act(scope, user_id)
    checked = await _fetch_row(
        session, _LOGIN_CHECK, scope.tenant_id, user_id, device_id, Role.AGENT.value
    )
    if checked is None:
        raise NotFound(f"no tenant {scope.tenant_id}")
    licences, agent, disabled, chosen = checked
    if agent is None:
        raise NotFound(f"no agent {user_id}")
    if disabled:
        raise Forbidden(f"agent {user_id} is disabled")
    if chosen is None:
        if device_id is not None:
            raise Invalid("body.device_id", f"no device {device_id} of agent {user_id}")
        raise Invalid("body.device_id", f"agent {user_id} has no device to log in with")
    for guard in LOGIN_GUARDS:
        await guard(session, scope.tenant_id, chosen)
    # An API process's sessions tell the active worker of agent changes through Postgres:
    # a login does it in its own statement, one round trip less under the tenant's lock
    # (graam_pbx.cluster.agent_signals does it for every other change, before the commit).
    notify = bool(session.info.get(NOTIFY_KEY))
    move = states.Move("any", scope.tenant_id, user_id, "available")
    answer = await _fetch_row(
        session,
        _LOGIN_IF_FREE,
        scope.tenant_id,
        user_id,
        chosen,
        source,
        scope.principal.user_id,
        licences,
        LicenceExhausted.error_id,
        json.dumps([move.as_json()]),
        notify,
        AGENTS_CHANNEL,
        str(scope.tenant_id),
    )
    assert answer is not None  # noqa: S101 - one row from ``live``, always
    in_use, mine, made_id, started_at, _, _, holders = answer
    if made_id is not None:
        if not notify:
            _note_change(session, scope.tenant_id)
        made = AgentSession(
            id=made_id,
            tenant_id=scope.tenant_id,
            user_id=user_id,
            device_id=chosen,
            source=source,
            started_by=scope.principal.user_id,
            started_at=started_at,
            paused=False,
        )
        return LoginResult(made, created=True)
    if mine is not None:
        current = await session.get_one(AgentSession, mine)
        if device_id is not None and current.device_id != device_id:
            raise Conflict(
                f"agent {user_id} is logged in on device {current.device_id}: log out first",
                device_id=current.device_id,
            )
        return LoginResult(current, created=False)
    # Refused: its event is written (the caller commits anyway to keep it).
    LICENCE_REFUSALS.labels(tenant=str(scope.tenant_id)).inc()
    raise LicenceExhausted(
        f"all {licences} licences of the tenant are in use",
        licences=licences,
        in_use=in_use,
        connected=[
            {"user_id": holder, "display_name": name, "since": since.isoformat()}
            for holder, name, since in holders or ()
        ],
    )


async def logout(
    session: AsyncSession, scope: Scope, user_id: int, *, source: Source = "api"
) -> AgentSession:
    """End an agent's live session: a logout by itself, a forced one by anyone else."""
    _ensure_may_act(scope, user_id)
    reason: EndReason = "logout" if scope.principal.user_id == user_id else "forced"
    ended = await _end(
        session,
        scope,
        (AgentSession.tenant_id == scope.tenant_id, AgentSession.user_id == user_id),
        reason,
        source,
    )
    if not ended:
        raise NotFound(f"agent {user_id} is not logged in")
    return ended[0]


async def set_paused(
    session: AsyncSession,
    scope: Scope,
    user_id: int,
    paused: bool,
    reason: str | None = None,
    *,
    source: Source = "api",
) -> AgentSession:
    """Pause (with a reason) or resume a logged-in agent; its queues stop or start ringing it."""
    _ensure_may_act(scope, user_id)
    live = await session.scalar(
        select(AgentSession)
        .where(
            AgentSession.tenant_id == scope.tenant_id,
            AgentSession.user_id == user_id,
            AgentSession.ended_at.is_(None),
        )
        .with_for_update()
    )
    if live is None:
        raise NotFound(f"agent {user_id} is not logged in")
    reason = reason if paused else None
    if reason is not None:
        await pause_reasons.check_pause_code(session, scope.tenant_id, reason)
    if live.paused == paused and live.pause_reason == reason:
        return live
    live.paused = paused
    live.pause_reason = reason
    live.paused_since = datetime.now(UTC) if paused else None
    _record(
        session,
        scope,
        tenant_id=scope.tenant_id,
        user_id=user_id,
        kind="pause" if paused else "unpause",
        source=source,
        session_id=live.id,
        reason=reason,
    )
    await session.flush()
    # During a call or while the phone is unreachable, the new state starts when that ends.
    if paused:
        await states.enter(
            session, scope.tenant_id, user_id, "paused", reason, only_from=states.BASE_STATES
        )
    else:
        await states.enter(
            session, scope.tenant_id, user_id, "available", only_from=states.BASE_STATES
        )
    _note_change(session, scope.tenant_id)
    return live


async def toggle_pause(
    session: AsyncSession,
    scope: Scope,
    user_id: int,
    reason: str | None = None,
    *,
    source: Source = "phone",
) -> AgentSession:
    """Pause a working agent or resume a paused one (the phone's single code)."""
    live = await get_live_session(session, scope, user_id)
    if live is None:
        raise NotFound(f"agent {user_id} is not logged in")
    return await set_paused(session, scope, user_id, not live.paused, reason, source=source)


async def get_live_session(
    session: AsyncSession, scope: Scope, user_id: int
) -> AgentSession | None:
    """The agent's live session, if it is logged in."""
    _ensure_may_act(scope, user_id)
    found: AgentSession | None = await session.scalar(
        select(AgentSession).where(
            AgentSession.tenant_id == scope.tenant_id,
            AgentSession.user_id == user_id,
            AgentSession.ended_at.is_(None),
        )
    )
    return found


async def list_live_sessions(
    session: AsyncSession, scope: Scope, *, after_id: int | None, limit: int
) -> tuple[list[LiveSession], int | None]:
    """The tenant's connected agents, oldest session first."""
    statement = (
        select(AgentSession, User.display_name, AgentDevice.sip_username, AgentDevice.extension)
        .join(User, User.id == AgentSession.user_id)
        .join(AgentDevice, AgentDevice.id == AgentSession.device_id)
        .where(AgentSession.tenant_id == scope.tenant_id, AgentSession.ended_at.is_(None))
        .order_by(AgentSession.id)
        .limit(limit + 1)
    )
    if after_id is not None:
        statement = statement.where(AgentSession.id > after_id)
    rows = [LiveSession(*row) for row in await session.execute(statement)]
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, rows[-1].session.id
    return rows, None


class DeviceStates(Protocol):
    """What the agent worker reads of Asterisk's devices (on ``tenant_id``'s node)."""

    async def device_states(
        self, sip_usernames: Iterable[str], *, tenant_id: int | None = None
    ) -> dict[str, str]: ...


async def live_device_states(
    reader: DeviceStates | None, rows: Sequence[LiveSession]
) -> dict[str, str]:
    """Asterisk's state of each live session's device (by SIP username), read on the node of
    that session's tenant: a tenant's phones register, and its calls run, on its own node
    only. Rows of several tenants are read per tenant, each on its node."""
    if reader is None or not rows:
        return {}
    by_tenant: dict[int, list[str]] = {}
    for row in rows:
        by_tenant.setdefault(row.session.tenant_id, []).append(row.sip_username)
    found: dict[str, str] = {}
    for part in await asyncio.gather(
        *(reader.device_states(names, tenant_id=tenant) for tenant, names in by_tenant.items())
    ):
        found |= part
    return found


# ---- sessions ended by the system ---------------------------------------------------------------


async def _end(
    session: AsyncSession,
    scope: Scope | None,
    where: tuple[Any, ...],
    reason: EndReason,
    source: str,
) -> list[AgentSession]:
    ended = list(
        (
            await session.scalars(
                update(AgentSession)
                .where(AgentSession.ended_at.is_(None), *where)
                .values(ended_at=func.now(), end_reason=reason)
                .returning(AgentSession),
                # Objects of these rows already in the session take the returned values.
                execution_options={"synchronize_session": False, "populate_existing": True},
            )
        ).all()
    )
    for gone in ended:
        _record(
            session,
            scope,
            tenant_id=gone.tenant_id,
            user_id=gone.user_id,
            kind="logout",
            source=source,
            session_id=gone.id,
            reason=reason,
        )
        await states.enter(session, gone.tenant_id, gone.user_id, "logged-out")
        _note_change(session, gone.tenant_id)
        AGENT_SESSIONS_ENDED.labels(reason=reason).inc()
    await session.flush()
    return ended


async def end_device_sessions(
    session: AsyncSession, sip_username: str, reason: EndReason
) -> list[AgentSession]:
    """End the sessions on a device Asterisk reports gone (unregistered or unreachable)."""
    device_ids = select(AgentDevice.id).where(AgentDevice.sip_username == sip_username)
    return await _end(
        session, None, (AgentSession.device_id.in_(device_ids.scalar_subquery()),), reason, "system"
    )


async def end_sessions_without_device(session: AsyncSession) -> list[AgentSession]:
    """End live sessions whose device was deleted: nothing can ring them any more."""
    return await _end(session, None, (AgentSession.device_id.is_(None),), "unregistered", "system")


async def end_sessions_older_than(session: AsyncSession, age: timedelta) -> list[AgentSession]:
    """End every session that has lasted longer than ``age`` (the maximum session length)."""
    return await _end(
        session, None, (AgentSession.started_at < func.now() - age,), "max-length", "system"
    )


# ---- what the worker reads ----------------------------------------------------------------------


async def licence_usage(session: AsyncSession) -> list[tuple[int, int, int]]:
    """(tenant, licences, in use) of every tenant that is not terminated."""
    in_use = (
        select(func.count())
        .where(AgentSession.tenant_id == Tenant.id, AgentSession.ended_at.is_(None))
        .scalar_subquery()
    )
    rows = await session.execute(
        select(Tenant.id, Tenant.licences, in_use).where(
            Tenant.status != TenantStatus.TERMINATED.value
        )
    )
    return [(tenant_id, licences, used) for tenant_id, licences, used in rows]


async def queue_seats(session: AsyncSession, tenant_ids: Collection[int] | None) -> list[QueueSeat]:
    """Every queue member the live sessions of these tenants (None: all) call for."""
    statement = (
        select(
            AgentSession.tenant_id,
            QueueMember.queue_id,
            AgentSession.user_id,
            AgentDevice.sip_username,
            QueueMember.penalty,
            AgentSession.paused,
            AgentSession.pause_reason,
        )
        .join(AgentDevice, AgentDevice.id == AgentSession.device_id)
        .join(
            QueueMember,
            (QueueMember.user_id == AgentSession.user_id)
            & (QueueMember.tenant_id == AgentSession.tenant_id),
        )
        .join(Tenant, Tenant.id == AgentSession.tenant_id)
        # A terminated tenant's queues are gone from Asterisk with its configuration.
        .where(AgentSession.ended_at.is_(None), Tenant.status != TenantStatus.TERMINATED.value)
    )
    if tenant_ids is not None:
        statement = statement.where(AgentSession.tenant_id.in_(list(tenant_ids)))
    return [QueueSeat(*row) for row in await session.execute(statement)]


async def tenant_queues(
    session: AsyncSession, tenant_ids: Collection[int] | None
) -> list[tuple[int, int]]:
    """(tenant, queue) of every queue of these tenants (None: all)."""
    statement = select(Queue.tenant_id, Queue.id)
    if tenant_ids is not None:
        statement = statement.where(Queue.tenant_id.in_(list(tenant_ids)))
    return [(tenant_id, queue_id) for tenant_id, queue_id in await session.execute(statement)]
