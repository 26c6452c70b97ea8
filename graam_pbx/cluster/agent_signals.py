"""Agent logins, logouts, pauses and queue memberships committed in an API process, told to
the active worker's agent worker after their commit, gathered (graam_pbx.cluster.signals
says how the worker hears them).

An API process's sessions hand the tenants each commit changed to ``AgentWakeups.add``
(their factory's ``on_agent_change``, called once the commit is done). The tenants added
within ``GATHER`` seconds of the first go in one ``pg_notify`` of their own, on a pooled
connection. Sent inside each login's transaction instead (as before), a login storm's
commits queued on one another: Postgres orders the commits of the transactions that
notify under one lock, held through each one's flush of the log. And every notification
wakes every LISTEN connection of the database. One notification per gathering costs a
storm a fraction of that (``bench.login_storm``; docs/login-storm.md).

A process that dies between a commit and its notification loses the wake-up, never the
change: the agent worker's full pass (``agent_reconcile_interval``) makes Asterisk match
it. A notification that fails is sent again, with what came since.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from graam_pbx.cluster.signals import AGENTS_CHANNEL, encode

log = logging.getLogger(__name__)

# Seconds a first change waits for others to go with it. The agent worker merges the passes
# asked within its own MERGE_WINDOW (0.1 s) anyway: a storm's members come no later.
GATHER = 0.02
RETRY = 1.0  # seconds before a failed notification is sent again
STOP_TIMEOUT = 5.0  # seconds the last gathering may take when the process stops


class AgentWakeups:
    """The agent changes an API process committed, sent to the active worker in gatherings."""

    def __init__(self, engine: AsyncEngine, *, gather: float = GATHER) -> None:
        self._engine = engine
        self._gather = gather
        self._pending: set[int] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sent = 0  # notifications sent

    def add(self, tenant_ids: Iterable[int]) -> None:
        """Committed changes of these tenants (a session factory's ``on_agent_change``)."""
        self._pending.update(tenant_ids)
        if self._pending:
            self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="agent-wakeups")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        if self._pending:  # what was committed before the stop
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await self._send()
            except (SQLAlchemyError, OSError, TimeoutError) as err:
                log.warning(
                    "agent changes not told to the worker at stop; its next full pass will",
                    extra={"tenants": len(self._pending), "error": str(err)},
                )

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self._gather)
            self._wake.clear()
            try:
                await self._send()
            except (SQLAlchemyError, OSError, TimeoutError) as err:
                log.warning(
                    "agent changes not told to the worker; sending again",
                    extra={"tenants": len(self._pending), "error": str(err)},
                )
                self._wake.set()
                await asyncio.sleep(RETRY)

    async def _send(self) -> None:
        tenants, self._pending = self._pending, set()
        try:
            async with self._engine.begin() as connection:
                await connection.execute(select(func.pg_notify(AGENTS_CHANNEL, encode(tenants))))
        except BaseException:
            self._pending |= tenants  # sent with the next gathering
            raise
        self.sent += 1
