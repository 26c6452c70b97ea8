"""The worker lease against the real Postgres: one active worker, a standby that takes over when
the active one's connection dies, fencing when the lease's connection is lost; and committed
changes made in an API process heard by the active worker (pg_notify on commit only).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from graam_pbx.agents import sessions as agent_sessions
from graam_pbx.app import Endpoints
from graam_pbx.cluster import signals
from graam_pbx.cluster.lease import ActiveWorker, WorkerLease, lease_holder
from graam_pbx.db import plain_url
from graam_pbx.sandbox.ports import free_port
from graam_pbx.settings import ProcessRole, Settings
from tests.cdr_events import append_rows, cdr_event, wait_for_rows
from tests.conftest import Asterisk, RunningApp, start_app
from tests.e2e.console import Console, finished_output, start_command
from tests.factories import make_world
from tests.waiting import until

INTERVAL = 0.2  # the standby's tries; waits below allow that plus a wide margin
TAKEOVER_TIMEOUT = 10.0


class Recorded:
    """A component that notes when it is started and stopped."""

    def __init__(self) -> None:
        self.running = False
        self.starts = 0
        self.stops = 0

    async def start(self) -> None:
        self.running = True
        self.starts += 1

    async def stop(self) -> None:
        self.running = False
        self.stops += 1


@contextlib.asynccontextmanager
async def admin(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(plain_url(database_url))
    try:
        yield connection
    finally:
        await connection.close()


async def backend_of(connection: asyncpg.Connection, name: str) -> int:
    pid: int = await connection.fetchval(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1", f"graam-worker {name}"
    )
    return pid


async def test_one_lease_holder_and_a_standby_that_takes_over_when_its_connection_dies(
    database_url: str,
) -> None:
    url = plain_url(database_url)
    first = WorkerLease(url, interval=INTERVAL, name="first")
    second = WorkerLease(url, interval=INTERVAL, name="second")
    await first.acquire()
    standby = asyncio.create_task(second.acquire())
    try:
        async with admin(database_url) as connection:
            await until(
                lambda: _has_session(connection, "second"), "standby's connection", timeout=10
            )
            # The standby has tried (its connection is there) and keeps trying: one holder.
            assert await lease_holder(connection) == "first"
            assert first.active and not second.active
            assert not standby.done()

            # The active worker dies: its connection closes, whatever it was doing.
            first.connection.terminate()
            async with asyncio.timeout(TAKEOVER_TIMEOUT):
                await standby
            assert second.active
            assert await lease_holder(connection) == "second"
    finally:
        standby.cancel()
        await asyncio.wait([standby])
        await first.release()
        await second.release()


async def _has_session(connection: asyncpg.Connection, name: str) -> bool:
    found = await connection.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
        f"graam-worker {name}",
    )
    return bool(found)


async def test_a_lost_lease_connection_stops_the_active_worker_and_the_standby_takes_over(
    database_url: str,
) -> None:
    url = plain_url(database_url)
    parts = {"first": Recorded(), "second": Recorded()}
    fenced: list[str] = []
    workers = {
        name: ActiveWorker(
            WorkerLease(url, interval=INTERVAL, name=name),
            [parts[name]],
            on_fenced=lambda name=name: fenced.append(name),  # type: ignore[misc]
        )
        for name in parts
    }
    await workers["first"].start()
    async with asyncio.timeout(10):
        await workers["first"].activated.wait()
    await workers["second"].start()
    try:
        async with admin(database_url) as connection:
            await until(lambda: _has_session(connection, "second"), "a standby", timeout=10)
            assert parts["first"].running and not parts["second"].running
            assert workers["first"].check()["active"] is True
            assert workers["second"].check()["active"] is False

            # The lease's connection is cut (an administrator, a proxy, a network failure).
            await connection.execute(
                "SELECT pg_terminate_backend($1)", await backend_of(connection, "first")
            )
            async with asyncio.timeout(TAKEOVER_TIMEOUT):
                await workers["first"].fenced.wait()
                await workers["second"].activated.wait()
            assert fenced == ["first"]
            assert not parts["first"].running and parts["first"].stops == 1
            assert parts["second"].running and parts["second"].starts == 1
            assert workers["first"].check() == {
                "ok": False,
                "active": False,
                "name": "first",
                "since": workers["first"].check()["since"],
            }
            assert await lease_holder(connection) == "second"
    finally:
        for worker in workers.values():
            await worker.stop()
    # A clean stop gives the lease back.
    async with admin(database_url) as connection:
        assert await lease_holder(connection) is None


async def is_active(client: httpx.AsyncClient) -> bool:
    body = (await client.get("/readyz")).json()
    return bool(body["status"] == "ready" and body["checks"]["worker"]["active"])


# ---- a worker process: health only while standing by, then what a restarted process does ------


async def test_a_worker_process_stands_by_then_takes_over_as_a_restarted_process_would(
    database_url: str, asterisk: Asterisk, tmp_path: Path
) -> None:
    other = WorkerLease(plain_url(database_url), interval=INTERVAL, name="other")
    await other.acquire()
    # A CDR Asterisk logged while no worker listened: the new active worker backfills it.
    csv_log = tmp_path / "graam-cdr.csv"
    missed = cdr_event(None, datetime.now(UTC) - timedelta(minutes=1))
    append_rows(csv_log, [missed])
    settings = Settings(
        role=ProcessRole.WORKER,
        worker_lease_interval=INTERVAL,
        agi_port=free_port(),
        cdr_dir=tmp_path / "cdr",
        queue_calls_dir=tmp_path / "queue-calls",
    )
    generated = tmp_path / "generated"  # the applier's files (Asterisk reads its own)
    endpoints = Endpoints(
        database_url=database_url,
        ami=asterisk.ami_config(),
        config_dir=generated,
        cdr_csv_log=csv_log,
    )
    process = start_app(endpoints, settings)
    try:
        running = await anext(process)
        client, runtime = running.client, running.runtime
        standby = await client.get("/readyz")
        assert standby.status_code == 200, standby.text
        assert standby.json()["status"] == "standby"
        assert standby.json()["checks"]["worker"]["active"] is False
        assert not runtime.ami.state.connected  # a standby acts on nothing
        assert not generated.exists()
        # A worker serves its health routes only.
        assert (await client.get("/api/v1/tenants")).status_code == 404
        assert (await client.get("/healthz")).status_code == 200

        await other.release()  # the active worker goes away

        await until(lambda: is_active(client), "the worker active", timeout=TAKEOVER_TIMEOUT + 20)
        assert runtime.ami.state.connected
        assert "graam_worker_active 1.0" in (await client.get("/metrics")).text
        # What a restarted process does: the CSV log backfilled, the applier's full pass.
        await wait_for_rows(database_url, 1, "uniqueid = $1 AND source = 'csv'", missed["UniqueID"])

        async def applied() -> bool:
            return (generated / "extensions.conf").exists()

        await until(applied, "the applier's full pass", timeout=30)
    finally:
        await process.aclose()
        await other.release()


async def test_graam_pbx_run_role_worker_stands_by_acts_and_exits_75_once_fenced(
    database_url: str, tmp_path: Path
) -> None:
    """The command as a supervisor runs it: no Asterisk answers here (AMI keeps retrying),
    which does not keep a worker from holding the lease."""
    host = "127.0.0.105"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAAM_")}
    env.update(
        PYTHONUNBUFFERED="1",
        GRAAM_DATABASE_URL=database_url,
        GRAAM_AMI_HOST=host,
        GRAAM_AMI_PORT=str(free_port()),
        GRAAM_AMI_SECRET=secrets.token_hex(16),
        GRAAM_SECRET_KEY=secrets.token_hex(32),
        GRAAM_DATA_DIR=str(tmp_path / "var"),
        GRAAM_ASTERISK_CONFIG_DIR=str(tmp_path / "generated"),
        GRAAM_ASTERISK_SOUNDS_DIR=str(tmp_path / "sounds"),
        GRAAM_ASTERISK_GROUP="",
        GRAAM_CDR_CSV_LOG=str(tmp_path / "graam-cdr.csv"),
        GRAAM_QUEUE_LOG=str(tmp_path / "queue_log"),
        GRAAM_VOICEMAIL_SPOOL_DIR=str(tmp_path / "voicemail"),
        GRAAM_API_HOST=host,
        GRAAM_API_PORT=str(free_port()),
        GRAAM_AGI_HOST=host,
        GRAAM_AGI_PORT=str(free_port()),
        GRAAM_DEMO_SEED="false",
        GRAAM_WORKER_LEASE_INTERVAL=str(INTERVAL),
    )
    other = WorkerLease(plain_url(database_url), interval=INTERVAL, name="other")
    await other.acquire()
    console = Console(await start_command("run", "--role", "worker", env=env))
    try:
        # Bounds for a loaded machine (a Python start, the schema checked), never measured.
        await console.wait_for_line("[worker]    standing by", timeout=180)
        base_url = f"http://{host}:{env['GRAAM_API_PORT']}"
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            assert (await http.get("/readyz")).json()["status"] == "standby"
            await other.release()
            await console.wait_for_line("[worker]    active", timeout=TAKEOVER_TIMEOUT + 20)
            assert (await http.get("/readyz")).json()["checks"]["worker"]["active"] is True
        async with admin(database_url) as connection:
            assert await lease_holder(connection) == f"{socket.gethostname()}:{console.process.pid}"
            await connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = $1",
                f"graam-worker {socket.gethostname()}:{console.process.pid}",
            )
        output = await finished_output(console.process, timeout=120)
        assert console.process.returncode == 75, console.text() + output
        assert "stopped: the worker lease was lost" in output
    finally:
        await console.terminate()
        await other.release()


# ---- changes committed in an API process reach the active worker ------------------------------


@pytest.fixture
async def api_process(
    database_url: str, asterisk: Asterisk, tmp_path: Path
) -> AsyncIterator[RunningApp]:
    settings = Settings(
        role=ProcessRole.API,
        agi_port=free_port(),
        cdr_dir=tmp_path / "cdr",
        queue_calls_dir=tmp_path / "queue-calls",
    )
    endpoints = Endpoints(database_url=database_url, ami=asterisk.ami_config())
    async for running in start_app(endpoints, settings):
        await running.runtime.ami.wait_connected(timeout=20)
        yield running


class RolledBack(Exception):
    """Raised inside a transaction to roll it back."""


class Heard:
    """What the worker's LISTEN hands to the applier and the agent worker."""

    def __init__(self) -> None:
        self.config: asyncio.Queue[set[int] | None] = asyncio.Queue()
        self.agents: asyncio.Queue[set[int] | None] = asyncio.Queue()

    def on_config(self, tenants: Iterable[int] | None) -> None:
        self.config.put_nowait(None if tenants is None else set(tenants))

    def on_agents(self, tenants: Iterable[int] | None) -> None:
        self.agents.put_nowait(None if tenants is None else set(tenants))


async def test_an_api_process_runs_no_writer_and_its_commits_reach_the_worker_listening(
    api_process: RunningApp, database_url: str
) -> None:
    runtime = api_process.runtime
    # Actions and live events only: nothing that writes events or applies configuration.
    assert runtime.applier is None and runtime.cdr is None and runtime.queue_calls is None
    assert runtime.dialer is None and runtime.billing is None and runtime.worker is None
    assert runtime.live is not None
    ready = (await api_process.client.get("/readyz")).json()
    assert ready["status"] == "ready" and "cdr" not in ready["checks"]

    heard = Heard()
    async with admin(database_url) as connection:
        await signals.listen(connection, on_config=heard.on_config, on_agents=heard.on_agents)
        client: httpx.AsyncClient = api_process.client
        world = await make_world(client, api_process.app.state.sessions)
        async with asyncio.timeout(10):
            while (tenants := await heard.config.get()) is None or world.tenant_id not in tenants:
                pass

        # A rolled-back change is never announced; a committed one once it commits.
        sessions = api_process.app.state.sessions
        with contextlib.suppress(RolledBack):
            async with sessions() as session, session.begin():
                session.info.setdefault(agent_sessions.PENDING_KEY, set()).add(world.tenant_id)
                raise RolledBack
        async with sessions() as session, session.begin():
            session.info.setdefault(agent_sessions.PENDING_KEY, set()).add(world.tenant_id + 1)
        async with asyncio.timeout(10):
            assert await heard.agents.get() == {world.tenant_id + 1}
        assert heard.agents.empty()


def test_payloads_name_tenants_or_ask_for_everything() -> None:
    assert signals.decode(signals.encode({3, 1, -1})) == {-1, 1, 3}
    assert signals.decode(signals.encode(range(5000))) is None  # too long to name: a full pass
    assert signals.decode("garbage") is None
