"""Agent logins under a storm: the API's login latency, and the licence limit holding.

python -m bench.login_storm [--quick] [--attempts N] [--processes P]

Prints one JSON line. The whole control plane runs as in production (uvicorn, the agent
worker making Asterisk's queue members follow, the config applier) against its own embedded
Postgres and Asterisk sandbox. Tenants with 5 to 15 licences and 20 agents each (10 try per
run); every attempt logs a different agent in, all fired at once from P separate processes (a shift
starting), each on its own connection. While they run, the live sessions of every tenant are
counted again and again (``over_limit``: the most sessions above a tenant's licences ever
seen; the contract says 0).

The floor, measured in the same run: as many ``SELECT 1`` at once through the app's own
connection pool (no HTTP, no authentication, no lock), i.e. the best any request that touches
the database could do at that concurrency. A second, paced run sends the same number of
logins spread evenly at ``paced_rate`` per second, below what the machine sustains: the
latency of one login when logins do not queue behind each other.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn
from sqlalchemy import text

from bench.readings import percentile, queue_members
from bench.stack import ami_config, asterisk_sandbox
from graam_pbx.agents.service import sip_ha1
from graam_pbx.app import Endpoints, Runtime, create_app
from graam_pbx.auth import service as auth_service
from graam_pbx.db import migrate
from graam_pbx.sandbox.asterisk import AsteriskSandbox
from graam_pbx.sandbox.ports import free_port
from graam_pbx.sandbox.postgres import EmbeddedPostgres, EmbeddedPostgresConfig
from graam_pbx.settings import Settings

AGENTS_PER_TENANT = 20
PASSWORD = "bench-supervisor-password"  # noqa: S105 - a throwaway account of a throwaway database


# ---- the attempts, from separate processes ------------------------------------------------------


def fire() -> None:
    """A child process: read its attempts on stdin, fire them, print each one's outcome."""

    async def run(job: dict[str, Any]) -> list[dict[str, Any]]:
        attempts = job["attempts"]
        rate = job.get("rate")
        limits = httpx.Limits(max_connections=len(attempts), max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=job["base_url"], limits=limits, timeout=300
        ) as client:
            started = time.perf_counter()

            async def attempt(index: int, token: str, user_id: int) -> dict[str, Any]:
                if rate:
                    await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
                sent = time.perf_counter()
                response = await client.post(
                    f"/api/v1/agents/{user_id}/session",
                    headers={"Authorization": f"Bearer {token}"},
                )
                return {
                    "status": response.status_code,
                    "ms": (time.perf_counter() - sent) * 1000,
                    "done": time.perf_counter() - started,
                }

            return await asyncio.gather(
                *(attempt(i, token, user) for i, (token, user) in enumerate(attempts))
            )

    job = json.loads(sys.stdin.read())
    print(json.dumps(asyncio.run(run(job))))


async def fire_from_processes(
    base_url: str, attempts: list[tuple[str, int]], processes: int, rate: float | None = None
) -> tuple[list[dict[str, Any]], float]:
    """Every attempt's outcome, and the wall time from the first sent to the last answered."""
    # Started first: they import httpx while waiting for their share on stdin.
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.login_storm",
            "--fire",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    shares = [attempts[i::processes] for i in range(processes)]
    outputs = await asyncio.gather(
        *(
            child.communicate(
                json.dumps(
                    {
                        "base_url": base_url,
                        "attempts": share,
                        "rate": rate / processes if rate else None,
                    }
                ).encode()
            )
            for child, share in zip(children, shares, strict=True)
        )
    )
    results: list[dict[str, Any]] = []
    for child, (out, _) in zip(children, outputs, strict=True):
        if child.returncode != 0:
            raise RuntimeError(f"an attempts process failed with {child.returncode}")
        results += json.loads(out)
    # The processes fire together: the storm lasts until the last answer any of them got.
    return results, max(result["done"] for result in results)


# ---- the world ----------------------------------------------------------------------------------


Made = list[tuple[int, str, list[int]]]  # (tenant, slug, its agents)


async def populate(url: str, tenants: int) -> tuple[dict[int, int], Made]:
    """Tenants (licences 5 to 15), a supervisor and 20 agents with devices and a queue each."""
    supervisor_hash = await auth_service.hash_password(PASSWORD)
    conn = await asyncpg.connect(url)
    licences: dict[int, int] = {}
    made: Made = []
    try:
        for index in range(tenants):
            slug = f"bench{index}"
            tenant_id = await conn.fetchval(
                "INSERT INTO tenants (slug, name, country, timezone, status, plan, licences, "
                "version) VALUES ($1, $1, 'FR', 'Europe/Paris', 'active', 'standard', $2, 1) "
                "RETURNING id",
                slug,
                5 + index % 11,
            )
            licences[tenant_id] = 5 + index % 11
            await conn.execute(
                "INSERT INTO users (tenant_id, email, display_name, role, password_hash, "
                "disabled, version) VALUES ($1, $2, 'Supervisor', 'supervisor', $3, false, 1)",
                tenant_id,
                f"supervisor@{slug}.example",
                supervisor_hash,
            )
            queue_id = await conn.fetchval(
                "INSERT INTO queues (tenant_id, name, strategy, ring_timeout, retry, "
                "wrapup_time, music_on_hold, announce_position, announce_holdtime, "
                "announce_frequency, weight, version) VALUES ($1, 'support', 'ringall', 15, 1, "
                "0, 'default', false, false, 0, 0, 1) RETURNING id",
                tenant_id,
            )
            agents = []
            for number in range(AGENTS_PER_TENANT):
                user_id = await conn.fetchval(
                    "INSERT INTO users (tenant_id, email, display_name, role, password_hash, "
                    "disabled, version) VALUES ($1, $2, $3, 'agent', 'x', false, 1) RETURNING id",
                    tenant_id,
                    f"a{number}@{slug}.example",
                    f"Agent {number}",
                )
                sip_username = f"{slug}-a{number}"
                await conn.execute(
                    "INSERT INTO agent_devices (tenant_id, user_id, sip_username, password_ha1, "
                    "extension, codecs, transport, max_contacts, version) VALUES ($1, $2, $3, "
                    "$4, $5, '{ulaw,alaw}', 'udp', 1, 1)",
                    tenant_id,
                    user_id,
                    sip_username,
                    sip_ha1(sip_username, "unused"),
                    str(200 + number),
                )
                await conn.execute(
                    "INSERT INTO queue_members (tenant_id, queue_id, user_id, penalty) "
                    "VALUES ($1, $2, $3, 0)",
                    tenant_id,
                    queue_id,
                    user_id,
                )
                agents.append(user_id)
            made.append((tenant_id, slug, agents))
    finally:
        await conn.close()
    return licences, made


class _Server(uvicorn.Server):
    """uvicorn without signal handlers of its own."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    port = free_port()
    server = _Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_level="warning",
            access_log=False,
            backlog=4096,
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def sample_over_limit(conn: asyncpg.Connection, stop: asyncio.Event) -> tuple[int, int]:
    """(most sessions above a tenant's licences ever seen, samples taken) until ``stop``."""
    worst, samples = 0, 0
    while not stop.is_set():
        over = await conn.fetchval(
            "SELECT coalesce(max(n - licences), 0) FROM (SELECT t.licences, count(s.id) AS n "
            "FROM tenants t LEFT JOIN agent_sessions s ON s.tenant_id = t.id AND "
            "s.ended_at IS NULL GROUP BY t.id) AS used"
        )
        worst = max(worst, over)
        samples += 1
        await asyncio.sleep(0.02)
    return worst, samples


async def select_one_floor(runtime: Runtime, concurrency: int) -> list[float]:
    """``concurrency`` bare ``SELECT 1`` at once through the app's own pool, each timed."""

    async def one() -> float:
        started = time.perf_counter()
        async with runtime.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return (time.perf_counter() - started) * 1000

    return list(await asyncio.gather(*(one() for _ in range(concurrency))))


async def main(attempts: int, processes: int, paced_rate: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="graam-bench-"))
    pg = EmbeddedPostgres(EmbeddedPostgresConfig(work / "pg", port=free_port()))
    sandbox: AsteriskSandbox | None = None
    await pg.start()
    try:
        admin = await asyncpg.connect(pg.url())
        await admin.execute("CREATE DATABASE bench")
        await admin.close()
        url = pg.url("bench")
        await migrate(url)
        tenants = -(-attempts // AGENTS_PER_TENANT) * 2  # half the agents log in per run
        licences, made = await populate(url, tenants)
        sandbox = asterisk_sandbox(work / "asterisk")
        info = await sandbox.start()
        ami = ami_config(info)
        settings = Settings(agi_port=free_port(), data_dir=work)
        endpoints = Endpoints(
            database_url=url, ami=ami, config_dir=info.config_dir, sounds_dir=info.sounds_dir
        )
        app = create_app(settings, endpoints)
        async with app.router.lifespan_context(app), serving(app) as base_url:
            runtime: Runtime = app.state.runtime
            await runtime.ami.wait_connected(30)
            assert runtime.applier is not None and runtime.agents is not None
            await runtime.applier.settled()
            async with httpx.AsyncClient(base_url=base_url) as client:
                tokens = {}
                for tenant_id, slug, _ in made:
                    response = await client.post(
                        "/api/v1/auth/token",
                        json={
                            "email": f"supervisor@{slug}.example",
                            "password": PASSWORD,
                            "tenant": slug,
                        },
                    )
                    tokens[tenant_id] = response.json()["access_token"]
            # Each run logs in half of every tenant's agents: first halves, then second halves.
            half = AGENTS_PER_TENANT // 2
            storm = [(tokens[t], a) for t, _, agents in made for a in agents[:half]][:attempts]
            paced = [(tokens[t], a) for t, _, agents in made for a in agents[half:]][:attempts]

            sampler = await asyncpg.connect(url)
            stop = asyncio.Event()
            sampling = asyncio.create_task(sample_over_limit(sampler, stop))
            results, elapsed = await fire_from_processes(base_url, storm, processes)
            floor = await select_one_floor(runtime, len(storm))
            await runtime.agents.settled()
            members = await queue_members(runtime)
            async with runtime.engine.connect() as connection:
                sessions = await connection.scalar(
                    text("SELECT count(*) FROM agent_sessions WHERE ended_at IS NULL")
                )
                await connection.execute(
                    text("UPDATE agent_sessions SET ended_at = now() WHERE ended_at IS NULL")
                )
                await connection.commit()
            runtime.agents.request(None)
            await runtime.agents.settled()
            paced_results, _ = await fire_from_processes(base_url, paced, processes, paced_rate)
            stop.set()
            over_limit, samples = await sampling
            await sampler.close()
        latencies = [r["ms"] for r in results]
        paced_latencies = [r["ms"] for r in paced_results]
        statuses = [r["status"] for r in results]
        return {
            "bench": "login_storm",
            "attempts": len(results),
            "concurrency": len(results),
            "processes": processes,
            "tenants": len(made),
            "licences": sum(licences.values()),
            "logins_per_s": round(len(results) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies), 1),
            "p99_ms": round(percentile(latencies, 0.99), 1),
            "max_ms": round(max(latencies), 1),
            "floor_p50_ms": round(statistics.median(floor), 1),
            "floor_p99_ms": round(percentile(floor, 0.99), 1),
            "created": statuses.count(201),
            "refused": statuses.count(409),
            "errors": len(statuses) - statuses.count(201) - statuses.count(409),
            "over_limit": over_limit,
            "samples": samples,
            "queue_members_match": members == sessions,
            "paced_rate": paced_rate,
            "paced_p50_ms": round(statistics.median(paced_latencies), 1),
            "paced_p99_ms": round(percentile(paced_latencies, 0.99), 1),
        }
    finally:
        if sandbox is not None:
            await sandbox.stop()
        await pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200 attempts")
    parser.add_argument("--attempts", type=int, default=500)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--paced-rate", type=float, default=50.0)
    parser.add_argument("--fire", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fire:
        fire()
    else:
        count = 200 if args.quick else args.attempts
        print(json.dumps(asyncio.run(main(count, args.processes, args.paced_rate))))
