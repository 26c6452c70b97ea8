"""What the wallboards of API processes hear from the active worker, through Postgres.

The agents' timeline and the queue-call writer run in the active worker; an API process's
wallboards would otherwise read agents' states and figures again only every
``REFRESH_INTERVAL``. The worker's ``BoardRelay`` hears their committed writes (their own
listeners, called after each commit) and sends them with ``pg_notify``: the moved agents per
tenant, the tenants whose queue calls were written. Each API process's ``board_listener``
LISTENs and hands them to its ``Wallboards``, with the agent logins, logouts and pauses other
API processes commit (``graam_agents_changed``).

A notification is sent after its commit, so a worker that dies in between loses it: the
board is then right again at its next full read. A LISTEN connection that drops connects
again and every watched board is read again, what was committed meanwhile included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents import states as agent_states
from graam_pbx.agents.worker import AgentWorker
from graam_pbx.cluster import signals
from graam_pbx.live.wallboards import Wallboards
from graam_pbx.queue_calls.worker import QueueCallWorker

log = logging.getLogger(__name__)

LISTENER_NAME = "graam-api-wallboards"  # the API process's LISTEN in pg_stat_activity


class BoardRelay:
    """In the active worker: sends the timeline's moves and the queue calls written."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        agents: AgentWorker,
        queue_calls: QueueCallWorker,
    ) -> None:
        self._sessions = sessions
        self._agents = agents
        self._queue_calls = queue_calls
        self._moves: dict[int, set[int]] = {}
        self._calls: set[int] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sent = 0

    async def start(self) -> None:
        self._agents.timeline.listeners.append(self._on_moves)
        self._queue_calls.listeners.append(self._on_calls)
        self._task = asyncio.create_task(self._run(), name="board-relay")

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self._agents.timeline.listeners.remove(self._on_moves)
        with contextlib.suppress(ValueError):
            self._queue_calls.listeners.remove(self._on_calls)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    def _on_moves(self, moves: Sequence[agent_states.Move], results: Sequence[int]) -> None:
        del results  # a move that changed nothing may still be another writer's, read again
        for move in moves:
            self._moves.setdefault(move.tenant_id, set()).add(move.agent_id)
        self._wake.set()

    def _on_calls(self, tenant_ids: set[int]) -> None:
        self._calls |= tenant_ids
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            moves, self._moves = self._moves, {}
            calls, self._calls = self._calls, set()
            payloads = [
                (signals.MOVES_CHANNEL, signals.encode_moves(tenant_id, agent_ids))
                for tenant_id, agent_ids in moves.items()
            ]
            if calls:
                payloads.append((signals.QUEUE_CALLS_CHANNEL, signals.encode(calls)))
            try:
                async with self._sessions() as session, session.begin():
                    for channel, payload in payloads:
                        await session.execute(select(func.pg_notify(channel, payload)))
            except asyncio.CancelledError:
                raise
            except Exception:
                # Not sent: the boards are right again at their next full read.
                log.exception("board changes not sent to the API processes")
            else:
                self.sent += len(payloads)


def board_listener(database_url: str, wallboards: Wallboards) -> signals.Listener:
    """In an API process: the changes other processes commit, handed to its wallboards."""

    def moved(payload: str) -> None:
        decoded = signals.decode_moves(payload)
        if decoded is None:
            wallboards.sessions_changed(None)
        else:
            wallboards.agents_moved(*decoded)

    return signals.Listener(
        database_url,
        {
            signals.MOVES_CHANNEL: moved,
            signals.QUEUE_CALLS_CHANNEL: lambda payload: wallboards.calls_written(
                signals.decode(payload)
            ),
            signals.AGENTS_CHANNEL: lambda payload: wallboards.sessions_changed(
                signals.decode(payload)
            ),
        },
        on_connected=wallboards.read_everything,
        name=LISTENER_NAME,
    )
