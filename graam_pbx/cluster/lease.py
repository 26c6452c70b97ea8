"""The worker lease: exactly one worker process acts at a time, chosen through Postgres.

The lease is a session-level advisory lock (``pg_try_advisory_lock``) held on a connection
of its own for as long as the process acts. A process that dies, however it dies, closes
that connection and Postgres frees the lock at once; a standby trying every
``worker_lease_interval`` then takes it. The server also drops a connection whose peer went
silent (TCP keepalives set on the session), so a partitioned worker's lease ends too.

Fencing: the active worker checks its connection every interval. When the connection closes
or stops answering, the lease is lost; the process stops acting at once (its components are
stopped) and ends with a non-zero status, for its supervisor to start it again as a standby.
A worker cut off from Postgres fences itself within one interval plus ``PROBE_TIMEOUT`` (6 s
with the default interval), before the server's keepalives (about 11 s) can give the lease
to another one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
from prometheus_client import Gauge

from graam_pbx import metrics

log = logging.getLogger(__name__)

# The advisory lock's key ("graam", then 1): advisory locks are per database, so one key
# names one deployment's lease.
LEASE_KEY = 0x67726161_6D000001
APPLICATION_NAME = "graam-worker"
CONNECT_TIMEOUT = 5.0
# How long the active worker's liveness probe may wait for Postgres before it fences itself.
PROBE_TIMEOUT = 5.0
STOP_TIMEOUT = 20.0
# A fenced worker's components get this long, all together, to stop (a CDR batch flushed, a
# task cancelled); what still runs then is abandoned, and the process ends.
FENCE_GRACE = 3.0
# The server drops a silent peer's connection (and its lock) after idle + interval * count.
KEEPALIVES = {
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
}

WORKER_ACTIVE = Gauge(
    "graam_worker_active",
    "1 while this process is the active worker (holds the worker lease, or runs as role all)",
    registry=metrics.REGISTRY,
)


class Component(Protocol):
    """A background part of the process: it owns its tasks and stops them cleanly."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def worker_name() -> str:
    """How this process shows in ``pg_stat_activity`` as the lease holder, unless named
    (``GRAAM_WORKER_NAME``: containers on the host's network share its name and pid 1)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class WorkerLease:
    """The advisory lock on a dedicated connection; ``lost`` is set if it ever goes away."""

    def __init__(self, database_url: str, *, interval: float, name: str | None = None) -> None:
        self._url = database_url
        self._interval = interval
        self.name = name or worker_name()
        self._connection: asyncpg.Connection | None = None
        self._probe: asyncio.Task[None] | None = None
        self.lost = asyncio.Event()
        self.since: datetime | None = None

    @property
    def active(self) -> bool:
        return self.since is not None and not self.lost.is_set()

    @property
    def connection(self) -> asyncpg.Connection:
        """The lease's connection (LISTEN rides on it: losing it loses the lease as well)."""
        assert self._connection is not None, "acquire() first"  # noqa: S101
        return self._connection

    async def acquire(self) -> None:
        """Return once this process holds the lease (tried every interval until then)."""
        said_standby = False
        failing: str | None = None
        while True:
            try:
                if self._connection is None or self._connection.is_closed():
                    self._connection = await asyncpg.connect(
                        self._url,
                        timeout=CONNECT_TIMEOUT,
                        server_settings={
                            "application_name": f"{APPLICATION_NAME} {self.name}"[:63],
                            **KEEPALIVES,
                        },
                    )
                taken = await self._connection.fetchval(
                    "SELECT pg_try_advisory_lock($1)", LEASE_KEY, timeout=PROBE_TIMEOUT
                )
            except (OSError, TimeoutError, asyncpg.PostgresError) as err:
                if failing is None:
                    log.warning(
                        "worker lease: Postgres unreachable, retrying", extra={"error": str(err)}
                    )
                failing = str(err)
                await self._close()
                taken = False
            else:
                failing = None
            if taken:
                break
            if not said_standby and failing is None:
                log.info("worker lease held by another worker: standing by")
                said_standby = True
            await asyncio.sleep(self._interval)
        self.since = datetime.now(UTC)
        self.connection.add_termination_listener(self._terminated)
        self._probe = asyncio.create_task(self._watch(), name="worker-lease-probe")
        WORKER_ACTIVE.set(1)
        log.info(
            "worker lease taken: this process is the active worker", extra={"worker": self.name}
        )

    async def release(self) -> None:
        """Give the lease back (a clean stop): a standby takes it within its interval."""
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.cancel()
            await asyncio.wait([probe])
        if self._connection is not None and not self._connection.is_closed():
            self._connection.remove_termination_listener(self._terminated)
        await self._close()
        if self.since is not None:
            WORKER_ACTIVE.set(0)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.connection.fetchval("SELECT 1", timeout=PROBE_TIMEOUT)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
                self._lose(f"{type(err).__name__}: {err}")
                return

    def _terminated(self, _: Any) -> None:
        self._lose("the lease's connection closed")

    def _lose(self, why: str) -> None:
        if self.lost.is_set():
            return
        WORKER_ACTIVE.set(0)
        log.error("worker lease lost: this process stops acting", extra={"error": why})
        self.lost.set()

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.terminate()


async def lease_holder(connection: asyncpg.Connection) -> str | None:
    """The name of the worker holding the lease of ``connection``'s database, if any."""
    name: str | None = await connection.fetchval(
        "SELECT activity.application_name FROM pg_locks AS locks"
        " JOIN pg_stat_activity AS activity ON activity.pid = locks.pid"
        " WHERE locks.locktype = 'advisory' AND locks.granted"
        " AND locks.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND ((locks.classid::bigint << 32) | locks.objid::bigint) = $1",
        LEASE_KEY,
    )
    if name is None:
        return None
    return name.removeprefix(f"{APPLICATION_NAME} ")


TakenHook = Callable[[asyncpg.Connection], Awaitable[None]]


class ActiveWorker:
    """Runs ``components`` only while this process holds the lease (a component itself).

    Started, it waits for the lease in the background; once taken it calls ``on_taken``
    (LISTEN for other processes' changes, before anything can miss one), then starts the
    components in order. A lost lease stops them at once and calls ``on_fenced``.
    """

    def __init__(
        self,
        lease: WorkerLease,
        components: Sequence[Component],
        *,
        on_taken: TakenHook | None = None,
        on_fenced: Callable[[], None] | None = None,
    ) -> None:
        self.lease = lease
        self._components = list(components)
        self._on_taken = on_taken
        self._on_fenced = on_fenced
        self._started: list[Component] = []
        self._task: asyncio.Task[None] | None = None
        self.fenced = asyncio.Event()
        self.activated = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="active-worker")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        await self._stop_components()
        await self.lease.release()

    def check(self) -> dict[str, Any]:
        """This process's part in the lease, for /readyz."""
        lease = self.lease
        return {
            "ok": not self.fenced.is_set(),
            "active": lease.active and self.activated.is_set(),
            "name": lease.name,
            "since": lease.since.isoformat() if lease.since else None,
        }

    async def _run(self) -> None:
        await self.lease.acquire()
        try:
            if self._on_taken is not None:
                await self._on_taken(self.lease.connection)
            for component in self._components:
                if self.lease.lost.is_set():
                    break
                await component.start()
                self._started.append(component)
        except Exception:
            log.exception("the active worker could not start; giving the lease up")
            self.lease._lose("start failed")
        else:
            self.activated.set()
        await self.lease.lost.wait()
        # Fencing: nothing of this process acts once another worker may have the lease.
        await self._stop_components(within=FENCE_GRACE)
        self.fenced.set()
        if self._on_fenced is not None:
            self._on_fenced()

    async def _stop_components(self, *, within: float | None = None) -> None:
        started, self._started = self._started, []
        try:
            async with asyncio.timeout(within):
                for component in reversed(started):
                    try:
                        async with asyncio.timeout(STOP_TIMEOUT):
                            await component.stop()
                    except Exception:
                        log.exception(
                            "component did not stop cleanly",
                            extra={"component": type(component).__name__},
                        )
        except TimeoutError:
            log.warning("fenced worker: components still stopping are abandoned")
