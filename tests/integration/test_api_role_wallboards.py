"""The wallboards of an API process, kept live by what the active worker commits.

An API process and a worker process (``create_app`` with their roles: their own engines, AMI
connections and LISTEN connections; nothing shared but Postgres) on one database. The
worker's timeline commits an agent's move and its queue-call writer commits queue calls; the
API process's board shows the move and reads its figures again, without waiting for its
periodic full read. Its LISTEN connection cut, it connects again and reads every watched
board again.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import asyncpg
import pytest

from graam_pbx.agents import states
from graam_pbx.app import Runtime
from graam_pbx.cluster import signals
from graam_pbx.cluster.lease import lease_holder
from graam_pbx.db import plain_url
from graam_pbx.live.board import Board
from graam_pbx.live.relay import LISTENER_NAME
from graam_pbx.live.wallboards import Wallboards
from graam_pbx.settings import ProcessRole
from tests.conftest import Asterisk, RunningApp
from tests.factories import make_world
from tests.role_processes import is_active
from tests.role_processes import role_process as shared_role_process
from tests.waiting import until

LEASE_INTERVAL = 0.2
# Waits well below the boards' own full read (wallboards.REFRESH_INTERVAL, 60 s): what the
# board shows came through the notifications.
HEARD_TIMEOUT = 20.0
TAKEOVER_TIMEOUT = 30.0


@contextlib.asynccontextmanager
async def role_process(
    role: ProcessRole, database_url: str, asterisk: Asterisk, workdir: Path
) -> AsyncIterator[RunningApp]:
    async with shared_role_process(
        role,
        database_url,
        asterisk,
        workdir,
        name="wallboards",
        lease_interval=LEASE_INTERVAL,
        config_dir=workdir / "generated",
    ) as process:
        yield process


async def agent_state(live: Wallboards, tenant_id: int, agent_id: int) -> str | None:
    board = await live.board(tenant_id)
    for agent in board["agents"]:
        if agent["user_id"] == agent_id:
            return cast(str, agent["state"])
    return None


async def test_the_workers_moves_and_queue_calls_reach_an_api_process_board(
    database_url: str, asterisk: Asterisk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        role_process(ProcessRole.API, database_url, asterisk, tmp_path / "api") as api,
        role_process(ProcessRole.WORKER, database_url, asterisk, tmp_path / "worker") as worker,
    ):
        await until(lambda: is_active(worker.client), "the worker active", timeout=TAKEOVER_TIMEOUT)
        api_runtime: Runtime = api.runtime
        worker_runtime: Runtime = worker.runtime
        live, listener = api_runtime.live, api_runtime.live_listener
        timeline_owner, queue_calls = worker_runtime.agents, worker_runtime.queue_calls
        assert live is not None and listener is not None
        assert timeline_owner is not None and queue_calls is not None
        world = await make_world(api.client, api.app.state.sessions)
        tenant, agent = world.tenant_id, world.agent.user_id
        viewer = await live.watch(tenant)
        try:
            assert await agent_state(live, tenant, agent) is None  # never logged in

            async def moved(state: states.State) -> None:
                """A move the worker's timeline commits: applied, then its listeners told."""
                move = states.Move("any", tenant, agent, state)
                async with worker.app.state.sessions() as session, session.begin():
                    results = await states.apply(session, [move])
                for heard in list(timeline_owner.timeline.listeners):
                    heard([move], results)

            await moved("available")

            async def shows(state: str) -> bool:
                return await agent_state(live, tenant, agent) == state

            await until(lambda: shows("available"), "the move on the board", HEARD_TIMEOUT)

            # Queue calls written by the worker: the API process reads the figures again.
            figures_read: list[int] = []
            read_figures = live._read_figures

            async def counted(board: Board) -> None:
                figures_read.append(board.tenant_id)
                await read_figures(board)

            monkeypatch.setattr(live, "_read_figures", counted)
            for heard_calls in list(queue_calls.listeners):
                heard_calls({tenant})

            async def figures_again() -> bool:
                return tenant in figures_read

            await until(figures_again, "the figures read again", HEARD_TIMEOUT)

            # The LISTEN connection cut: connected again, every watched board read again.
            connects = listener.connects
            async with admin(database_url) as connection:
                # The worker holds the lease by the name it was given (GRAAM_WORKER_NAME).
                assert await lease_holder(connection) == "wallboards-worker"
                await connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = $1",
                    LISTENER_NAME,
                )

            async def reconnected() -> bool:
                return listener.connects > connects and listener.listening.is_set()

            await until(reconnected, "the LISTEN connection back", HEARD_TIMEOUT)
            await moved("paused")
            await until(lambda: shows("paused"), "a move heard after reconnecting", HEARD_TIMEOUT)
        finally:
            live.leave(viewer)


@contextlib.asynccontextmanager
async def admin(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(plain_url(database_url))
    try:
        yield connection
    finally:
        await connection.close()


def test_moves_payloads_name_a_tenants_agents_or_all_of_them() -> None:
    assert signals.decode_moves(signals.encode_moves(7, {3, 1})) == (7, {1, 3})
    assert signals.decode_moves(signals.encode_moves(7, None)) == (7, None)
    assert signals.decode_moves(signals.encode_moves(7, range(5000))) == (7, None)
    assert signals.decode_moves("garbage") is None
