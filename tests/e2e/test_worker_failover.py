"""The active worker killed (``kill -9``) while calls are in flight: the standby takes the lease
over and every CDR is in Postgres exactly once.

Two worker processes and an API process (tests/e2e/control_plane.py, as ``graam-pbx run
--role`` serves them) share a database of this test's own and the session's Asterisk; the
session's app only provisions the tenant (a number that answers and plays three seconds) and
keeps recording CDRs into its own database, the reference this test compares with. A carrier
(sipp) places 50 calls; once some are recorded and others still up, the active worker is
killed. The standby takes over (its /readyz says it is the active worker; the lease holder in
Postgres says so too); what the dead one had not written arrives live or from Asterisk's CSV
log, whose keys make every repeat harmless.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.cdr.backfill import LOG_NAME
from graam_pbx.cluster.lease import lease_holder
from graam_pbx.db import migrate, plain_url
from graam_pbx.sandbox.postgres import EmbeddedPostgres
from graam_pbx.settings import ProcessRole
from tests.conftest import Asterisk, RunningApp, create_database, drop_database
from tests.e2e.announcements import announced_number
from tests.e2e.control_plane import ControlPlane, ControlPlaneConfig, free_tcp_port
from tests.e2e.sipp import SippPool
from tests.e2e.test_calls import CALLER
from tests.waiting import until

Sessions = async_sessionmaker[AsyncSession]

CARRIER_IP = "127.0.0.101"  # reserved for this test: no other test's trunk uses it
WORKER_HOSTS = ("127.0.0.102", "127.0.0.103")
API_HOST = "127.0.0.104"
CALLS = 50
RATE = 5  # calls per second: with three seconds each, about fifteen up at once
ANNOUNCEMENT_SECONDS = 3.0
LEASE_INTERVAL = 1.0
# The bound for a takeover (10 s), plus a margin for a loaded machine: a wait, never
# a measured duration.
TAKEOVER_TIMEOUT = 10.0 + 10.0
KILLED_AFTER = 5  # CDRs the first worker has written when it is killed


@pytest.fixture
async def own_database(postgres: EmbeddedPostgres) -> AsyncIterator[str]:
    name = f"t_worker_failover_{uuid.uuid4().hex[:6]}"
    await create_database(postgres.url(), name)
    url = postgres.url(name)
    await migrate(url)
    yield url
    await drop_database(postgres.url(), name)


@pytest.fixture
async def announced(
    pbx: RunningApp, client: httpx.AsyncClient, sessions: Sessions, applier: ConfigApplier
) -> tuple[int, str]:
    """A tenant's number, called from CARRIER_IP, that answers and plays three seconds."""
    return await announced_number(
        client,
        sessions,
        applier,
        prompt_name="failover",
        seconds=ANNOUNCEMENT_SECONDS,
        carrier_ip=CARRIER_IP,
    )


def process(
    role: ProcessRole, host: str, database_url: str, asterisk: Asterisk, workdir: Path
) -> ControlPlane:
    return ControlPlane(
        workdir,
        ControlPlaneConfig(
            database_url=database_url,
            ami=dataclasses.asdict(asterisk.ami_config()),
            state_dir=str(workdir / "state"),
            role=role.value,
            api_host=host,
            api_port=free_tcp_port(host),
            worker_lease_interval=LEASE_INTERVAL,
            cdr_csv_log=str(asterisk.sandbox.log_dir / LOG_NAME),
            queue_log=str(asterisk.sandbox.log_dir / "queue_log"),
        ),
    )


async def readiness(plane: ControlPlane) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=plane.url, timeout=5) as http:
        body: dict[str, Any] = (await http.get("/readyz")).json()
        return body


async def is_active_worker(plane: ControlPlane) -> bool:
    body = await readiness(plane)
    return body["status"] == "ready" and body["checks"]["worker"]["active"] is True


async def cdr_keys(database_url: str, tenant_id: int) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(plain_url(database_url))
    try:
        return list(
            await connection.fetch(
                "SELECT system_name, uniqueid, sequence, linkedid, source FROM cdrs"
                " WHERE tenant_id = $1",
                tenant_id,
            )
        )
    finally:
        await connection.close()


async def holder(database_url: str) -> str | None:
    connection = await asyncpg.connect(plain_url(database_url))
    try:
        return await lease_holder(connection)
    finally:
        await connection.close()


async def test_the_active_worker_killed_during_fifty_calls_loses_and_doubles_no_cdr(
    pbx: RunningApp,
    asterisk: Asterisk,
    sipp: SippPool,
    announced: tuple[int, str],
    own_database: str,
    tmp_path: Path,
) -> None:
    tenant_id, did = announced
    first, second = (
        process(ProcessRole.WORKER, host, own_database, asterisk, tmp_path / f"worker-{n}")
        for n, host in enumerate(WORKER_HOSTS)
    )
    api = process(ProcessRole.API, API_HOST, own_database, asterisk, tmp_path / "api")
    try:
        await first.start()
        await until(lambda: is_active_worker(first), "first worker active", timeout=30)
        await second.start()
        assert (await readiness(second))["status"] == "standby"
        await api.start()
        await until(lambda: _status_is(api, "ready"), "API process ready (its own AMI)", timeout=30)
        first_name = await holder(own_database)
        assert first_name is not None and first_name.endswith(f":{first.pid}")

        calls = await sipp.uac(
            "carrier_call_answered.xml",
            ip=CARRIER_IP,
            service=did,
            keys={"caller": CALLER},
            calls=CALLS,
            rate=RATE,
            timeout=120,
        ).start()

        # Some calls recorded by the first worker, others still up: it dies now.
        async def some_recorded() -> bool:
            return len(await cdr_keys(own_database, tenant_id)) >= KILLED_AFTER

        await until(some_recorded, f"{KILLED_AFTER} CDRs from the first worker", timeout=60)
        assert calls.running, "every call ended before the kill"
        await first.kill()

        await until(
            lambda: is_active_worker(second), "the standby active", timeout=TAKEOVER_TIMEOUT
        )
        second_name = await holder(own_database)
        assert second_name is not None and second_name.endswith(f":{second.pid}")

        result = await calls.wait()
        assert result.ok, result.describe()
        assert result.count("SuccessfulCall") == CALLS, result.stats

        # The reference: the session's app recorded the same calls, never interrupted.
        reference = await _wait_for_calls(pbx_database(pbx), tenant_id)
        recorded = await _wait_for_calls(own_database, tenant_id, count=len(reference))
        keys = [(r["system_name"], r["uniqueid"], r["sequence"]) for r in recorded]
        assert len(set(keys)) == len(keys), "a CDR recorded twice"
        assert set(keys) == {(r["system_name"], r["uniqueid"], r["sequence"]) for r in reference}
        assert len({r["linkedid"] for r in recorded}) == CALLS  # one call each, all of them
        assert {r["source"] for r in recorded} <= {"ami", "csv"}
        assert (await readiness(api))["status"] == "ready"
    finally:
        for plane in (first, second, api):
            await plane.stop()


def pbx_database(pbx: RunningApp) -> str:
    return pbx.runtime.engine.url.render_as_string(hide_password=False)


async def _status_is(plane: ControlPlane, status: str) -> bool:
    return bool((await readiness(plane))["status"] == status)


async def _wait_for_calls(
    database_url: str, tenant_id: int, count: int | None = None
) -> list[asyncpg.Record]:
    """The tenant's CDRs once they cover all the calls (and ``count`` rows, when given)."""
    rows: list[asyncpg.Record] = []

    async def complete() -> bool:
        nonlocal rows
        rows = await cdr_keys(database_url, tenant_id)
        calls = len({row["linkedid"] for row in rows})
        return calls >= CALLS and (count is None or len(rows) >= count)

    await until(complete, f"CDRs of {CALLS} calls", timeout=60)
    return rows
