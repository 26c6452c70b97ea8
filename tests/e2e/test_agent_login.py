"""Agents log in, out and pause through the API and their phones, against the real Asterisk.

The licence limit is proven under a storm: 50 tenants with 1 to 20 licences, 2,000 login
attempts from separate OS processes against a real HTTP server plus 100 phones dialing *45,
with the live sessions sampled throughout. Asterisk's queue members are read back with
QueueStatus; Asterisk is restarted with agents logged in; a phone unregisters.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import textwrap
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import phonenumbers
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents.service import sip_ha1
from graam_pbx.ami.protocol import Message
from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.auth import service as auth_service
from graam_pbx.db import plain_url
from graam_pbx.sandbox.ports import free_port
from tests.conftest import Asterisk, RunningApp
from tests.e2e.sipp import SCENARIOS, Sipp, SippPool, SippResult, free_udp_port
from tests.factories import PASSWORD, TenantWorld, login, make_world, unique
from tests.waiting import until

Sessions = async_sessionmaker[AsyncSession]

PHONES_IP = "127.0.0.1"
CARRIER_IP = "127.0.0.2"
LOGGED_IN_PROMPT = "agent-loginok"
REFUSED_PROMPT = "all-circuits-busy-now"


@dataclass
class Phone:
    """An agent with a device whose SIP password the test knows."""

    user_id: int
    device_id: int
    sip_username: str
    password: str


@dataclass
class Provisioned:
    """Agents made straight in the database (argon2 per user through the API is too slow)."""

    tenant_id: int
    queue_id: int
    agents: list[Phone] = field(default_factory=list)


# ---- provisioning -----------------------------------------------------------------------------


async def raw_connection(pbx: RunningApp) -> asyncpg.Connection:
    url = pbx.runtime.engine.url.render_as_string(hide_password=False)
    return await asyncpg.connect(plain_url(url))


async def provision(
    conn: asyncpg.Connection, tenant_id: int, slug: str, count: int, *, queue: str = "support"
) -> Provisioned:
    """``count`` agents of the tenant, each with a device, all members of one new queue."""
    queue_id = await conn.fetchval(
        "INSERT INTO queues (tenant_id, name, strategy, ring_timeout, retry, wrapup_time, "
        "music_on_hold, announce_position, announce_holdtime, announce_frequency, weight, "
        "version) VALUES ($1, $2, 'ringall', 15, 1, 0, 'default', false, false, 0, 0, 1) "
        "RETURNING id",
        tenant_id,
        queue,
    )
    made = Provisioned(tenant_id, queue_id)
    tag = uuid.uuid4().hex[:6]
    for index in range(count):
        user_id = await conn.fetchval(
            "INSERT INTO users (tenant_id, email, display_name, role, password_hash, disabled, "
            "version) VALUES ($1, $2, $3, 'agent', 'x', false, 1) RETURNING id",
            tenant_id,
            f"a{index}-{tag}@{slug}.example",
            f"Agent {index}",
        )
        sip_username = f"{slug}-a{index}-{tag}"
        password = uuid.uuid4().hex
        device_id = await conn.fetchval(
            "INSERT INTO agent_devices (tenant_id, user_id, sip_username, password_ha1, "
            "extension, codecs, transport, max_contacts, version) "
            "VALUES ($1, $2, $3, $4, $5, '{ulaw,alaw}', 'udp', 1, 1) RETURNING id",
            tenant_id,
            user_id,
            sip_username,
            sip_ha1(sip_username, password),
            str(2000 + index),
        )
        await conn.execute(
            "INSERT INTO queue_members (tenant_id, queue_id, user_id, penalty) "
            "VALUES ($1, $2, $3, 0)",
            tenant_id,
            queue_id,
            user_id,
        )
        made.agents.append(Phone(user_id, device_id, sip_username, password))
    return made


async def configured(applier: ConfigApplier, tenant_ids: set[int]) -> None:
    """Rows written straight to the database reach Asterisk's configuration."""
    applier.request(tenant_ids)
    await applier.settled()


async def end_and_terminate(conn: asyncpg.Connection, tenant_ids: list[int]) -> None:
    """Tidy the session-wide Asterisk: these tenants' sessions end and their files go."""
    await conn.execute(
        "UPDATE agent_sessions SET ended_at = now(), end_reason = 'forced' "
        "WHERE tenant_id = ANY($1) AND ended_at IS NULL",
        tenant_ids,
    )
    await conn.execute("UPDATE tenants SET status = 'terminated' WHERE id = ANY($1)", tenant_ids)


# ---- Asterisk's side --------------------------------------------------------------------------


async def queue_members(pbx: RunningApp, queues: list[str] | None = None) -> set[tuple[str, str]]:
    """(queue, interface) of every member Asterisk has in these queues (None: every queue)."""
    ami = pbx.runtime.ami
    if queues is None:
        events = await ami.action_list("QueueStatus", {})
    else:
        events = []
        for queue in queues:
            events += await ami.action_list("QueueStatus", {"Queue": queue})
    return {
        (event["Queue"], event.get("Location") or event.get("Interface", ""))
        for event in events
        if event.name == "QueueMember"
    }


def seats(made: Provisioned, logged_in: set[int]) -> set[tuple[str, str]]:
    queue = f"t{made.tenant_id}-q{made.queue_id}"
    return {(queue, f"PJSIP/{a.sip_username}") for a in made.agents if a.user_id in logged_in}


@contextlib.asynccontextmanager
async def agi_commands(pbx: RunningApp) -> AsyncIterator[list[Message]]:
    """The AGI commands Asterisk runs meanwhile (AGIExecStart events), as they come.

    On the way out it waits until no event has come for a moment: an event sent before the
    call's BYE may still be on its way through the AMI connection and the bus.
    """
    seen: list[Message] = []

    async def record(message: Message) -> None:
        seen.append(message)

    bus = pbx.runtime.bus
    subscription = bus.subscribe(f"test-agi-{uuid.uuid4().hex}", ["AGIExecStart"], record)
    try:
        yield seen
        async with asyncio.timeout(10):
            while True:
                count = len(seen)
                await asyncio.sleep(0.3)
                if len(seen) == count and subscription.backlog == 0:
                    break
    finally:
        await bus.unsubscribe(subscription)


def prompts_by_device(commands: list[Message]) -> dict[str, list[str]]:
    """The prompts each device's channel heard (``PJSIP/<name>-0000001`` → name)."""
    heard: dict[str, list[str]] = defaultdict(list)
    for command in commands:
        words = command.get("Command", "").split()
        if words[:2] == ["STREAM", "FILE"] and len(words) > 2:
            device = command.get("Channel", "").removeprefix("PJSIP/").rsplit("-", 1)[0]
            heard[device].append(words[2])
    return heard


# ---- sipp: many phones in one process ---------------------------------------------------------


@dataclass
class SippBatch:
    """One sipp process running ``scenario`` once per row of an injection file."""

    workdir: Path
    asterisk: str
    scenario: str
    rows: list[tuple[str, ...]]
    service: str | None = None
    port: int = 0
    concurrency: int = 100
    rate: int = 100
    timeout: float = 60
    name: str = field(default_factory=lambda: unique("sipp"))

    async def run(self) -> tuple[int, str]:
        """sipp's exit code (0: every call as written) and what it logged."""
        directory = self.workdir / self.name
        directory.mkdir(parents=True)
        injection = directory / "rows.csv"
        injection.write_text("SEQUENTIAL\n" + "".join(";".join(row) + ";\n" for row in self.rows))
        self.port = self.port or free_udp_port(PHONES_IP)
        argv = [
            "sipp",
            self.asterisk,
            "-sf",
            str(SCENARIOS / self.scenario),
            "-inf",
            str(injection),
            "-m",
            str(len(self.rows)),
            "-l",
            str(self.concurrency),
            "-r",
            str(self.rate),
            "-rp",
            "1000",
            "-i",
            PHONES_IP,
            "-p",
            str(self.port),
            "-mi",
            PHONES_IP,
            "-mp",
            str(free_udp_port(PHONES_IP, pair=True)),
            "-aa",
            "-nostdin",
            "-timeout",
            f"{int(self.timeout)}s",
            "-timeout_error",
            "-trace_err",
            "-error_file",
            str(directory / "errors.log"),
            "-trace_msg",
            "-message_file",
            str(directory / "messages.log"),
            *(["-s", self.service] if self.service else []),
        ]
        with (directory / "output.log").open("wb") as output:
            process = await asyncio.create_subprocess_exec(
                *argv, cwd=directory, stdout=output, stderr=asyncio.subprocess.STDOUT
            )
            try:
                async with asyncio.timeout(self.timeout + 15):
                    code = await process.wait()
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
        logged = ""
        for log in ("errors.log", "output.log"):
            with contextlib.suppress(FileNotFoundError):
                logged += (directory / log).read_text(errors="replace")[-3000:]
        return code, logged


def credentials(phones: list[Phone]) -> list[tuple[str, str]]:
    """Injection rows: the SIP username, and its authentication keyword whole (the only way
    sipp takes credentials per call)."""
    return [
        (p.sip_username, f"[authentication username={p.sip_username} password={p.password}]")
        for p in phones
    ]


async def register(
    tmp_path: Path,
    asterisk: Asterisk,
    sipp: SippPool,
    phones: list[Phone],
    answering: str = "uas_answer.xml",
) -> Sipp:
    """Register ``phones`` from one port; a sipp UAS running ``answering`` then listens there,
    answering Asterisk's qualify OPTIONS (and the first call)."""
    batch = SippBatch(
        tmp_path,
        f"127.0.0.1:{asterisk.sip_port}",
        "agent_register.xml",
        credentials(phones),
    )
    code, logged = await batch.run()
    assert code == 0, logged
    return await sipp.uas(answering, ip=PHONES_IP, port=batch.port).start()


async def dial(
    tmp_path: Path, asterisk: Asterisk, phones: list[Phone], code: str, **options: Any
) -> None:
    """Each phone dials a feature code once; every call is answered and hung up by Asterisk."""
    batch = SippBatch(
        tmp_path,
        f"127.0.0.1:{asterisk.sip_port}",
        "agent_feature_code.xml",
        credentials(phones),
        service=code,
        **options,
    )
    exit_code, logged = await batch.run()
    assert exit_code == 0, logged


def carrier_caller(sipp: SippPool, did: str, **options: Any) -> Sipp:
    """The carrier's caller who dials ``did`` and presses 1 (not started yet)."""
    return sipp.uac(
        "carrier_press_1.xml",
        ip=CARRIER_IP,
        service=did,
        keys={"caller": "+33612345678"},
        **options,
    )


async def answered_call(sipp: SippPool, did: str, phone: Sipp) -> SippResult:
    """The carrier calls ``did`` and presses 1; the agent's ``phone`` answers. What the
    phone saw."""
    call = await carrier_caller(sipp, did).run()
    assert call.ok, call.describe()
    answered = await phone.wait()
    assert answered.ok, answered.describe()
    return answered


async def new_tenant(
    pbx: RunningApp, client: httpx.AsyncClient, sessions: Sessions, licences: int, agents: int
) -> tuple[TenantWorld, Provisioned]:
    world = await make_world(client, sessions, licences=licences)
    conn = await raw_connection(pbx)
    try:
        made = await provision(conn, world.tenant_id, world.slug, agents)
    finally:
        await conn.close()
    return world, made


def session_url(user_id: int) -> str:
    return f"/api/v1/agents/{user_id}/session"


async def live_users(sessions: Sessions, tenant_id: int) -> set[int]:
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT user_id FROM agent_sessions WHERE tenant_id = :t AND ended_at IS NULL"),
            {"t": tenant_id},
        )
        return {row[0] for row in rows}


# ---- the phone codes --------------------------------------------------------------------------


async def test_phone_codes_log_in_pause_and_log_out_and_asterisk_follows(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    world, made = await new_tenant(pbx, client, sessions, licences=1, agents=2)
    first, second = made.agents
    await configured(applier, {world.tenant_id})
    await register(tmp_path, asterisk, sipp, made.agents)
    queue = f"t{world.tenant_id}-q{made.queue_id}"
    worker = pbx.runtime.agents
    assert worker is not None

    async with agi_commands(pbx) as commands:
        await dial(tmp_path, asterisk, [first], "*45")
        await dial(tmp_path, asterisk, [second], "*45")  # the only licence is taken
    heard = prompts_by_device(commands)
    assert heard[first.sip_username] == [LOGGED_IN_PROMPT], heard
    assert heard[second.sip_username] == [REFUSED_PROMPT], heard
    assert await live_users(sessions, world.tenant_id) == {first.user_id}
    await worker.settled()
    assert await queue_members(pbx, [queue]) == seats(made, {first.user_id})

    async def idle_in_live_view() -> bool:
        live = await client.get("/api/v1/agents/sessions", headers=world.supervisor.headers)
        (row,) = live.json()["items"]
        return bool(row["device_state"] == "NOT_INUSE" and row["on_call"] is False)

    await until(idle_in_live_view, "registered, idle phone in the live view", timeout=10)

    await dial(tmp_path, asterisk, [first], "*472")  # pause, reason code 2
    await worker.settled()
    (member,) = [
        e
        for e in await pbx.runtime.ami.action_list("QueueStatus", {"Queue": queue})
        if e.name == "QueueMember"
    ]
    assert member.get("Paused") == "1"
    assert member.get("PausedReason") == "2"
    live = await client.get(session_url(first.user_id), headers=world.supervisor.headers)
    assert live.json()["paused"] is True
    assert live.json()["pause_reason"] == "2"
    await dial(tmp_path, asterisk, [first], "*47")  # resume
    await worker.settled()
    live = await client.get(session_url(first.user_id), headers=world.supervisor.headers)
    assert live.json()["paused"] is False

    async with agi_commands(pbx) as commands:
        await dial(tmp_path, asterisk, [first], "*46")
    assert prompts_by_device(commands)[first.sip_username] == ["agent-loggedoff"]
    await worker.settled()
    assert await queue_members(pbx, [queue]) == set()
    assert await live_users(sessions, world.tenant_id) == set()
    async with sessions() as session:
        kinds = [
            tuple(row)
            for row in await session.execute(
                text(
                    "SELECT user_id, kind, source FROM agent_state_events "
                    "WHERE tenant_id = :t ORDER BY id"
                ),
                {"t": world.tenant_id},
            )
        ]
    assert kinds == [
        (first.user_id, "login", "phone"),
        (second.user_id, "refused", "phone"),
        (first.user_id, "pause", "phone"),
        (first.user_id, "unpause", "phone"),
        (first.user_id, "logout", "phone"),
    ]


# ---- a phone that leaves ----------------------------------------------------------------------


async def test_an_unregistered_phone_ends_its_session_and_a_waiting_login_gets_the_licence(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    world, made = await new_tenant(pbx, client, sessions, licences=1, agents=2)
    leaving, waiting = made.agents
    supervisor = world.supervisor.headers
    await configured(applier, {world.tenant_id})
    await register(tmp_path, asterisk, sipp, [leaving])
    assert (await client.post(session_url(leaving.user_id), headers=supervisor)).status_code == 201

    refused = asyncio.Event()

    async def login_when_free() -> tuple[httpx.Response, int]:
        refusals = 0
        while True:
            response = await client.post(session_url(waiting.user_id), headers=supervisor)
            if response.status_code != 409:
                return response, refusals
            refusals += 1
            refused.set()
            await asyncio.sleep(0.1)

    waiter = asyncio.create_task(login_when_free())
    await asyncio.wait_for(refused.wait(), timeout=10)
    assert not waiter.done()  # refused while the licence is held

    unregister = SippBatch(
        tmp_path,
        f"127.0.0.1:{asterisk.sip_port}",
        "agent_unregister.xml",
        credentials([leaving]),
    )
    code, logged = await unregister.run()
    assert code == 0, logged
    # The waiting login succeeds within 10 s of the unregistration, or the wait fails.
    response, refusals = await asyncio.wait_for(waiter, timeout=10)
    assert response.status_code == 201, response.text
    assert refusals > 0
    assert await live_users(sessions, world.tenant_id) == {waiting.user_id}
    async with sessions() as session:
        reason = await session.scalar(
            text(
                "SELECT end_reason FROM agent_sessions WHERE user_id = :u AND ended_at IS NOT NULL"
            ),
            {"u": leaving.user_id},
        )
    assert reason == "unregistered"
    worker = pbx.runtime.agents
    assert worker is not None
    await worker.settled()
    queue = f"t{world.tenant_id}-q{made.queue_id}"
    assert await queue_members(pbx, [queue]) == seats(made, {waiting.user_id})


# ---- Asterisk restarts ------------------------------------------------------------------------


async def new_number_to_queue(client: httpx.AsyncClient, world: TenantWorld, queue_id: int) -> str:
    """A number the tenant buys, whose IVR sends 1 to the queue, and a trunk from the carrier
    (the carrier's scenario presses 1 once answered)."""
    e164 = ""
    while not e164 or not phonenumbers.is_valid_number(phonenumbers.parse(e164)):
        e164 = f"+331{uuid.uuid4().int % 10**8:08d}"
    admin = world.admin.headers
    catalogue = [{"e164": e164, "monthly_price": "1.00", "currency": "EUR"}]
    loaded = await client.post(
        "/api/v1/catalogue/numbers", headers=world.operator.headers, json=catalogue
    )
    assert loaded.status_code == 201, loaded.text
    bought = await client.post("/api/v1/numbers", headers=admin, json={"e164": e164})
    assert bought.status_code == 201, bought.text
    menu = await client.post(
        "/api/v1/ivrs",
        headers=admin,
        json={"name": "main", "options": {"1": {"type": "queue", "id": queue_id}}},
    )
    assert menu.status_code == 201, menu.text
    routed = await client.post(
        "/api/v1/inbound-routes",
        headers=admin,
        json={
            "number_id": bought.json()["id"],
            "open_destination": {"type": "ivr", "id": menu.json()["id"]},
        },
    )
    assert routed.status_code == 201, routed.text
    trunk = await client.post(
        "/api/v1/trunks",
        headers=world.operator.headers,
        json={"name": unique("carrier"), "host": CARRIER_IP, "country": "FR"},
    )
    assert trunk.status_code == 201, trunk.text
    return e164


async def test_after_an_asterisk_restart_every_agent_is_a_member_again_and_answers(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    world, made = await new_tenant(pbx, client, sessions, licences=30, agents=30)
    did = await new_number_to_queue(client, world, made.queue_id)
    await configured(applier, {world.tenant_id})
    answering = made.agents[0]
    for agent in made.agents:
        response = await client.post(session_url(agent.user_id), headers=world.supervisor.headers)
        assert response.status_code == 201, response.text
    worker = pbx.runtime.agents
    assert worker is not None
    await worker.settled()
    queue = f"t{world.tenant_id}-q{made.queue_id}"
    everyone = seats(made, {a.user_id for a in made.agents})
    assert await queue_members(pbx, [queue]) == everyone

    booted = asyncio.Event()

    async def watch(message: Message) -> None:
        booted.set()

    bus = pbx.runtime.bus
    subscription = bus.subscribe(f"test-boot-{uuid.uuid4().hex}", ["FullyBooted"], watch)
    try:
        await asterisk.restart()
        async with asyncio.timeout(30):
            await booted.wait()

        async def all_members() -> bool:
            try:
                return await queue_members(pbx, [queue]) == everyone
            except Exception:
                return False

        # Every member back within 10 s of FullyBooted, or the wait fails.
        await until(all_members, "queue members after the restart", timeout=10)
    finally:
        await bus.unsubscribe(subscription)

    # The phone registers again, as phones do once their registrar is back.
    phone = await register(tmp_path, asterisk, sipp, [answering], "uas_answer_hangup.xml")

    async def phone_reachable() -> bool:
        shown = await pbx.runtime.ami.command(f"pjsip show aor {answering.sip_username}")
        return " Avail " in shown

    await until(phone_reachable, "reachable phone after the restart", timeout=20)

    answered = await answered_call(sipp, did, phone)
    assert len(answered.received("INVITE")) == 1
    conn = await raw_connection(pbx)
    try:
        await end_and_terminate(conn, [world.tenant_id])
    finally:
        await conn.close()
    applier.request({world.tenant_id})


# ---- the storm --------------------------------------------------------------------------------

STORM_TENANTS = 50
STORM_API_ATTEMPTS = 2000
STORM_PROCESSES = 2
STORM_PHONES_PER_TENANT = 2  # 100 phones dialing *45

# One OS process firing its share of the login attempts at once over HTTP; it prints, for
# each, the agent, the status, the error_id and the details of a refusal.
ATTEMPTS_PROCESS = textwrap.dedent(
    """
    import asyncio, json, sys, time
    import httpx

    async def main():
        job = json.loads(sys.stdin.read())
        limits = httpx.Limits(max_connections=len(job["attempts"]), max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=job["base_url"], limits=limits, timeout=120
        ) as client:
            async def attempt(token, user_id):
                started = time.perf_counter()
                response = await client.post(
                    f"/api/v1/agents/{user_id}/session",
                    headers={"Authorization": "Bearer " + token},
                )
                body = response.json() if response.content else {}
                return {
                    "user_id": user_id,
                    "status": response.status_code,
                    "error_id": body.get("error_id"),
                    "details": body.get("details"),
                    "ms": (time.perf_counter() - started) * 1000,
                }

            results = await asyncio.gather(*(attempt(t, u) for t, u in job["attempts"]))
        print(json.dumps(results))

    asyncio.run(main())
    """
)


async def timed(work: Awaitable[Any]) -> tuple[Any, float]:
    started = time.monotonic()
    return await work, time.monotonic() - started


class _Server(uvicorn.Server):
    """uvicorn without signal handlers of its own: the test session keeps Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def http_server(pbx: RunningApp) -> AsyncIterator[str]:
    """The session's app (its lifespan already running) behind a real HTTP server."""
    port = free_port()
    config = uvicorn.Config(
        pbx.app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        access_log=False,
        backlog=4096,
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def fire_from_processes(base_url: str, attempts: list[tuple[str, int]]) -> list[Any]:
    """Each process fires its share at once; their results, once every process is done."""
    shares = [attempts[i::STORM_PROCESSES] for i in range(STORM_PROCESSES)]
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            ATTEMPTS_PROCESS,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in shares
    ]
    outputs = await asyncio.gather(
        *(
            process.communicate(json.dumps({"base_url": base_url, "attempts": share}).encode())
            for process, share in zip(processes, shares, strict=True)
        )
    )
    results: list[Any] = []
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode(errors="replace")[-3000:]
        results += json.loads(out)
    return results


@dataclass
class Sampler:
    """Counts live sessions per tenant again and again while the storm runs."""

    conn: asyncpg.Connection
    tenant_ids: list[int]
    samples: int = 0
    worst: dict[int, int] = field(default_factory=dict)  # tenant → max(in use - licences)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            rows = await self.conn.fetch(
                "SELECT t.id, t.licences, count(s.id) AS in_use FROM tenants t "
                "LEFT JOIN agent_sessions s ON s.tenant_id = t.id AND s.ended_at IS NULL "
                "WHERE t.id = ANY($1) GROUP BY t.id",
                self.tenant_ids,
            )
            for row in rows:
                over = row["in_use"] - row["licences"]
                self.worst[row["id"]] = max(self.worst.get(row["id"], over), over)
            self.samples += 1
            await asyncio.sleep(0.02)


async def storm_tenants(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """50 tenants with 1 to 20 licences, a supervisor each (logged in), agents and phones.

    Rows go straight to the database, and reach Asterisk in one pass afterwards: through the
    API each tenant would be a pass of its own, and each reload of res_pjsip keeps Asterisk's
    SIP stack busy for a while.
    """
    supervisor_hash = await auth_service.hash_password(PASSWORD)
    tenants: list[dict[str, Any]] = []
    tokens: dict[int, str] = {}
    for index in range(STORM_TENANTS):
        licences = 1 + index % 20
        # Most tenants have more agents than licences; every fourth has fewer.
        api_agents = licences + 6 if index % 4 else max(1, licences - 4)
        slug = unique("storm")
        tenant_id = await conn.fetchval(
            "INSERT INTO tenants (slug, name, country, timezone, status, plan, licences, "
            "version) VALUES ($1, $2, 'FR', 'Europe/Paris', 'active', 'standard', $3, 1) "
            "RETURNING id",
            slug,
            f"Storm {index}",
            licences,
        )
        email = f"supervisor@{slug}.example"
        await conn.execute(
            "INSERT INTO users (tenant_id, email, display_name, role, password_hash, disabled, "
            "version) VALUES ($1, $2, 'Supervisor', 'supervisor', $3, false, 1)",
            tenant_id,
            email,
            supervisor_hash,
        )
        tokens[tenant_id] = await login(client, email, slug)
        agents = await provision(conn, tenant_id, slug, api_agents + STORM_PHONES_PER_TENANT)
        tenants.append(
            {
                "id": tenant_id,
                "licences": licences,
                "made": agents,
                "api": agents.agents[:api_agents],
                "phones": agents.agents[api_agents:],
            }
        )
    return tenants, tokens


async def test_a_login_storm_never_passes_any_tenants_licences(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    conn = await raw_connection(pbx)
    sampler_conn = await raw_connection(pbx)
    tenant_ids: list[int] = []
    try:
        tenants, tokens = await storm_tenants(client, conn)
        tenant_ids = [t["id"] for t in tenants]
        await configured(applier, set(tenant_ids))
        phones = [phone for t in tenants for phone in t["phones"]]
        await register(tmp_path, asterisk, sipp, phones)

        api_agents = [(tokens[t["id"]], a.user_id) for t in tenants for a in t["api"]]
        rng = random.Random(5)
        attempts = [api_agents[i % len(api_agents)] for i in range(STORM_API_ATTEMPTS)]
        rng.shuffle(attempts)
        assert len({user for _, user in attempts}) == len(api_agents)  # every agent tries

        sampler = Sampler(sampler_conn, tenant_ids)
        stop = asyncio.Event()
        sampling = asyncio.create_task(sampler.run(stop))
        started = time.monotonic()
        async with agi_commands(pbx) as commands, http_server(pbx) as base_url:
            results, phoned = await asyncio.gather(
                timed(fire_from_processes(base_url, attempts)),
                timed(dial(tmp_path, asterisk, phones, "*45", concurrency=100, rate=10)),
            )
            results, api_s = results
            phones_s = phoned[1]
        stop.set()
        await sampling
        elapsed = time.monotonic() - started

        # Never more sessions than licences, at any sampled instant, in any tenant.
        assert sampler.samples >= 50, sampler.samples
        assert max(sampler.worst.values()) <= 0, sampler.worst

        # Every attempt was answered: a session (201, or 200 when already logged in) or 409.
        by_status = Counter(r["status"] for r in results)
        assert set(by_status) <= {200, 201, 409}, by_status
        licences = {t["id"]: t["licences"] for t in tenants}
        tenant_of = {a.user_id: t["id"] for t in tenants for a in t["made"].agents}
        for result in results:
            if result["status"] == 409:
                assert result["error_id"] == "licence-exhausted", result
                details = result["details"]
                assert details["licences"] == licences[tenant_of[result["user_id"]]], result
                assert details["in_use"] >= details["licences"], result
                assert len(details["connected"]) == details["in_use"], result

        # Afterwards: exactly min(licences, agents) per tenant.
        for tenant in tenants:
            agents = len(tenant["made"].agents)
            live = await live_users(sessions, tenant["id"])
            assert len(live) == min(tenant["licences"], agents), (tenant["id"], live)

        # Every phone heard either that it is logged in or that all licences are in use,
        # and what it heard is what the database says.
        heard = prompts_by_device(commands)
        logged_in_by_phone = 0
        for tenant in tenants:
            live = await live_users(sessions, tenant["id"])
            for phone in tenant["phones"]:
                expected = LOGGED_IN_PROMPT if phone.user_id in live else REFUSED_PROMPT
                assert heard[phone.sip_username] == [expected], (phone, heard[phone.sip_username])
                logged_in_by_phone += phone.user_id in live
        assert 0 < logged_in_by_phone < len(phones)

        # Every refusal is an event: one per 409, one per refused phone.
        refused = await conn.fetch(
            "SELECT source, count(*) AS n FROM agent_state_events "
            "WHERE tenant_id = ANY($1) AND kind = 'refused' GROUP BY source",
            tenant_ids,
        )
        counts = {row["source"]: row["n"] for row in refused}
        assert counts.get("api", 0) == by_status[409]
        assert counts.get("phone", 0) == len(phones) - logged_in_by_phone

        # Asterisk's queue members are the sessions.
        worker = pbx.runtime.agents
        assert worker is not None
        await worker.settled()
        wanted: set[tuple[str, str]] = set()
        queues = []
        for tenant in tenants:
            wanted |= seats(tenant["made"], await live_users(sessions, tenant["id"]))
            queues.append(f"t{tenant['id']}-q{tenant['made'].queue_id}")
        assert await queue_members(pbx, queues) == wanted
        latencies = sorted(r["ms"] for r in results)
        p50, p99 = latencies[len(latencies) // 2], latencies[len(latencies) * 99 // 100]
        print(
            f"storm: {len(results)} API attempts ({api_s:.1f} s) + {len(phones)} phones "
            f"({phones_s:.1f} s) in {elapsed:.1f} s, "
            f"{dict(by_status)}, {sampler.samples} samples, p50 {p50:.0f} ms, p99 {p99:.0f} ms"
        )
    finally:
        if tenant_ids:
            await end_and_terminate(conn, tenant_ids)
            await configured(applier, set(tenant_ids))
        await conn.close()
        await sampler_conn.close()
