"""Real calls through the real Asterisk at a rising rate, and the facts each one leaves.

python -m bench.call_load [--quick] [--agents N] [--talk S] [--step-seconds S] [--rates R,R,...]
                          [--profile FILE]

Prints one JSON line. The whole control plane runs in this process as in production (the AMI
writers of CDRs and queue calls, the agent worker, the config applier) against its own
embedded Postgres and Asterisk sandbox. A carrier (sipp, from 127.0.0.2) calls a tenant's
number; its IVR takes the digit 1 the carrier presses and sends the call to a queue whose
members are the tenant's agents, logged in through the API from devices registered by sipp
(127.0.0.1); an agent's phone answers, talks ``--talk`` seconds and hangs up. Rates rise step
by step (each step ``--step-seconds`` long); ``cps`` is the rate the calls actually reached
Asterisk at (the calls less one over the time from the first call's arrival to the last
one's, read from their CDRs; below the rate asked when sipp or the machine cannot keep up)
in the fastest step that met every target: sipp counted every call successful (a call it
counted neither successful nor failed, still unanswered when it stopped, is a failed one),
every call's facts reached Postgres (its row in ``queue_calls``, answered, with its agent,
and the CDR of the agent's leg, ``agent_user_id`` set), and the step's facts lag p99 was
under ``LAG_TARGET_MS`` (1 s). ``facts_lag_*``: from a call's hang-up (the queue call's
``ended_at``) to both facts being queryable, seen by polling every 50 ms (so up to 50 ms
late) from a thread with an event loop of its own (the control plane's busy loop does not
delay the reading), over the steps that met the targets; ``lag_p99_ms_by_step``: each
step's. ``cpu_ms_per_call``: the CPU time of this process (the control plane, plus the
polling) over the steps that met the targets, divided by their calls. ``failed`` and
``missing_facts`` are those of the first rate above that step, ``first_failing_rate`` that
rate (0 and null when every rate met the targets: then ``cps`` is the top of ``--rates``,
not a ceiling). A call without its facts is described on stderr (what Asterisk and
Postgres have of it). ``rates``/``achieved``: each step's rate asked and placed.

The limit, in the same run: the same callers, rates, agents' phones and talk time, to a number
whose dialplan (added through AMI, no IVR, no queue, no control-plane step) ``Dial``s an
agent's device directly; ``limit_cps``, measured the same way, with no failed call.

An agent is busy for the ring, the talk and the queue's wrap-up (0 here): ``--agents`` must be
at least rate x (talk + about 0.5 s); the default 500 agents talking 2 s allow about 200
calls/s, path and limit alike. ``--profile FILE``: cProfile statistics of this process over
the queue steps.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import resource
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.readings import percentile, queue_members
from bench.stack import ami_config, asterisk_sandbox
from graam_pbx.agents.service import sip_ha1
from graam_pbx.app import Endpoints, Runtime, create_app
from graam_pbx.auth import service as auth_service
from graam_pbx.db import migrate
from graam_pbx.sandbox.asterisk import AsteriskSandbox
from graam_pbx.sandbox.ports import free_port
from graam_pbx.sandbox.postgres import EmbeddedPostgres, EmbeddedPostgresConfig
from graam_pbx.sandbox.processes import end_process
from graam_pbx.settings import Settings

REPO = Path(__file__).resolve().parent.parent
CALLER_SCENARIO = REPO / "tests" / "e2e" / "scenarios" / "carrier_press_1.xml"
REGISTER_SCENARIO = REPO / "tests" / "e2e" / "scenarios" / "agent_register.xml"
AGENT_SCENARIO = Path(__file__).resolve().parent / "scenarios" / "agent_answer_talk.xml"
REGISTER_PASSES = 3  # agents_phones: the first pass, then the phones still missing, twice
CARRIER_IP = "127.0.0.2"
PHONES_IP = "127.0.0.1"
CALLER = "+33612345678"
DID = "+33142685300"
LIMIT_NUMBER = "7000"
PASSWORD = "bench-call-load-password"  # noqa: S105 - a throwaway account of a throwaway database
FACTS_TIMEOUT = 20.0
LAG_TARGET_MS = 1000.0  # a step whose facts lag p99 is not under this misses the target
POLL = 0.05
ID_MARGIN = 200  # rows re-read by each poll, in case ids were committed out of order


def _p99(values: list[float]) -> float | None:
    return round(percentile(values, 0.99), 1) if values else None


def udp_port() -> int:
    return free_port(socket.SOCK_DGRAM)


# ---- sipp --------------------------------------------------------------------------------------


@dataclass
class SippRun:
    returncode: int
    stats: dict[str, str]
    output: str
    wall_s: float  # from sipp's start to its end

    def count(self, statistic: str) -> int:
        return int(self.stats.get(f"{statistic}(C)", "0") or 0)

    def failed(self, calls: int) -> int:
        """Of ``calls`` placed: those sipp counted failed, those it counted neither failed nor
        successful (still unanswered when it stopped), plus one for a run that did not end
        as written."""
        ended = self.count("SuccessfulCall") + self.count("FailedCall")
        unended = max(0, calls - ended)
        return self.count("FailedCall") + unended + (0 if self.returncode == 0 else 1)


async def sipp(
    directory: Path, argv: list[str], limit_s: float, stop: asyncio.Event | None = None
) -> SippRun:
    """Run sipp in ``directory`` until it ends (or ``stop`` is set); its final statistics."""
    started = time.perf_counter()
    os.makedirs(directory)
    argv = [
        "sipp",
        *argv,
        "-nostdin",
        "-aa",
        "-trace_stat",
        "-stf",
        str(directory / "stats.csv"),
        "-trace_err",
        "-error_file",
        str(directory / "errors.log"),
    ]
    with (directory / "output.log").open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=directory,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        waiting = asyncio.ensure_future(process.wait())
        stopping = asyncio.ensure_future(stop.wait() if stop else asyncio.Event().wait())
        await asyncio.wait({waiting, stopping}, timeout=limit_s, return_when="FIRST_COMPLETED")
        stopping.cancel()
        await end_process(process, grace=10)
        await waiting
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    rows = [
        line.rstrip(";").split(";")
        for line in _read(directory / "stats.csv").splitlines()
        if line.strip()
    ]
    stats = dict(zip(rows[0], rows[-1], strict=False)) if len(rows) > 1 else {}
    logged = _read(directory / "errors.log")[-1500:] + _read(directory / "output.log")[-1500:]
    return SippRun(process.returncode, stats, logged, time.perf_counter() - started)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


# ---- the world ---------------------------------------------------------------------------------


@dataclass
class World:
    tenant_id: int
    queue_id: int
    supervisor: dict[str, str]
    agents: list[tuple[int, str, str]]  # (user id, SIP username, password)

    @property
    def phones(self) -> list[tuple[str, str]]:
        """Each agent's device: (SIP username, password)."""
        return [(name, password) for _, name, password in self.agents]


async def populate(url: str, agents: int) -> World:
    """A tenant with an admin, a supervisor, a queue and ``agents`` agents with devices."""
    password_hash = await auth_service.hash_password(PASSWORD)
    conn = await asyncpg.connect(url)
    try:
        tenant_id = await conn.fetchval(
            "INSERT INTO tenants (slug, name, country, timezone, status, plan, licences, "
            "version) VALUES ('load', 'load', 'FR', 'Europe/Paris', 'active', 'standard', $1, "
            "1) RETURNING id",
            agents,
        )
        for role in ("admin", "supervisor"):
            await conn.execute(
                "INSERT INTO users (tenant_id, email, display_name, role, password_hash, "
                "disabled, version) VALUES ($1, $2, $2, $3, $4, false, 1)",
                tenant_id,
                f"{role}@load.example",
                role,
                password_hash,
            )
        queue_id = await conn.fetchval(
            "INSERT INTO queues (tenant_id, name, strategy, ring_timeout, retry, "
            "wrapup_time, music_on_hold, announce_position, announce_holdtime, "
            "announce_frequency, weight, version) VALUES ($1, 'load', 'rrmemory', 15, 1, "
            "0, 'default', false, false, 0, 0, 1) RETURNING id",
            tenant_id,
        )
        made = []
        for number in range(agents):
            user_id = await conn.fetchval(
                "INSERT INTO users (tenant_id, email, display_name, role, password_hash, "
                "disabled, version) VALUES ($1, $2, $3, 'agent', 'x', false, 1) RETURNING id",
                tenant_id,
                f"a{number}@load.example",
                f"Agent {number}",
            )
            sip_username = f"load-a{number}"
            password = f"pw{number}x{tenant_id}"
            await conn.execute(
                "INSERT INTO agent_devices (tenant_id, user_id, sip_username, password_ha1, "
                "extension, codecs, transport, max_contacts, version) VALUES ($1, $2, $3, "
                "$4, $5, '{ulaw,alaw}', 'udp', 1, 1)",
                tenant_id,
                user_id,
                sip_username,
                sip_ha1(sip_username, password),
                str(2000 + number),
            )
            await conn.execute(
                "INSERT INTO queue_members (tenant_id, queue_id, user_id, penalty) "
                "VALUES ($1, $2, $3, 0)",
                tenant_id,
                queue_id,
                user_id,
            )
            made.append((user_id, sip_username, password))
    finally:
        await conn.close()
    return World(tenant_id, queue_id, {}, made)


async def ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
    body: dict[str, Any] = response.json()
    return body


async def token(client: httpx.AsyncClient, email: str, tenant: str | None) -> dict[str, str]:
    body = await ok(
        await client.post(
            "/api/v1/auth/token", json={"email": email, "password": PASSWORD, "tenant": tenant}
        )
    )
    return {"Authorization": f"Bearer {body['access_token']}"}


async def route_did(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], world: World
) -> None:
    """The number, its IVR (1: the queue) and the carrier's trunk, through the API."""
    async with sessions() as session, session.begin():
        await auth_service.create_operator(session, "op@operator.example", "Operator", PASSWORD)
    operator = await token(client, "op@operator.example", None)
    admin = await token(client, "admin@load.example", "load")
    world.supervisor = await token(client, "supervisor@load.example", "load")
    await ok(
        await client.post(
            "/api/v1/catalogue/numbers",
            headers=operator,
            json=[{"e164": DID, "monthly_price": "1.00", "currency": "EUR"}],
        )
    )
    number = await ok(await client.post("/api/v1/numbers", headers=admin, json={"e164": DID}))
    menu = await ok(
        await client.post(
            "/api/v1/ivrs",
            headers=admin,
            json={"name": "main", "options": {"1": {"type": "queue", "id": world.queue_id}}},
        )
    )
    await ok(
        await client.post(
            "/api/v1/inbound-routes",
            headers=admin,
            json={"number_id": number["id"], "open_destination": {"type": "ivr", "id": menu["id"]}},
        )
    )
    await ok(
        await client.post(
            "/api/v1/trunks",
            headers=operator,
            json={"name": "carrier", "host": CARRIER_IP, "country": "FR"},
        )
    )


# ---- one step: calls at a rate, then their facts -----------------------------------------------


@dataclass
class Step:
    rate: float
    calls: int
    failed: int
    missing: int
    lags_ms: list[float]
    # Of the same calls, the lag of each fact alone: the queue call's row, the agent's CDR.
    row_lags_ms: list[float]
    cdr_lags_ms: list[float]
    cpu_s: float
    achieved: float  # sipp's own measure of the rate it placed the calls at

    @property
    def lag_p99_ms(self) -> float | None:
        return _p99(self.lags_ms)

    @property
    def met_targets(self) -> bool:
        """No call failed, none without its facts, facts lag p99 under the target."""
        lag = self.lag_p99_ms
        return not self.failed and not self.missing and (lag is None or lag < LAG_TARGET_MS)


async def facts_lags(
    url: str, tenant_id: int, since: datetime, calls: int, done: threading.Event
) -> tuple[list[float], list[float], list[float]]:
    """Poll, while the calls run and until ``calls`` answered queue calls entered after
    ``since`` have their agent's CDR too (or ``FACTS_TIMEOUT`` after ``done``): each complete
    call's lag from hang-up to both facts seen. Each poll reads only the rows written since
    the last one (by id, with a margin for ids committed out of order), so the polling costs
    Postgres the same at the end of a step as at its start."""
    conn = await asyncpg.connect(url)
    seen: dict[str, float] = {}
    ended: dict[str, float] = {}  # linkedid -> hang-up (epoch) of answered queue calls
    with_agent: set[str] = set()  # linkedids with the agent's CDR
    row_seen: dict[str, float] = {}  # linkedid -> when its queue call was first read
    cdr_seen: dict[str, float] = {}  # linkedid -> when its agent's CDR was first read
    fresh: set[str] = set()  # linkedids read by this poll
    last_call = last_cdr = 0
    ended_at: float | None = None
    try:
        while len(seen) < calls:
            if done.is_set():
                ended_at = ended_at or time.monotonic()
                if time.monotonic() - ended_at > FACTS_TIMEOUT:
                    break
            rows = await conn.fetch(
                "SELECT id, linkedid, extract(epoch FROM ended_at) AS ended FROM queue_calls "
                "WHERE tenant_id = $1 AND id > $2 AND entered_at >= $3 "
                "AND outcome = 'answered' AND agent_id IS NOT NULL",
                tenant_id,
                last_call - ID_MARGIN,
                since,
            )
            legs = await conn.fetch(
                "SELECT id, linkedid FROM cdrs WHERE tenant_id = $1 AND id > $2 "
                "AND started_at >= $3 AND agent_user_id IS NOT NULL",
                tenant_id,
                last_cdr - ID_MARGIN,
                since,
            )
            now = time.time()
            for row in rows:
                last_call = max(last_call, row["id"])
                ended[row["linkedid"]] = float(row["ended"])
                row_seen.setdefault(row["linkedid"], now)
                fresh.add(row["linkedid"])
            for row in legs:
                last_cdr = max(last_cdr, row["id"])
                with_agent.add(row["linkedid"])
                cdr_seen.setdefault(row["linkedid"], now)
                fresh.add(row["linkedid"])
            for linkedid in fresh:
                if linkedid in ended and linkedid in with_agent and linkedid not in seen:
                    seen[linkedid] = (now - ended[linkedid]) * 1000
            fresh.clear()
            await asyncio.sleep(POLL)
        if len(seen) < calls or max(seen.values(), default=0) > 1000:
            outcomes = await conn.fetch(
                "SELECT outcome, source, count(*) AS n, count(agent_id) AS agents FROM "
                "queue_calls WHERE tenant_id = $1 AND entered_at >= $2 GROUP BY 1, 2",
                tenant_id,
                since,
            )
            legs = await conn.fetch(
                "SELECT dcontext, lastapp, disposition, agent_user_id IS NOT NULL AS agent, "
                "count(*) AS n FROM cdrs WHERE tenant_id = $1 AND started_at >= $2 "
                "GROUP BY 1, 2, 3, 4",
                tenant_id,
                since,
            )
            unattributed = await conn.fetch(
                "SELECT channel, dstchannel, device, queue_id, billsec FROM cdrs "
                "WHERE tenant_id = $1 AND started_at >= $2 AND lastapp = 'Queue' "
                "AND agent_user_id IS NULL LIMIT 3",
                tenant_id,
                since,
            )
            # Calls that never reached the queue (any tenant: one refused before its number's
            # context has none), by where their CDRs ended.
            elsewhere = await conn.fetch(
                "SELECT dcontext, lastapp, disposition, tenant_id IS NULL AS no_tenant, "
                "count(*) AS n FROM cdrs WHERE started_at >= $1 AND src = $2 "
                "AND queue_id IS NULL GROUP BY 1, 2, 3, 4",
                since,
                CALLER,
            )
            # Each call that reached Asterisk (its carrier leg) without its facts: what
            # Postgres has of it.
            lacking = await conn.fetch(
                "SELECT c.linkedid, c.dcontext, c.lastapp, c.disposition, c.billsec, "
                "(SELECT count(*) FROM cdrs l WHERE l.linkedid = c.linkedid) AS legs, "
                "(SELECT string_agg(q.outcome || '/' || coalesce(q.agent_id::text, '-'), ',') "
                " FROM queue_calls q WHERE q.linkedid = c.linkedid) AS queue_calls "
                "FROM cdrs c WHERE c.started_at >= $1 AND c.src = $2 "
                "AND c.uniqueid = c.linkedid AND NOT (c.linkedid = ANY($3::text[])) LIMIT 5",
                since,
                CALLER,
                list(seen),
            )
            arrived = await conn.fetchval(
                "SELECT count(DISTINCT linkedid) FROM cdrs WHERE started_at >= $1 AND src = $2 "
                "AND uniqueid = linkedid",
                since,
                CALLER,
            )
            print(
                f"{arrived} calls reached Asterisk (carrier legs); without their facts: "
                f"{[dict(row) for row in lacking]}",
                file=sys.stderr,
            )
            print(
                f"outside the queue: {[dict(row) for row in elsewhere]}; "
                f"{calls - len(seen)} calls without their facts, "
                f"{sum(lag > 1000 for lag in seen.values())} late by over 1 s; queue calls: "
                f"{[dict(row) for row in outcomes]}; CDRs: {[dict(row) for row in legs]}; "
                f"queue legs without agent: {[dict(row) for row in unattributed]}",
                file=sys.stderr,
            )
    finally:
        await conn.close()
    return (
        list(seen.values()),
        [(row_seen[linkedid] - ended[linkedid]) * 1000 for linkedid in seen],
        [(cdr_seen[linkedid] - ended[linkedid]) * 1000 for linkedid in seen],
    )


async def step(
    work: Path, asterisk: str, service: str, rate: float, seconds: float, talk: float
) -> SippRun:
    calls = max(1, round(rate * seconds))
    return await sipp(
        work / f"{service}-{rate:g}-{time.monotonic_ns()}",
        [
            asterisk,
            "-sf",
            str(CALLER_SCENARIO),
            "-s",
            service,
            "-key",
            "caller",
            CALLER,
            "-m",
            str(calls),
            "-r",
            f"{rate:g}",
            "-l",
            str(max(10, int(rate * (talk + 10)))),
            "-i",
            CARRIER_IP,
            "-p",
            str(udp_port()),
            "-mi",
            CARRIER_IP,
            "-mp",
            str(_media_port()),
            "-timeout",
            f"{int(seconds + talk + 60)}s",
        ],
        limit_s=seconds + talk + 90,
    )


def _media_port() -> int:
    while True:
        port = udp_port()
        if port % 2 == 0 and port < 65000:
            return port


async def placed(url: str, since: datetime, calls: int, asked: float) -> float | None:
    """The rate the calls reached Asterisk at: (calls - 1) over the time from the first call's
    arrival to the last one's, each read from its CDRs (the carrier's channel: its uniqueid is
    its linkedid, its start the INVITE's arrival), never above the rate asked; of the calls
    whose CDRs are in Postgres within ``FACTS_TIMEOUT`` (None: fewer than two)."""
    conn = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + FACTS_TIMEOUT
        while True:
            row = await conn.fetchrow(
                "SELECT count(*) AS n, extract(epoch FROM max(s) - min(s)) AS span FROM "
                "(SELECT min(started_at) AS s FROM cdrs WHERE started_at >= $1 AND src = $2 "
                "AND uniqueid = linkedid GROUP BY uniqueid) AS arrivals",
                since,
                CALLER,
            )
            arrived = int(row["n"]) if row is not None else 0
            if arrived >= calls or time.monotonic() > deadline:
                span = float(row["span"] or 0) if row is not None else 0.0
                if arrived < 2 or span <= 0:
                    return None
                return round(min(asked, (arrived - 1) / span), 1)
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


def achieved(run: SippRun, calls: int, asked: float) -> float:
    """The rate sipp placed the calls at: the calls over the time from the first call's start
    to the last one's (sipp's run less its mean call's length); never above the rate asked,
    below it when sipp or the machine could not keep up. (sipp's own ``CallRate`` divides by
    the whole run, the last calls' length included.)"""
    try:
        h, m, sec, us = (int(part) for part in run.stats["CallLength(C)"].split(":"))
    except (KeyError, ValueError):
        return 0.0
    placing = run.wall_s - (h * 3600 + m * 60 + sec + us / 1e6)
    return round(min(asked, calls / placing) if placing > 0 else asked, 1)


async def _register(
    directory: Path,
    asterisk: str,
    phones: Sequence[tuple[str, str]],
    rate: float,
    at_once: int | None,
    port: int,
) -> SippRun:
    """One sipp pass (in ``directory``, made) registering ``phones`` from ``port``."""
    allowed_s = len(phones) / rate + 60  # the registrations at the rate asked, then a minute
    rows = [
        f"{name};[authentication username={name} password={password}];" for name, password in phones
    ]
    injection = directory.with_suffix(".csv")
    injection.write_text("SEQUENTIAL\n" + "\n".join(rows) + "\n")
    return await sipp(
        directory,
        [
            asterisk,
            "-sf",
            str(REGISTER_SCENARIO),
            "-inf",
            str(injection),
            "-m",
            str(len(rows)),
            "-r",
            f"{rate:g}",
            "-i",
            PHONES_IP,
            "-p",
            str(port),
            *(["-l", str(at_once)] if at_once is not None else []),
            "-timeout",
            f"{allowed_s:.0f}s",
            "-timeout_error",
        ],
        limit_s=allowed_s + 15,
    )


@contextlib.asynccontextmanager
async def agents_phones(
    work: Path,
    asterisk: str,
    phones: Sequence[tuple[str, str]],
    talk: float,
    *,
    rate: float = 50,
    at_once: int | None = None,
    registered: Callable[[], Awaitable[set[str]]] | None = None,
) -> AsyncIterator[None]:
    """Every phone (SIP username, password) registered from one port, ``rate`` a second and
    at most ``at_once`` at a time (None: no bound), where one sipp then answers them all
    (calls and Asterisk's qualify OPTIONS).

    ``registered``: the phones the switch holds a contact of. Given, a pass that leaves some
    phone unregistered (one REGISTER of thousands lost in a busy moment: sipp then waits for
    its answer until the pass's time is up) is followed by passes for the phones still
    missing, ``REGISTER_PASSES`` in all; without it, or with phones still missing after the
    last, the first failed pass raises."""
    port = udp_port()
    pending = list(phones)
    for attempt in range(1, REGISTER_PASSES + 1):
        done = await _register(work / f"register-{attempt}", asterisk, pending, rate, at_once, port)
        if done.returncode == 0:
            break
        if registered is None or attempt == REGISTER_PASSES:
            raise RuntimeError(f"agents' phones did not register:\n{done.output}")
        held = await registered()
        pending = [(name, password) for name, password in pending if name not in held]
        print(
            f"agents' phones: {len(pending)} not registered after pass {attempt}", file=sys.stderr
        )
        if not pending:
            break
    stop = asyncio.Event()
    answering = asyncio.create_task(
        sipp(
            work / "agents",
            [
                "-sf",
                str(AGENT_SCENARIO),
                "-i",
                PHONES_IP,
                "-p",
                str(port),
                "-mi",
                PHONES_IP,
                "-mp",
                str(_media_port()),
                "-d",
                str(int(talk * 1000)),
            ],
            limit_s=24 * 3600,
            stop=stop,
        )
    )
    try:
        yield
    finally:
        stop.set()
        await answering


async def rising(runner: Callable[[float], Awaitable[Step]], rates: list[float]) -> list[Step]:
    """Run ``runner(rate)`` at each rate until one misses the targets (the last step)."""
    steps: list[Step] = []
    for rate in rates:
        steps.append(await runner(rate))
        if not steps[-1].met_targets:
            break
    return steps


async def main(
    agents: int,
    talk: float,
    seconds: float,
    rates: list[float],
    profile: Path | None = None,
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="graam-bench-"))
    pg = EmbeddedPostgres(EmbeddedPostgresConfig(work / "pg", port=free_port()))
    sandbox: AsteriskSandbox | None = None
    await pg.start()
    try:
        admin_conn = await asyncpg.connect(pg.url())
        await admin_conn.execute("CREATE DATABASE bench")
        await admin_conn.close()
        url = pg.url("bench")
        await migrate(url)
        world = await populate(url, agents)
        sandbox = asterisk_sandbox(work / "asterisk", sip_port=udp_port())
        info = await sandbox.start()
        asterisk = f"127.0.0.1:{sandbox.config.sip_port}"
        ami = ami_config(info)
        settings = Settings(agi_port=free_port(), data_dir=work)
        endpoints = Endpoints(
            database_url=url,
            ami=ami,
            config_dir=info.config_dir,
            sounds_dir=info.sounds_dir,
            queue_log=sandbox.log_dir / "queue_log",
        )
        app = create_app(settings, endpoints)
        async with app.router.lifespan_context(app):
            runtime: Runtime = app.state.runtime
            await runtime.ami.wait_connected(30)
            assert runtime.applier is not None and runtime.agents is not None
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=60
            ) as client:
                await route_did(client, app.state.sessions, world)
                runtime.applier.request({world.tenant_id})
                await runtime.applier.settled()
                async with agents_phones(work, asterisk, world.phones, talk):
                    for user_id, _, _ in world.agents:
                        await ok(
                            await client.post(
                                f"/api/v1/agents/{user_id}/session", headers=world.supervisor
                            )
                        )
                    await runtime.agents.settled()
                    members = await queue_members(runtime)

                    profiler = cProfile.Profile() if profile is not None else None

                    async def through_queue(rate: float) -> Step:
                        since = datetime.now().astimezone()
                        if profiler is not None:
                            profiler.enable()
                        cpu = resource.getrusage(resource.RUSAGE_SELF)
                        calls = max(1, round(rate * seconds))
                        done = threading.Event()
                        # In a thread of its own, with its own event loop: a busy control
                        # plane does not delay the reading.
                        polling = asyncio.create_task(
                            asyncio.to_thread(
                                asyncio.run, facts_lags(url, world.tenant_id, since, calls, done)
                            )
                        )
                        try:
                            run = await step(work, asterisk, DID, rate, seconds, talk)
                        finally:
                            done.set()  # a thread is not cancelled: it must stop by itself
                        lags, row_lags, cdr_lags = await polling
                        if profiler is not None:
                            profiler.disable()
                        after = resource.getrusage(resource.RUSAGE_SELF)
                        used = (after.ru_utime + after.ru_stime) - (cpu.ru_utime + cpu.ru_stime)
                        failed = run.failed(calls)
                        if len(lags) < calls or failed:
                            print(
                                f"at {rate:g}/s sipp: {run.count('SuccessfulCall')} successful, "
                                f"{run.count('FailedCall')} failed of {calls}: {run.output}",
                                file=sys.stderr,
                            )
                        rate_placed = await placed(url, since, calls, rate)
                        return Step(
                            rate,
                            calls,
                            failed,
                            calls - len(lags),
                            lags,
                            row_lags,
                            cdr_lags,
                            used,
                            achieved(run, calls, rate) if rate_placed is None else rate_placed,
                        )

                    steps = await rising(through_queue, rates)
                    if profiler is not None and profile is not None:
                        profiler.dump_stats(profile)

                    # The limit: the same legs, straight from the carrier to an agent's phone
                    # (an exact extension of graam-from-trunk goes before its dispatcher's pattern).
                    await runtime.ami.action(
                        "DialplanExtensionAdd",
                        {
                            "Context": "graam-from-trunk",
                            "Extension": LIMIT_NUMBER,
                            "Priority": "1",
                            "Application": "Dial",
                            "ApplicationData": f"PJSIP/load-a${{RAND(0,{agents - 1})}}",
                            "Replace": "yes",
                        },
                    )

                    async def plain(rate: float) -> Step:
                        since = datetime.now().astimezone()
                        run = await step(work, asterisk, LIMIT_NUMBER, rate, seconds, talk)
                        calls = max(1, round(rate * seconds))
                        failed = run.failed(calls)
                        if failed:
                            print(f"limit at {rate:g}/s: {run.output}", file=sys.stderr)
                        rate_placed = await placed(url, since, calls - failed, rate)
                        return Step(
                            rate,
                            calls,
                            failed,
                            0,
                            [],
                            [],
                            [],
                            0.0,
                            achieved(run, calls, rate) if rate_placed is None else rate_placed,
                        )

                    limit_steps = await rising(plain, rates)
        passed = [s for s in steps if s.met_targets]  # all but the last, or all
        cps = max((s.achieved for s in passed), default=0.0)
        limit_cps = max((s.achieved for s in limit_steps if s.met_targets), default=0.0)
        lagged = [s for s in passed if s.lags_ms] or steps
        lags = [lag for s in lagged for lag in s.lags_ms]
        calls = sum(s.calls for s in passed)
        last = steps[-1]
        return {
            "bench": "call_load",
            "agents": agents,
            "queue_members": members,
            "talk_s": talk,
            "step_s": seconds,
            "rates": [s.rate for s in steps],
            "achieved": [s.achieved for s in steps],
            "cps": cps,
            "limit_cps": limit_cps,
            "limit_rates": [s.rate for s in limit_steps],
            "limit_achieved": [s.achieved for s in limit_steps],
            "ratio_to_limit": round(cps / limit_cps, 2) if limit_cps else None,
            "calls": calls,
            "failed": 0 if last.met_targets else last.failed,
            "missing_facts": 0 if last.met_targets else last.missing,
            "first_failing_rate": None if last.met_targets else last.rate,
            "lag_target_ms": LAG_TARGET_MS,
            "lag_p99_ms_by_step": [s.lag_p99_ms for s in steps],
            "facts_lag_p50_ms": round(statistics.median(lags), 1) if lags else None,
            "facts_lag_p99_ms": _p99(lags),
            "queue_call_lag_p99_ms": _p99([lag for s in lagged for lag in s.row_lags_ms]),
            "cdr_lag_p99_ms": _p99([lag for s in lagged for lag in s.cdr_lags_ms]),
            "cpu_ms_per_call": round(sum(s.cpu_s for s in passed) * 1000 / calls, 2)
            if calls
            else None,
        }
    finally:
        if sandbox is not None:
            await sandbox.stop()
        await pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20 agents, rates 2 and 4, 5 s")
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--talk", type=float, default=2.0)
    parser.add_argument("--step-seconds", type=float, default=10.0)
    parser.add_argument("--rates", default="10,20,40,60,80,100,120,150,180,200")
    parser.add_argument(
        "--profile",
        type=Path,
        help="write cProfile statistics of this process over the queue steps to this file",
    )
    args = parser.parse_args()
    if args.quick:
        result = asyncio.run(main(20, 2.0, 5.0, [2.0, 4.0]))
    else:
        rates = [float(rate) for rate in args.rates.split(",")]
        result = asyncio.run(main(args.agents, args.talk, args.step_seconds, rates, args.profile))
    print(json.dumps(result))
