"""Committed changes made in one process, heard by the active worker in another.

An API process commits configuration changes (devices, queues, routes…) and agent logins,
logouts and pauses, but the config applier and the agent worker run in the active worker.
Configuration changes are sent with ``pg_notify`` inside the committing transaction (its
sessions: ``session_factory(..., notify_changes=True)``): Postgres delivers a notification
only if, and once, the transaction commits. Agent changes, many at once in a login storm,
are sent after their commits instead, gathered (graam_pbx.cluster.agent_signals). The
active worker LISTENs on its lease's connection, so it hears every change committed after
it took the lease; what was committed before is covered by the full passes every component
makes when it starts (applier, agent reconcile). A LISTEN connection that drops is a lost
lease: the worker stops, and its successor starts with full passes again.

Configuration changes are sent by graam_pbx.asterisk.changes (with the generations it bumps),
agent changes by graam_pbx.cluster.agent_signals; this module is what both share, and imports
no domain (the applier's package may use it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from graam_pbx.db import NOTIFY_KEY

log = logging.getLogger(__name__)

CONFIG_CHANNEL = "graam_config_changed"
AGENTS_CHANNEL = "graam_agents_changed"
EVERYTHING = "*"
# Postgres refuses a payload of 8000 bytes or more: a larger set asks for a full pass.
MAX_PAYLOAD = 7000

Request = Callable[[Iterable[int] | None], None]


def encode(tenant_ids: Iterable[int]) -> str:
    """The payload naming these tenants (``*``: too many to name, a full pass)."""
    text = ",".join(str(tenant_id) for tenant_id in sorted(set(tenant_ids)))
    return text if len(text) <= MAX_PAYLOAD else EVERYTHING


def decode(payload: str) -> set[int] | None:
    """The tenants a payload names; None asks for everything (also for one not understood)."""
    if payload == EVERYTHING:
        return None
    try:
        return {int(part) for part in payload.split(",") if part}
    except ValueError:
        log.warning(
            "change notification not understood: full pass", extra={"payload": payload[:80]}
        )
        return None


def notify(session: Session, channel: str, tenant_ids: set[int]) -> None:
    """Send the notification inside ``session``'s transaction, if its factory asked for it."""
    if tenant_ids and session.info.get(NOTIFY_KEY):
        session.execute(select(func.pg_notify(channel, encode(tenant_ids))))


async def listen(
    connection: asyncpg.Connection,
    *,
    on_config: Request | None,
    on_agents: Request | None,
    on_preview: Callable[[str], None] | None = None,
) -> None:
    """Hand the notifications of other processes' commits to the applier and agent worker,
    and API processes' preview calls to the dialer."""

    def handler(request: Request) -> Callable[[Any, int, str, str], None]:
        def heard(_: Any, pid: int, channel: str, payload: str) -> None:
            del pid, channel
            request(decode(payload))

        return heard

    if on_config is not None:
        await connection.add_listener(CONFIG_CHANNEL, handler(on_config))
    if on_agents is not None:
        await connection.add_listener(AGENTS_CHANNEL, handler(on_agents))
    if on_preview is not None:
        await connection.add_listener(PREVIEW_CHANNEL, _handler(on_preview))


# ---- from the active worker to the API processes ------------------------------------------

# The agents' state moves the active worker's timeline committed: one notification per
# tenant, ``tenant:agent,agent`` (``tenant:*`` when too many to name: all its agents).
MOVES_CHANNEL = "graam_agent_moves"
# The queue calls the active worker's queue-call writer committed (the tenants, as above).
QUEUE_CALLS_CHANNEL = "graam_queue_calls_written"


def encode_moves(tenant_id: int, agent_ids: Iterable[int] | None) -> str:
    """The payload naming these agents of one tenant (None, or too many: all of them)."""
    if agent_ids is None:
        return f"{tenant_id}:{EVERYTHING}"
    text = f"{tenant_id}:" + ",".join(str(agent_id) for agent_id in sorted(set(agent_ids)))
    return text if len(text) <= MAX_PAYLOAD else f"{tenant_id}:{EVERYTHING}"


def decode_moves(payload: str) -> tuple[int, set[int] | None] | None:
    """The tenant and agents a payload names (None for the agents: all of them); None for a
    payload not understood."""
    tenant, _, agents = payload.partition(":")
    try:
        tenant_id = int(tenant)
        if agents == EVERYTHING:
            return tenant_id, None
        return tenant_id, {int(part) for part in agents.split(",") if part}
    except ValueError:
        log.warning("moves notification not understood", extra={"payload": payload[:80]})
        return None


Heard = Callable[[str], None]


class Listener:
    """A LISTEN connection of its own, for a process that holds no lease (an API process).

    Notifications are heard only while connected: when the connection drops, it connects
    again (every ``retry`` seconds) and calls ``on_connected`` once listening again, for the
    caller to read again what it may have missed meanwhile.
    """

    def __init__(
        self,
        database_url: str,
        channels: dict[str, Heard],
        *,
        on_connected: Callable[[], None] | None = None,
        retry: float = 2.0,
        name: str = "graam-listener",
    ) -> None:
        self._url = database_url
        self.name = name  # its application_name in pg_stat_activity
        self._channels = channels
        self._on_connected = on_connected
        self._retry = retry
        self._task: asyncio.Task[None] | None = None
        self.connects = 0
        self.listening = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pg-listener")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def _run(self) -> None:
        failing = False
        while True:
            try:
                await self._listen()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
                if not failing:
                    log.warning(
                        "LISTEN connection lost, connecting again", extra={"error": str(err)}
                    )
                failing = True
            else:
                log.warning("LISTEN connection closed, connecting again")
                failing = False
            await asyncio.sleep(self._retry)

    async def _listen(self) -> None:
        """Listen until the connection closes (or stops answering its probe)."""
        lost = asyncio.Event()
        connection = await asyncpg.connect(
            self._url, timeout=5.0, server_settings={"application_name": self.name[:63]}
        )
        try:
            connection.add_termination_listener(lambda _: lost.set())
            for channel, heard in self._channels.items():
                await connection.add_listener(channel, _handler(heard))
            self.connects += 1
            self.listening.set()
            if self._on_connected is not None:
                self._on_connected()
            while not lost.is_set():
                # A probe: a silent network drop is noticed, not only a closed socket.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._retry * 5):
                        await lost.wait()
                if not lost.is_set():
                    await connection.fetchval("SELECT 1", timeout=5.0)
        finally:
            self.listening.clear()
            with contextlib.suppress(Exception):
                connection.terminate()


def _handler(heard: Heard) -> Callable[[Any, int, str, str], None]:
    def handle(_: Any, pid: int, channel: str, payload: str) -> None:
        del pid, channel
        try:
            heard(payload)
        except Exception:
            log.exception("a notification's handler failed")

    return handle


# An API process's preview call, asked of the active worker's dialer (JSON; its answer on
# the reply channel names the request's channel id: campaigns/remote_preview.py).
PREVIEW_CHANNEL = "graam_preview_dial"
PREVIEW_REPLY_CHANNEL = "graam_preview_dialed"
