"""Agent sessions: login, logout and pause, under the tenant's concurrent-licence limit.

The limit holds in Postgres, whatever the number of requests or control-plane processes: a
login locks its tenant's row (``FOR NO KEY UPDATE``, the lock ``set_licences`` also
takes), then counts the live sessions in a statement of its own, so the count sees every
login committed before the lock was granted. A partial unique index keeps one live session
per agent. The whole login is one round trip, the ``agent_login()`` function of migrations
0023 and 0039, which also checks the caller's account when its route did not read it
(deps.allow_checked_by_statement): a login storm's rate follows its CPU, and every round trip
costs CPU at both ends.

Services never commit. Each change notes its tenant in ``session.info``; after the commit,
the callback the session factory was given (``on_agent_change``) hears the tenants, and the
agent worker makes Asterisk's queue members match: in the same process, or told by the API
process's gatherer (graam_pbx.cluster.agent_signals). A rolled-back change is never
announced.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, UOWTransaction

from graam_pbx.agents import pause_reasons, states
from graam_pbx.agents.models import AgentDevice, AgentSession, AgentStateEvent
from graam_pbx.auth.models import User
from graam_pbx.auth.principal import ACCOUNT_GONE, TOKEN_REVOKED, Role, Scope
from graam_pbx.errors import Conflict, Forbidden, GraamError, Invalid, NotFound, Unauthorized
from graam_pbx.metrics import AGENT_SESSIONS_ENDED, LICENCE_REFUSALS
from graam_pbx.queues.models import QueueMember
from graam_pbx.tenants.models import Tenant, TenantStatus

Source = Literal["api", "phone", "web"]  # web: the console's "My day" page
EndReason = Literal["logout", "forced", "unregistered", "unreachable", "max-length"]

# Asterisk's device states of a device that is on a call (the live view's "on_call").
ON_CALL_STATES = frozenset({"INUSE", "BUSY", "RINGINUSE", "ONHOLD"})

PENDING_KEY = "graam_agent_tenants"
CALLBACK_KEY = "on_agent_change"
AgentChangeCallback = Callable[[set[int]], None]


class LicenceExhausted(GraamError):
    """Every licence of the tenant is in use: the login is refused (and the refusal kept)."""

    status_code = 409
    error_id = "licence-exhausted"


@dataclass(frozen=True)
class LoggedIn:
    """A live session as the login's statement answers it: the columns its answer shows, not an
    ORM object (the hot path of a login storm, where building one costs more than reading
    the row)."""

    id: int
    user_id: int
    device_id: int | None
    source: str
    started_at: datetime
    paused: bool
    pause_reason: str | None
    paused_since: datetime | None


@dataclass(frozen=True)
class LoginResult:
    session: LoggedIn
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
    if session.in_nested_transaction():
        return  # a savepoint released: told when the outer transaction commits, not before
    pending: set[int] = session.info.pop(PENDING_KEY, set())
    callback: AgentChangeCallback | None = session.info.get(CALLBACK_KEY)
    if pending and callback is not None:
        callback(pending)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    # A savepoint rolled back leaves what the outer transaction did before it: still told
    # at its commit (a change undone costs one needless pass, never a missed one).
    if not session.in_nested_transaction():
        session.info.pop(PENDING_KEY, None)


# ---- login, logout, pause -----------------------------------------------------------------------


def _ensure_may_act(scope: Scope, user_id: int) -> None:
    if scope.role is Role.AGENT and scope.principal.user_id != user_id:
        raise Forbidden("an agent logs in, out and pauses only itself")


class DeviceOnOtherNode(Conflict):
    """The device is registered with another node than its tenant's: its queue members would
    be added on the tenant's node, where the phone cannot be rung (the cluster's rule,
    graam_pbx/cluster/placement.py, checked by the login's own statement)."""

    error_id = "tenant-on-other-node"


class NoNodeActive(Conflict):
    """The tenant has no placement and no node is active: no node can take its agents."""

    error_id = "no-active-node"


# The whole login in one round trip, in the caller's transaction (migrations 0023 and 0039:
# the caller's account when its token's claims were not checked yet, the tenant's lock, the
# agent and its device, the device's node, the count under the lock, the session with its
# event and state move, or the refusal with who holds the licences). It raises nothing:
# ``outcome`` says what happened, mapped to errors below. Parameters: tenant, agent, device
# asked for (or NULL), the agents' role, source, actor, the actor's token epoch to check (or
# NULL: its account was read), refusal reason, moves (JSON). A login is announced after its
# commit, as every other agent change (_announce: the worker, or in an API process
# graam_pbx.cluster.agent_signals, gathered).
_LOGIN = """
    SELECT outcome, licences, in_use, session_id, device_id, source, started_at, paused,
           pause_reason, paused_since, registered, home, holder_ids, holder_names,
           holder_since
    FROM agent_login($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
"""


async def _fetch_row(session: AsyncSession, sql: str, *args: Any) -> Sequence[Any] | None:
    """One row of ``sql`` (the driver's ``$n`` parameters), in the session's transaction.

    Straight through asyncpg once the transaction has begun, or on a connection where each
    statement is its own transaction (a route of one statement, deps.one_statement): the hot
    path of a login storm, where SQLAlchemy's statement machinery costs about twice what the
    driver's round trip does in this process. A transaction's first statement goes through
    SQLAlchemy, which begins it.
    """
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    options = (
        connection.sync_connection.get_execution_options() if connection.sync_connection else {}
    )
    own_transactions = options.get("isolation_level") == "AUTOCOMMIT"
    if driver is not None and (own_transactions or driver.is_in_transaction()):
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
    anyway to keep it. Any other refusal writes nothing.
    """
    _ensure_may_act(scope, user_id)
    tenant_id = scope.tenant_id
    move = states.Move("any", tenant_id, user_id, "available")
    answer = await _fetch_row(
        session,
        _LOGIN,
        tenant_id,
        user_id,
        device_id,
        Role.AGENT.value,
        source,
        scope.principal.user_id,
        scope.principal.epoch_to_check,
        LicenceExhausted.error_id,
        json.dumps([move.as_json()]),
    )
    assert answer is not None  # noqa: S101 - a function's one row, always
    (outcome, licences, in_use, session_id, device, made_by, started_at, paused) = answer[:8]
    pause_reason, paused_since, registered, home, ids, names, since = answer[8:]
    if outcome == "created" or outcome == "existing":
        live = LoggedIn(
            id=session_id,
            user_id=user_id,
            device_id=device,
            source=made_by,
            started_at=started_at,
            paused=paused,
            pause_reason=pause_reason,
            paused_since=paused_since,
        )
        if outcome == "created":
            _note_change(session, tenant_id)
            return LoginResult(live, created=True)
        if device_id is not None and device != device_id:
            raise Conflict(
                f"agent {user_id} is logged in on device {device}: log out first",
                device_id=device,
            )
        return LoginResult(live, created=False)
    if outcome == "refused":
        # Its event is written (the caller commits anyway to keep it).
        LICENCE_REFUSALS.labels(tenant=str(tenant_id)).inc()
        raise LicenceExhausted(
            f"all {licences} licences of the tenant are in use",
            licences=licences,
            in_use=in_use,
            connected=[
                {"user_id": holder, "display_name": name, "since": at.isoformat()}
                for holder, name, at in zip(ids or (), names or (), since or (), strict=True)
            ],
        )
    raise _refusal(outcome, tenant_id, user_id, device_id, registered, home)


def _refusal(
    outcome: str,
    tenant_id: int,
    user_id: int,
    device_id: int | None,
    registered: str | None,
    home: str | None,
) -> GraamError:
    """The error of a login ``agent_login`` refused before counting licences."""
    if outcome == "caller-gone":
        return Unauthorized(ACCOUNT_GONE)
    if outcome == "caller-revoked":
        return Unauthorized(TOKEN_REVOKED)
    if outcome == "no-tenant":
        return NotFound(f"no tenant {tenant_id}")
    if outcome == "no-agent":
        return NotFound(f"no agent {user_id}")
    if outcome == "disabled":
        return Forbidden(f"agent {user_id} is disabled")
    if outcome == "no-device":
        if device_id is not None:
            return Invalid("body.device_id", f"no device {device_id} of agent {user_id}")
        return Invalid("body.device_id", f"agent {user_id} has no device to log in with")
    if outcome == "no-node":
        return NoNodeActive(f"tenant {tenant_id} has no placement and no node is active")
    if outcome == "elsewhere":
        return DeviceOnOtherNode(
            f"tenant {tenant_id} lives on node {home}, not on node {registered}",
            field="body.device_id",
            reason="the tenant lives on another node",
            tenant_node=home,
        )
    raise AssertionError(f"agent_login answered {outcome!r}")


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


# Every queue of the tenants (``$1``, NULL: all) and every queue member their live sessions
# call for, in one statement: kind ``q`` rows name a queue, kind ``s`` rows a seat. A
# terminated tenant's queues are gone from Asterisk with its configuration: no seats there.
_SEATS_AND_QUEUES = """
    SELECT 'q', q.tenant_id, q.id, NULL::bigint, NULL::text, NULL::integer, NULL::boolean,
           NULL::text
    FROM queues q
    WHERE $1::bigint[] IS NULL OR q.tenant_id = ANY($1::bigint[])
    UNION ALL
    SELECT 's', s.tenant_id, m.queue_id, s.user_id, d.sip_username, m.penalty, s.paused,
           s.pause_reason
    FROM agent_sessions s
    JOIN agent_devices d ON d.id = s.device_id
    JOIN queue_members m ON m.user_id = s.user_id AND m.tenant_id = s.tenant_id
    JOIN tenants t ON t.id = s.tenant_id
    WHERE s.ended_at IS NULL AND t.status <> $2
      AND ($1::bigint[] IS NULL OR s.tenant_id = ANY($1::bigint[]))
"""


async def seats_and_queues(
    engine: AsyncEngine, tenant_ids: Collection[int] | None
) -> tuple[list[QueueSeat], list[tuple[int, int]]]:
    """Every queue member the live sessions of these tenants (None: all) call for, and
    (tenant, queue) of every queue of theirs.

    One round trip, outside any transaction (one statement reads one snapshot): the agent
    worker asks after every few logins of a storm, where a BEGIN and a COMMIT around it
    would cost as much again, in this process and in Postgres.
    """
    async with engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None  # noqa: S101 - a pooled connection has its driver's
        rows = await driver.fetch(
            _SEATS_AND_QUEUES,
            None if tenant_ids is None else list(tenant_ids),
            TenantStatus.TERMINATED.value,
        )
    seats = [QueueSeat(*row[1:]) for row in rows if row[0] == "s"]
    queues = [(row[1], row[2]) for row in rows if row[0] == "q"]
    return seats, queues
