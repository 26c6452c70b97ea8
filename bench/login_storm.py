"""Agent logins under a storm, against an authenticated no-op of the same API, and the
licence limit holding.

python -m bench.login_storm [--quick] [--attempts N] [--api-processes P] [--repeats R]
                           [--set NAME=VALUE ...]

Prints one JSON line. The control plane runs as in production: one worker process (AMI, the
config applier, the agent worker making Asterisk's queue members follow the logins it hears
of through Postgres) and API processes (``--role api``), against an embedded Postgres and an
Asterisk sandbox of the bench's own. Tenants have 5 to 15 licences each, and each storm
logs 10 different agents of every tenant in: ``attempts`` logins fired at once (a shift
starting), from two client processes, each request on a connection of its own. The clients
write each request's bytes straight on its socket (bench/raw_http.py: about 0.2 ms of CPU a
request, where a general HTTP client spent 1.3 ms of the two cores the stack shares), and
fire together: each reads its share, says it is ready, and starts when the bench says go, so
a storm is all its requests at once and lasts from the first request any client sent to the
last answer any got (the machine's monotonic clock, shared by every process). As at a
shift's start, every agent's desk phone is registered beforehand, spread over a qualify period
(sipp, from 127.0.0.1, answering Asterisk's qualify OPTIONS throughout, a steady load under
every storm alike): Asterisk then knows each phone's state
when the agent worker adds it to its queue, where an unregistered phone costs a lookup of
its endpoint in Postgres for each queue member added. Each process's pooled connections run
the login once before the runs, as the no-op storm before each run does the no-op: a
connection's first use of a statement prepares it and looks up the types it returns, once in
the connection's life.

The reference, measured in the same run at the same concurrency against the same processes:
as many ``GET /api/v1/auth/me`` at once with the same tokens (an authenticated request that
reads the caller's account in one transaction and does nothing else). The contract:
``ratio_to_noop`` (logins per second over no-ops per second) at least 0.5, and
``over_limit`` 0 (the most sessions above a tenant's licences ever seen, counted again and
again while the storms run).

Each run is made with 1 to P API processes, the requests spread over them in turn (as any
HTTP balancer would), ``--repeats`` times (5 by default; each repeat with agents of its
own): each figure is the median of the repeats (``ratio_to_noop_runs``: every repeat's
ratio; on two shared cores one repeat's ratio spreads widely, 0.39 to 0.68 over 20 repeats
of the same code, and so does the CPU one request costs: the no-op's in the API process
moved between 1.35 and 2.4 ms from one storm to the next of the same run). The figures of 1
process are the headline, those of more carry a ``_<n>_api`` suffix, with their scaling over
1 process. On a machine with few cores the processes share them with Postgres, the worker
and the clients: scaling says what the API's own share of the CPU was worth, not what more
machines would give.

The no-op storm runs just before and just after the login storm and counts as one: a machine
whose load drifts meanwhile weighs on both alike. The one after waits until the logins'
aftermath is over (the worker has added their queue members on Asterisk): that work, done
after the logins were answered, would otherwise slow the no-op and flatter the ratio. The
tenants' logins come interleaved (as a shift starting in many call centres at once brings
them). ``api_cpu_ms_per_login`` and
``api_cpu_ms_per_noop``: the CPU time the API processes spent per request (from /proc), a
figure other work on the machine barely moves, unlike rates. Beside them, what the rest of
the bench's own stack spent per request during the same storm: ``postgres_cpu_ms_per_*``
(the postmaster and every backend, those that ended included) and ``worker_cpu_ms_per_*``
(the active worker, which makes Asterisk's queue members follow the logins as they commit)
and ``asterisk_cpu_ms_per_*`` (the queue members added, their devices' states, and the
realtime lookups those make in Postgres): with the API's, the CPU a login costs the machine,
which the rate on a machine of few cores follows. ``idle_share_login`` and
``idle_share_noop``: the share of the machine's CPU time (every core, from /proc/stat) left
idle during the storms; near 0, a storm's rate is what its CPU cost allows.

One login's round trips to Postgres (and one no-op's) are counted beforehand through an API
app in this process (bench/login_round_trips.py): ``round_trips_per_login``,
``round_trips_per_noop``, ``statements_per_login``, ``transactions_per_login``, and
``pre_ping_round_trips``, what the pool's checkout ping added to the login: 0, as for any
request under a storm, since graam_pbx.db's pool pings a connection only when it sat idle
for ``IDLE_BEFORE_PING`` (5 s). Every process runs that engine, as production does.

The worker and API processes run with the settings' defaults: the bench passes them no
``GRAAM_`` variable of its own environment, so a setting exported in the shell changes
nothing. ``--set NAME=VALUE`` (a field of graam_pbx.settings.Settings, repeatable) is how a
trial changes one, for every process; ``settings`` in the line names what was set, and
``agent_session_concurrency`` and ``db_pool_size`` are always reported, as the processes ran.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import raw_http
from bench.call_load import agents_phones
from bench.cpu import cpu_seconds, machine_jiffies, process_cpu_seconds, stat_fields
from bench.login_processes import ProcessConfig, RoleProcess, serve_process
from bench.login_round_trips import Tally, counting, instrumented
from bench.readings import percentile
from bench.stack import ami_config, asterisk_sandbox
from graam_pbx.agents.service import sip_ha1
from graam_pbx.ami import AmiConfig, AmiError, AmiSupervisor, EventBus
from graam_pbx.app import Endpoints, create_app
from graam_pbx.auth import service as auth_service
from graam_pbx.cluster import signals
from graam_pbx.db import migrate
from graam_pbx.sandbox.ports import free_port
from graam_pbx.sandbox.postgres import EmbeddedPostgres, EmbeddedPostgresConfig
from graam_pbx.settings import ProcessRole, Settings

AGENTS_PER_RUN = 10  # of every tenant, logged in by each run
PASSWORD = "bench-supervisor-password"  # noqa: S105 - a throwaway account of a throwaway database
# The bench's own loopback addresses: API processes on the first ones, the worker on the last.
API_HOSTS = ("127.0.0.111", "127.0.0.112", "127.0.0.113", "127.0.0.114")
WORKER_HOST = "127.0.0.115"
WARMED_BY_ROUND_TRIPS = 3  # the spare tenant's agents logged in by tokens_and_round_trips
DEVICE_PASSWORD = "bench-phone-password"  # noqa: S105 - a throwaway phone of a throwaway database
# Phones registered before the storms, spread over one period of Asterisk's qualify
# (ps_aors.qualify_frequency, 60 s): its OPTIONS then reach the phones evenly, a steady load
# under every storm alike rather than a burst a minute under some; never so many at once
# that Asterisk answers a resent REGISTER late.
QUALIFY_PERIOD_S = 60.0
REGISTERING_AT_ONCE = 40
SETTLE_TIMEOUT = 120.0  # queue members following the logins, after a storm


# ---- the requests, from separate client processes -----------------------------------------------


def fire() -> None:
    """A client process: read its requests (one JSON line on stdin), say ``ready``, and on
    ``go`` fire them all at once; print each one's outcome. Request ``i`` goes to API process
    ``i mod n``. Times are the machine's monotonic clock, which every process shares."""

    async def run(job: dict[str, Any]) -> list[dict[str, Any]]:
        addresses: list[tuple[str, int]] = [(host, port) for host, port in job["addresses"]]
        requests: list[tuple[int, str, str, str]] = job["requests"]

        async def one(index: int, method: str, path: str, token: str) -> dict[str, Any]:
            sent = time.monotonic()
            status, _ = await raw_http.request(
                *addresses[index % len(addresses)], method, path, token
            )
            done = time.monotonic()
            return {"status": status, "ms": (done - sent) * 1000, "sent": sent, "done": done}

        return await asyncio.gather(*(one(*request) for request in requests))

    job = json.loads(sys.stdin.readline())
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("the bench stopped before the storm")
    cpu = time.process_time()  # from here: the requests' own work, not the imports
    results = asyncio.run(run(job))
    print(json.dumps({"results": results, "cpu_s": time.process_time() - cpu}))


@dataclass(frozen=True)
class Storm:
    """A storm's outcome: every request's status and latency, its rate, and the CPU time
    the API processes spent on each request."""

    statuses: list[int]
    latencies: list[float]
    per_s: float
    cpu_ms: float = 0.0
    stack_cpu_ms: dict[str, float] = dataclasses.field(default_factory=dict)  # by process
    client_cpu_ms: float = 0.0  # the client processes' own CPU per request
    idle: float = 0.0  # the share of the machine's CPU time left idle during the storm

    def __add__(self, other: Storm) -> Storm:
        """Two storms as one: their requests together, over their time together."""
        count = len(self.statuses) + len(other.statuses)
        my_time = len(self.statuses) / self.per_s
        their_time = len(other.statuses) / other.per_s
        elapsed = my_time + their_time

        def mean(mine: float, theirs: float) -> float:
            return (mine * len(self.statuses) + theirs * len(other.statuses)) / count

        return Storm(
            self.statuses + other.statuses,
            self.latencies + other.latencies,
            count / elapsed,
            mean(self.cpu_ms, other.cpu_ms),
            {
                name: mean(value, other.stack_cpu_ms.get(name, 0.0))
                for name, value in self.stack_cpu_ms.items()
            },
            mean(self.client_cpu_ms, other.client_cpu_ms),
            # The idle share over their time together, not per request.
            (self.idle * my_time + other.idle * their_time) / elapsed,
        )

    @property
    def p50_ms(self) -> float:
        return round(statistics.median(self.latencies), 1)

    @property
    def p99_ms(self) -> float:
        return round(percentile(self.latencies, 0.99), 1)


def postgres_cpu_seconds(pg: EmbeddedPostgres) -> float:
    """CPU time of the embedded Postgres: its postmaster, every live backend, and the
    backends that ended (counted in the postmaster's children's time)."""
    postmaster = int((pg.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    total = process_cpu_seconds(postmaster, reaped=True)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat_fields(stat.parent.name)
            if int(fields[1]) == postmaster:  # ppid
                total += cpu_seconds(fields)
    return total


CpuReaders = dict[str, Callable[[], float]]


async def storm(
    apis: list[RoleProcess],
    requests: list[tuple[str, str, str]],
    processes: int,
    stack: CpuReaders | None = None,
) -> Storm:
    """Fire every request at once from ``processes`` client processes at the API processes;
    ``stack``: other processes whose CPU time per request is read over the same storm."""
    stack = stack or {}
    addresses = [(api.config.api_host, api.config.api_port) for api in apis]
    # Started first: they import the bench's modules while waiting for their share on stdin.
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
    numbered = [(index, *request) for index, request in enumerate(requests)]
    shares = [numbered[i::processes] for i in range(processes)]
    for child, share in zip(children, shares, strict=True):
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps({"addresses": addresses, "requests": share}).encode() + b"\n")
        await child.stdin.drain()
    # Every client ready (its modules imported, its share read) before any fires: started
    # apart, one client's requests would run alone for a while and the rate would be wrong.
    for child in children:
        assert child.stdout is not None
        if (await child.stdout.readline()).strip() != b"ready":
            raise RuntimeError("a client process ended before the storm")
    cpu_before = sum(api.cpu_seconds() for api in apis)
    machine_before = machine_jiffies()
    stack_before = {name: read() for name, read in stack.items()}
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.close()
    outputs = await asyncio.gather(*(child.communicate() for child in children))
    results: list[dict[str, Any]] = []
    client_cpu = 0.0
    for child, (out, _) in zip(children, outputs, strict=True):
        if child.returncode != 0:
            raise RuntimeError(f"a client process failed with {child.returncode}")
        answer = json.loads(out)
        results += answer["results"]
        client_cpu += answer["cpu_s"]
    cpu = sum(api.cpu_seconds() for api in apis) - cpu_before
    idle_after, total_after = machine_jiffies()
    idle = (idle_after - machine_before[0]) / max(1, total_after - machine_before[1])
    stack_ms = {
        name: (read() - stack_before[name]) * 1000 / len(results) for name, read in stack.items()
    }
    # The storm lasts from the first request any client sent to the last answer any got.
    elapsed = max(r["done"] for r in results) - min(r["sent"] for r in results)
    return Storm(
        [r["status"] for r in results],
        [r["ms"] for r in results],
        len(results) / elapsed,
        cpu * 1000 / len(results),
        stack_ms,
        client_cpu * 1000 / len(results),
        idle,
    )


# ---- the world ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tenant:
    tenant_id: int
    slug: str
    licences: int
    agents: list[int]

    @property
    def devices(self) -> list[str]:
        """The SIP usernames of the agents' devices, in the agents' order."""
        return [device_name(self.slug, number) for number in range(len(self.agents))]


def device_name(slug: str, number: int) -> str:
    return f"{slug}-a{number}"


async def populate(url: str, tenants: int, agents_each: int) -> list[Tenant]:
    """Tenants (licences 5 to 15), a supervisor, and agents with a device and a queue each."""
    supervisor_hash = await auth_service.hash_password(PASSWORD)
    conn = await asyncpg.connect(url)
    made: list[Tenant] = []
    try:
        for index in range(tenants):
            slug = f"bench{index}"
            licences = 5 + index % 11
            tenant_id = await conn.fetchval(
                "INSERT INTO tenants (slug, name, country, timezone, status, plan, licences, "
                "version) VALUES ($1, $1, 'FR', 'Europe/Paris', 'active', 'standard', $2, 1) "
                "RETURNING id",
                slug,
                licences,
            )
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
            for number in range(agents_each):
                user_id = await conn.fetchval(
                    "INSERT INTO users (tenant_id, email, display_name, role, password_hash, "
                    "disabled, version) VALUES ($1, $2, $3, 'agent', 'x', false, 1) RETURNING id",
                    tenant_id,
                    f"a{number}@{slug}.example",
                    f"Agent {number}",
                )
                sip_username = device_name(slug, number)
                await conn.execute(
                    "INSERT INTO agent_devices (tenant_id, user_id, sip_username, password_ha1, "
                    "extension, codecs, transport, max_contacts, version) VALUES ($1, $2, $3, "
                    "$4, $5, '{ulaw,alaw}', 'udp', 1, 1)",
                    tenant_id,
                    user_id,
                    sip_username,
                    sip_ha1(sip_username, DEVICE_PASSWORD),
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
            made.append(Tenant(tenant_id, slug, licences, agents))
    finally:
        await conn.close()
    return made


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def tokens_and_round_trips(
    url: str,
    ami: AmiConfig,
    secret_key: str,
    work: Path,
    tenants: list[Tenant],
    spare: Tenant,
) -> tuple[dict[int, str], dict[str, Any]]:
    """Every tenant's supervisor token, and one login's and one no-op's round trips, through
    an API app in this process (role api, the same code the API processes run)."""
    settings = Settings(
        role=ProcessRole.API,
        secret_key=secret_key,
        agi_port=free_port(),
        data_dir=work,
        demo_seed=False,
        log_level="WARNING",
    )
    with instrumented():
        app = create_app(settings, Endpoints(database_url=url, ami=ami))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench.test"
            ) as client,
        ):
            tokens = {}
            for tenant in [*tenants, spare]:
                response = await client.post(
                    "/api/v1/auth/token",
                    json={
                        "email": f"supervisor@{tenant.slug}.example",
                        "password": PASSWORD,
                        "tenant": tenant.slug,
                    },
                )
                response.raise_for_status()
                tokens[tenant.tenant_id] = response.json()["access_token"]
            headers = bearer(tokens[spare.tenant_id])
            # Warm: the connection's statements prepared (setup, counted apart anyway).
            for agent in spare.agents[:2]:
                await client.get("/api/v1/auth/me", headers=headers)
                await client.post(f"/api/v1/agents/{agent}/session", headers=headers)
            with counting() as noop:
                (await client.get("/api/v1/auth/me", headers=headers)).raise_for_status()
            with counting() as login:
                answer = await client.post(
                    f"/api/v1/agents/{spare.agents[2]}/session", headers=headers
                )
                answer.raise_for_status()
    return tokens, round_trip_figures(login, noop)


def round_trip_figures(login: Tally, noop: Tally) -> dict[str, Any]:
    return {
        "round_trips_per_login": login.round_trips,
        "round_trips_per_noop": noop.round_trips,
        "statements_per_login": login.statements,
        "transactions_per_login": login.transactions,
        "pre_ping_round_trips": login.pings,
    }


# ---- readings -----------------------------------------------------------------------------------


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


async def read_once(url: str, query: str) -> list[asyncpg.Record]:
    """``query``'s rows, read on a connection of its own (the sampler's is busy)."""
    conn = await asyncpg.connect(url)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(query)
    finally:
        await conn.close()
    return rows


async def live_sessions(url: str) -> int:
    """The sessions not ended."""
    rows = await read_once(url, "SELECT count(*) FROM agent_sessions WHERE ended_at IS NULL")
    live: int = rows[0][0]
    return live


async def registered_phones(url: str) -> set[str]:
    """The phones Asterisk holds a contact of (its realtime contacts, in Postgres)."""
    rows = await read_once(url, "SELECT DISTINCT endpoint FROM ps_contacts")
    return {row["endpoint"] for row in rows}


async def queue_members(ami: AmiSupervisor) -> int:
    events = await ami.action_list("QueueStatus", {})
    return sum(1 for event in events if event.name == "QueueMember")


async def endpoints_known(ami: AmiSupervisor, name: str) -> int:
    """1 when Asterisk finds the phone ``name`` (in Postgres, through its realtime), else 0."""
    try:
        await ami.action_list("PJSIPShowEndpoint", {"Endpoint": name})
    except AmiError:
        return 0
    return 1


async def queues_known(ami: AmiSupervisor) -> int:
    events = await ami.action_list("QueueStatus", {})
    return sum(1 for event in events if event.name == "QueueParams")


async def eventually(
    reading: Callable[[], Awaitable[int]],
    expected: int,
    timeout: float,  # noqa: ASYNC109
) -> bool:
    """Whether ``await reading()`` comes to ``expected`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while await reading() != expected:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


# ---- one run: N API processes -------------------------------------------------------------------


async def one_run(
    apis: list[RoleProcess],
    tenants: list[Tenant],
    tokens: dict[int, str],
    run: int,
    attempts: int,
    client_processes: int,
    url: str,
    ami: AmiSupervisor,
    stack: CpuReaders,
) -> dict[str, Any]:
    """The no-op storm, the login storm (agents of slice ``run``) and the no-op storm again,
    with the over-limit sampler running; then every session ended for the next run."""
    # The tenants' agents interleaved, as a shift starting in many call centres at once
    # brings them (one tenant's logins back to back would queue on its lock, one at a time).
    logins = [
        ("POST", f"/api/v1/agents/{tenant.agents[run * AGENTS_PER_RUN + k]}/session", token)
        for k in range(AGENTS_PER_RUN)
        for tenant in tenants
        for token in (tokens[tenant.tenant_id],)
    ][:attempts]
    noops = [("GET", "/api/v1/auth/me", token) for _, _, token in logins]
    await storm(apis, noops, client_processes)  # warm: every process's pool filled
    sampler = await asyncpg.connect(url)
    stop = asyncio.Event()
    sampling = asyncio.create_task(sample_over_limit(sampler, stop))
    try:
        # The no-op before and after the logins: a machine whose load drifts meanwhile
        # (other work on it) weighs on both alike.
        before = await storm(apis, noops, client_processes, stack)
        login = await storm(apis, logins, client_processes, stack)
        # The logins' aftermath (the worker adding their queue members, Asterisk's events)
        # ends before the no-op runs again: it would slow the no-op and flatter the ratio.
        # Every login was committed before its answer: the count no longer moves.
        live = await live_sessions(url)
        matched = await eventually(lambda: queue_members(ami), live, SETTLE_TIMEOUT)
        noop = before + await storm(apis, noops, client_processes, stack)
    finally:
        stop.set()
        over_limit, samples = await sampling
    try:
        await sampler.execute(
            "UPDATE agent_sessions SET ended_at = now(), end_reason = 'logout' "
            "WHERE ended_at IS NULL"
        )
        # The active worker hears it as it hears an API process's logouts.
        await sampler.execute(
            "SELECT pg_notify($1, $2)", signals.AGENTS_CHANNEL, signals.EVERYTHING
        )
        emptied = await eventually(lambda: queue_members(ami), 0, SETTLE_TIMEOUT)
    finally:
        await sampler.close()
    return {
        "noop_per_s": round(noop.per_s, 1),
        "logins_per_s": round(login.per_s, 1),
        "ratio_to_noop": round(login.per_s / noop.per_s, 2),
        "p50_ms": login.p50_ms,
        "p99_ms": login.p99_ms,
        "noop_p50_ms": noop.p50_ms,
        "noop_p99_ms": noop.p99_ms,
        "api_cpu_ms_per_login": round(login.cpu_ms, 2),
        "api_cpu_ms_per_noop": round(noop.cpu_ms, 2),
        **{
            f"{name}_cpu_ms_per_{kind}": round(measured.stack_cpu_ms[name], 2)
            for name in stack
            for kind, measured in (("login", login), ("noop", noop))
        },
        "client_cpu_ms_per_login": round(login.client_cpu_ms, 2),
        "client_cpu_ms_per_noop": round(noop.client_cpu_ms, 2),
        "idle_share_login": round(login.idle, 2),
        "idle_share_noop": round(noop.idle, 2),
        "ratio_if_api_login_cost_noop": round(ratio_bound(login, noop), 2),
        "created": login.statuses.count(201),
        "refused": login.statuses.count(409),
        "errors": sum(1 for s in login.statuses if s not in (201, 409))
        + sum(1 for s in noop.statuses if s != 200),
        "over_limit": over_limit,
        "samples": samples,
        "queue_members_match": matched and emptied,
    }


def ratio_bound(login: Storm, noop: Storm) -> float:
    """The ratio to the no-op that logins would reach on this machine if a login cost the
    API processes no more CPU than the no-op does: the CPU of a request, whole (API,
    Postgres, worker, Asterisk, clients), decides the rate when every process shares the
    same cores, so the no-op's whole CPU over a login's with the API's part made the
    no-op's is the most the API's own code could bring. Below 0.5, the target is below this
    machine's floor: the rest is Postgres's durable writes, the worker's and Asterisk's
    queue members and the clients."""
    noop_total = noop.cpu_ms + sum(noop.stack_cpu_ms.values()) + noop.client_cpu_ms
    login_rest = sum(login.stack_cpu_ms.values()) + login.client_cpu_ms
    return noop_total / (noop.cpu_ms + login_rest)


def process_config(
    role: ProcessRole,
    host: str,
    url: str,
    ami: AmiConfig,
    secret_key: str,
    work: Path,
    overrides: dict[str, Any],
) -> ProcessConfig:
    return ProcessConfig(
        role=role.value,
        database_url=url,
        ami=dataclasses.asdict(ami),
        api_host=host,
        api_port=free_port(),
        agi_port=free_port(),
        state_dir=str(work),
        secret_key=secret_key,
        overrides=dict(overrides),
    )


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """``--set NAME=VALUE`` pairs as settings of the role processes, each checked against
    Settings (its type, its bounds) before anything starts."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in Settings.model_fields:
            raise SystemExit(f"--set {pair}: expected NAME=VALUE, NAME a field of Settings")
        overrides[name] = value
    Settings.model_validate(overrides)  # a ValidationError names the field and the reason
    return overrides


def effective(overrides: dict[str, Any], name: str) -> Any:
    """A setting as the role processes run it: set by ``--set``, else its default."""
    if name in overrides:
        return getattr(Settings.model_validate(overrides), name)
    return Settings.model_fields[name].default


async def main(
    attempts: int,
    client_processes: int,
    api_processes: int,
    repeats: int,
    overrides: dict[str, Any],
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="graam-bench-"))
    pg = EmbeddedPostgres(EmbeddedPostgresConfig(work / "pg", port=free_port()))
    sandbox = asterisk_sandbox(work / "asterisk")
    started: list[RoleProcess] = []
    ami: AmiSupervisor | None = None
    phones = contextlib.AsyncExitStack()
    await pg.start()
    try:
        admin = await asyncpg.connect(pg.url())
        await admin.execute("CREATE DATABASE bench")
        await admin.close()
        url = pg.url("bench")
        await migrate(url)
        tenants_count = -(-attempts // AGENTS_PER_RUN)
        *tenants, spare = await populate(
            url, tenants_count + 1, AGENTS_PER_RUN * api_processes * repeats
        )
        info = await sandbox.start()
        ami_settings = ami_config(info)
        secret_key = secrets.token_urlsafe(32)
        worker_config = process_config(
            ProcessRole.WORKER,
            WORKER_HOST,
            url,
            ami_settings,
            secret_key,
            work / "worker",
            overrides,
        )
        worker_config.config_dir = str(info.config_dir)
        worker_config.sounds_dir = str(info.sounds_dir)
        worker = RoleProcess(work / "worker", worker_config)
        await worker.start()
        started.append(worker)
        ami = AmiSupervisor(ami_settings, EventBus())
        await ami.start()
        await ami.wait_connected(30)
        # Every tenant's queue applied by the worker before anyone logs in.
        if not await eventually(lambda: queues_known(ami), tenants_count + 1, SETTLE_TIMEOUT):
            raise RuntimeError("the worker did not apply every tenant's queue")
        # Every agent's phone registered (a shift starts with desk phones that are), and
        # answering Asterisk's qualify OPTIONS throughout.
        # Asterisk reads the phones from Postgres once the worker has configured its realtime
        # connection: a phone registering before that is an unknown account, and a source
        # with many of those is blocked (docs/security.md).
        first_phone = tenants[0].devices[0]
        if not await eventually(lambda: endpoints_known(ami, first_phone), 1, SETTLE_TIMEOUT):
            raise RuntimeError("Asterisk does not read the phones from Postgres")
        (work / "phones").mkdir()
        devices = [name for tenant in tenants for name in tenant.devices]
        await phones.enter_async_context(
            agents_phones(
                work / "phones",
                f"127.0.0.1:{sandbox.config.sip_port}",
                [(name, DEVICE_PASSWORD) for name in devices],
                talk=1.0,
                rate=len(devices) / QUALIFY_PERIOD_S,
                at_once=REGISTERING_AT_ONCE,
                registered=lambda: registered_phones(url),
            )
        )
        tokens, figures = await tokens_and_round_trips(
            url, ami_settings, secret_key, work / "inproc", tenants, spare
        )
        stack: CpuReaders = {
            "postgres": lambda: postgres_cpu_seconds(pg),
            "worker": worker.cpu_seconds,
            "asterisk": lambda: process_cpu_seconds(info.pid),
        }
        runs: list[dict[str, Any]] = []
        for count in range(1, api_processes + 1):
            apis = []
            for host in API_HOSTS[:count]:
                config = process_config(
                    ProcessRole.API, host, url, ami_settings, secret_key, work / host, overrides
                )
                apis.append(RoleProcess(work / host, config))
            for api in apis:
                await api.start()
                started.append(api)
            # Warm: each pooled connection of each process runs the login once, as the no-op
            # storm before each run does the no-op: a connection's first use of a statement
            # prepares it and looks up the types it returns, once in the connection's life
            # (``agent_login``'s int8[] and timestamptz[]: 6 ms of Postgres each).
            warm = [
                ("POST", f"/api/v1/agents/{agent}/session", tokens[spare.tenant_id])
                for agent in spare.agents[WARMED_BY_ROUND_TRIPS:]
            ]
            await storm(apis, warm, client_processes)
            # Each repeat logs its own slice of agents in.
            repeated = [
                await one_run(
                    apis, tenants, tokens, slot, attempts, client_processes, url, ami, stack
                )
                for slot in range((count - 1) * repeats, count * repeats)
            ]
            runs.append(median_run(repeated))
            for api in apis:
                await api.stop()
                started.remove(api)
        return report(attempts, client_processes, tenants, figures, runs, overrides)
    finally:
        await phones.aclose()
        if ami is not None:
            await ami.stop()
        for process in reversed(started):
            await process.stop()
        await sandbox.stop()
        await pg.stop()
        shutil.rmtree(work, ignore_errors=True)


def median_run(repeated: list[dict[str, Any]]) -> dict[str, Any]:
    """The repeats of one configuration as one: each figure's (low) median, the worst over-limit,
    every error, and each repeat's ratio."""
    merged: dict[str, Any] = {
        key: statistics.median_low(run[key] for run in repeated)
        for key in repeated[0]
        if isinstance(repeated[0][key], float | int) and not isinstance(repeated[0][key], bool)
    }
    merged["over_limit"] = max(run["over_limit"] for run in repeated)
    merged["errors"] = sum(run["errors"] for run in repeated)
    merged["queue_members_match"] = all(run["queue_members_match"] for run in repeated)
    merged["ratio_to_noop_runs"] = [run["ratio_to_noop"] for run in repeated]
    return merged


def report(
    attempts: int,
    client_processes: int,
    tenants: list[Tenant],
    figures: dict[str, Any],
    runs: list[dict[str, Any]],
    overrides: dict[str, Any],
) -> dict[str, Any]:
    """The 1-process run's figures as the headline, then each other run's with its suffix
    and its scaling over 1 process."""
    first = runs[0]
    result: dict[str, Any] = {
        "bench": "login_storm",
        "attempts": attempts,
        "concurrency": attempts,
        "client_processes": client_processes,
        "cores": os.cpu_count(),
        "tenants": len(tenants),
        "licences": sum(tenant.licences for tenant in tenants),
        "api_processes": 1,
        "agent_session_concurrency": effective(overrides, "agent_session_concurrency"),
        "db_pool_size": effective(overrides, "db_pool_size"),
        "settings": overrides,
        **{key: value for key, value in first.items() if key != "over_limit"},
        "over_limit": max(run["over_limit"] for run in runs),
        **figures,
    }
    for count, run in enumerate(runs[1:], start=2):
        suffix = f"_{count}_api"
        for key in (
            "noop_per_s",
            "logins_per_s",
            "ratio_to_noop",
            "ratio_to_noop_runs",
            "p99_ms",
            "noop_p99_ms",
            "api_cpu_ms_per_login",
            "api_cpu_ms_per_noop",
            "postgres_cpu_ms_per_login",
            "postgres_cpu_ms_per_noop",
            "worker_cpu_ms_per_login",
            "worker_cpu_ms_per_noop",
            "asterisk_cpu_ms_per_login",
            "asterisk_cpu_ms_per_noop",
            "client_cpu_ms_per_login",
            "client_cpu_ms_per_noop",
            "idle_share_login",
            "idle_share_noop",
            "ratio_if_api_login_cost_noop",
        ):
            result[key + suffix] = run[key]
        result["errors"] += run["errors"]
        result["queue_members_match"] = result["queue_members_match"] and run["queue_members_match"]
        result["logins_scaling" + suffix] = round(run["logins_per_s"] / first["logins_per_s"], 2)
        result["noop_scaling" + suffix] = round(run["noop_per_s"] / first["noop_per_s"], 2)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200 logins a storm")
    parser.add_argument("--attempts", type=int, default=500)
    parser.add_argument("--api-processes", type=int, default=2, choices=range(1, 5))
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="storms of each configuration")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of every worker and API process (a field of Settings); repeatable",
    )
    parser.add_argument("--fire", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fire:
        fire()
    elif args.serve:
        serve_process(args.serve)
    else:
        count = 200 if args.quick else args.attempts
        print(
            json.dumps(
                asyncio.run(
                    main(
                        count,
                        args.client_processes,
                        args.api_processes,
                        args.repeats,
                        parse_settings(args.set),
                    )
                )
            )
        )
