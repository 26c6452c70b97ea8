"""A call centre's day in under a minute, with a known truth: 30 callers into one queue.

Every caller's fate is fixed by the scenario, not by timing: its group (and so its caller
number) says which outcome its queue call must have.

- one caller while the queue has no member, the queue refusing to be joined empty
  (``join_empty: strict``): ``joinempty``, then the fallback;
- one caller of a second number routed to the queue, out of hours: ``closed``;
- then two agents log in (the control plane makes them members), neither answering: N rings
  until the queue's ring timeout, R refuses with 486. Callers hang up after 3 s (short
  abandons: under the queue's 5 s), after 7 s (abandons) or wait until the queue's maximum
  wait (11 s) and reach its fallback: ``timeout``;
- then A, who answers and talks a second, logs in: each answered caller calls once Asterisk
  sees A free, so that A answers every one of them (N and R ring along).

The fallback (of the queue, and of the closed number) is the extension of a fourth phone, O,
which answers and talks a second: its answered legs count the timeouts, the join-empty and
the closed caller. Waits are judged within tolerances drawn from the scenario's own pauses.

The second test runs a smaller day through a real ``graam-pbx run`` that is killed with
SIGKILL in the middle and started again: every queue call and every leg is there once.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import secrets
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami import AmiConfig, AmiSupervisor, EventBus
from graam_pbx.cdr.backfill import LOG_NAME as CDR_LOG_NAME
from graam_pbx.db import create_engine, session_factory
from graam_pbx.queue_calls.worker import Checkpoint as QueueLogCheckpoint
from graam_pbx.queue_calls.worker import read_log
from graam_pbx.sandbox.ports import free_port
from graam_pbx.sandbox.postgres import EmbeddedPostgres
from graam_pbx.sandbox.stack import asterisk_sandbox
from graam_pbx.settings import Settings
from tests.ami_connection import connected_ami
from tests.conftest import RunningApp, create_database, drop_database
from tests.e2e.console import Console, start_command
from tests.e2e.listings import every_item, listed
from tests.e2e.phones import reachable_phone
from tests.e2e.sipp import SippPool, free_udp_port
from tests.e2e.test_calls import (
    CARRIER_IP,
    closed_number,
    created,
    new_agent,
    new_device,
    new_number,
    new_trunk,
    route_number,
)
from tests.factories import TenantWorld, make_world
from tests.waiting import until

Sessions = async_sessionmaker[AsyncSession]

# The queue's settings the truth depends on (seconds).
RING_TIMEOUT = 2  # N rings this long, then the queue tries again after RETRY
RETRY = 1
MAX_WAIT = 11  # then the fallback
SERVICE_LEVEL = 5  # answered (or abandoned) within it meets the service level
SHORT_ABANDON = 5  # a caller hanging up sooner is a short abandon
SHORT_PAUSE = 3  # carrier_queue_abandon.xml hangs up after this
LONG_PAUSE = 7  # carrier_queue_abandon_late.xml
TALK = 1  # queue_agent_answers.xml talks this long
# How far a wait may drift from the pause that made it: call set-up and a busy machine.
SLACK = Decimal("1.5")
ZERO = Decimal(0)


@dataclass(frozen=True)
class Group:
    """Callers that share one fate: their caller number, scenario, count and outcome."""

    caller: str
    scenario: str
    calls: int
    outcome: str


@dataclass(frozen=True)
class Day:
    joinempty: Group
    closed: Group
    short: Group
    long: Group
    timeout: Group
    answered: Group

    @property
    def groups(self) -> tuple[Group, ...]:
        return (self.joinempty, self.closed, self.short, self.long, self.timeout, self.answered)

    @property
    def total(self) -> int:
        return sum(group.calls for group in self.groups)

    @property
    def fallback_legs(self) -> int:
        """Calls the overflow phone O answers: after a time-out, refused, or out of hours."""
        return self.timeout.calls + self.joinempty.calls + self.closed.calls


def day(short: int, long: int, timeout: int, answered: int) -> Day:
    return Day(
        joinempty=Group("+33611110001", "carrier_queue_hold.xml", 1, "joinempty"),
        closed=Group("+33611110002", "carrier_queue_hold.xml", 1, "closed"),
        short=Group("+33611110003", "carrier_queue_abandon.xml", short, "abandoned"),
        long=Group("+33611110004", "carrier_queue_abandon_late.xml", long, "abandoned"),
        timeout=Group("+33611110005", "carrier_queue_hold.xml", timeout, "timeout"),
        answered=Group("+33611110006", "carrier_queue_hold.xml", answered, "answered"),
    )


FULL_DAY = day(short=6, long=6, timeout=10, answered=6)  # 30 callers


@dataclass
class Plane:
    """A control plane as a test drives it: its API, and an AMI connection and event bus
    on its Asterisk."""

    client: httpx.AsyncClient
    ami: AmiSupervisor
    bus: EventBus


@dataclass
class Centre:
    """The tenant's queue, numbers and the four phones' devices."""

    world: TenantWorld
    queue: dict[str, Any]
    queue_name: str
    open_number: dict[str, Any]
    closed_number: dict[str, Any]
    answers: dict[str, Any]  # A
    rings: dict[str, Any]  # N
    rejects: dict[str, Any]  # R
    overflow: dict[str, Any]  # O


async def build_centre(client: httpx.AsyncClient, world: TenantWorld) -> Centre:
    admin = world.admin.headers
    answers = await new_device(client, world, "201", world.agent.user_id)
    rings = await new_device(client, world, "202", await new_agent(client, world))
    rejects = await new_device(client, world, "203", await new_agent(client, world))
    overflow = await new_device(client, world, "209", await new_agent(client, world))
    queue = await created(
        await client.post(
            "/api/v1/queues",
            headers=admin,
            json={
                "name": "truth",
                "strategy": "ringall",
                "ring_timeout": RING_TIMEOUT,
                "retry": RETRY,
                "max_wait": MAX_WAIT,
                "fallback": {"type": "extension", "id": overflow["id"]},
                "service_level_seconds": SERVICE_LEVEL,
                "short_abandon_seconds": SHORT_ABANDON,
                "join_empty": "strict",
            },
        )
    )
    assert queue["join_empty"] == "strict", queue
    for device in (answers, rings, rejects):  # members once logged in
        await created(
            await client.post(
                f"/api/v1/queues/{queue['id']}/members",
                headers=admin,
                json={"user_id": device["user_id"]},
            )
        )
    open_number = await new_number(client, world)
    await route_number(client, world, open_number, {"type": "queue", "id": queue["id"]})
    out_of_hours = await closed_number(
        client,
        world,
        "no-opening-hours",
        {"type": "queue", "id": queue["id"]},
        {"type": "extension", "id": overflow["id"]},
    )
    await new_trunk(client, world, CARRIER_IP)
    return Centre(
        world=world,
        queue=queue,
        queue_name=f"t{world.tenant_id}-q{queue['id']}",
        open_number=open_number,
        closed_number=out_of_hours,
        answers=answers,
        rings=rings,
        rejects=rejects,
        overflow=overflow,
    )


async def log_in(plane: Plane, centre: Centre, device: dict[str, Any]) -> None:
    """The supervisor logs the device's agent in: the control plane makes it a member of
    the queue in Asterisk (``agent-<user id>``), as it will again after a restart."""
    user_id = device["user_id"]
    response = await plane.client.post(
        f"/api/v1/agents/{user_id}/session",
        headers=centre.world.supervisor.headers,
        json={"device_id": device["id"]},
    )
    assert response.status_code == 201, response.text

    async def member() -> bool:
        events = await plane.ami.action_list("QueueStatus", {"Queue": centre.queue_name})
        return any(
            event.name == "QueueMember" and event.get("Name") == f"agent-{user_id}"
            for event in events
        )

    await until(member, f"agent-{user_id} in the queue", timeout=30)


async def member_free(plane: Plane, centre: Centre, device: dict[str, Any]) -> None:
    """The device's agent is a member whose device Asterisk sees idle (``Status: 1``, not in
    use): the queue will ring it for the next caller."""
    name = f"agent-{device['user_id']}"

    async def idle() -> bool:
        events = await plane.ami.action_list("QueueStatus", {"Queue": centre.queue_name})
        return any(
            event.name == "QueueMember"
            and event.get("Name") == name
            and event.get("Status") == "1"
            and event.get("InCall") == "0"
            for event in events
        )

    await until(idle, f"{name} free", timeout=15)


async def call(sipp: SippPool, did: str, group: Group, calls: int | None = None) -> None:
    """``calls`` (default: all) of ``group``'s callers, placed together, each as written."""
    count = group.calls if calls is None else calls
    keys = {
        "caller": group.caller,
        "rtp_ip": CARRIER_IP,
        "rtp_port": str(free_udp_port(CARRIER_IP, pair=True)),
    }
    result = await sipp.uac(
        group.scenario, ip=CARRIER_IP, service=did, keys=keys, calls=count, rate=count
    ).run()
    assert result.ok, result.describe()
    if count > 1:
        assert result.count("SuccessfulCall") == count, result.describe()


async def wait_for_callers_gone(plane: Plane, centre: Centre) -> None:
    """No caller left in the queue (a member added now could take one)."""

    async def empty() -> bool:
        events = await plane.ami.action_list("QueueStatus", {"Queue": centre.queue_name})
        return not any(event.name == "QueueEntry" for event in events)

    await until(empty, "empty queue", timeout=15)


async def run_day(
    plane: Plane,
    sipp: SippPool,
    centre: Centre,
    truth: Day,
    *,
    midway: Callable[[asyncio.Task[None]], Awaitable[None]] | None = None,
) -> None:
    """The scenario: phones up, then the three phases; ``midway`` runs while the second
    phase's callers are in the queue, given the task of the short abandons' callers."""
    await reachable_phone(plane.ami, plane.bus, sipp, centre.overflow, "queue_agent_answers.xml")
    await reachable_phone(plane.ami, plane.bus, sipp, centre.rings, "queue_agent_rings.xml")
    await reachable_phone(plane.ami, plane.bus, sipp, centre.rejects, "queue_agent_rejects.xml")
    await reachable_phone(plane.ami, plane.bus, sipp, centre.answers, "queue_agent_answers.xml")
    open_did, closed_did = centre.open_number["e164"], centre.closed_number["e164"]

    # 1. Nobody in the queue: refused (join_empty strict); and a call out of hours.
    await asyncio.gather(
        call(sipp, open_did, truth.joinempty), call(sipp, closed_did, truth.closed)
    )
    # 2. Members who never answer: every caller leaves unanswered, by its own clock.
    await log_in(plane, centre, centre.rings)
    await log_in(plane, centre, centre.rejects)
    short = asyncio.create_task(call(sipp, open_did, truth.short))
    others = asyncio.gather(call(sipp, open_did, truth.long), call(sipp, open_did, truth.timeout))
    try:
        if midway is not None:
            await midway(short)
    finally:
        await asyncio.gather(short, others)
    await wait_for_callers_gone(plane, centre)
    # 3. A joins; each answered caller calls once A has hung up the previous one.
    await log_in(plane, centre, centre.answers)
    for _ in range(truth.answered.calls):
        await member_free(plane, centre, centre.answers)
        await call(sipp, open_did, truth.answered, calls=1)


def seconds(value: str) -> Decimal:
    return Decimal(value)


def check_queue_calls(rows: list[dict[str, Any]], centre: Centre, truth: Day) -> None:
    """Each group's rows: its count, its outcome, its waits within the scenario's pauses."""
    by_caller: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_caller.setdefault(row["caller_number"], []).append(row)
        assert row["queue_id"] == centre.queue["id"], row
        assert row["queue_name"] == centre.queue_name, row
    assert {caller: len(group) for caller, group in by_caller.items()} == {
        group.caller: group.calls for group in truth.groups
    }
    for group in truth.groups:
        assert {row["outcome"] for row in by_caller[group.caller]} == {group.outcome}, group
    assert len({(row["caller_uniqueid"], row["entry"]) for row in rows}) == truth.total

    answers_id = centre.answers["user_id"]
    for row in by_caller[truth.answered.caller]:
        assert row["agent_id"] == answers_id, row
        assert row["answered_at"] is not None, row
        # A was free: rung at once, it answers at once.
        assert seconds(row["wait_seconds"]) <= SLACK, row
        assert TALK - SLACK / 2 <= seconds(row["talk_seconds"]) <= TALK + SLACK, row
    for row in by_caller[truth.short.caller]:
        wait = seconds(row["wait_seconds"])
        assert SHORT_PAUSE - SLACK <= wait < SHORT_ABANDON, row
        assert row["answered_at"] is None and row["agent_id"] is None, row
        assert row["abandon_position"] is not None, row
    for row in by_caller[truth.long.caller]:
        wait = seconds(row["wait_seconds"])
        assert SHORT_ABANDON < wait <= LONG_PAUSE + SLACK, row
        assert wait < MAX_WAIT, row
        assert row["answered_at"] is None and row["abandon_position"] is not None, row
    for row in by_caller[truth.timeout.caller]:
        wait = seconds(row["wait_seconds"])
        assert MAX_WAIT - 1 <= wait <= MAX_WAIT + 2 * SLACK, row
        assert row["answered_at"] is None and row["agent_id"] is None, row
    for group in (truth.joinempty, truth.closed):
        (row,) = by_caller[group.caller]
        assert seconds(row["wait_seconds"]) == 0, row
        assert row["answered_at"] is None and row["position_at_entry"] is None, row
    # The number dialled, where the row has it.
    for row in rows:
        dialled = (centre.closed_number if row["outcome"] == "closed" else centre.open_number)[
            "e164"
        ]
        assert row["did"] in (None, dialled), row


async def check_legs(client: httpx.AsyncClient, centre: Centre, truth: Day) -> None:
    """The agents' legs: A's answered ones are A's, O's count the fallbacks; N and R never
    answered."""
    admin = centre.world.admin.headers
    path = "/api/v1/cdrs"
    answered = await listed(
        client, admin, path, truth.answered.calls, agent_id=str(centre.answers["user_id"])
    )
    for leg in answered:
        assert leg["disposition"] == "answered", leg
        assert leg["device"] == centre.answers["sip_username"], leg
        assert leg["queue_id"] == centre.queue["id"], leg
        assert leg["direction"] == "inbound", leg
        assert leg["billable"] is False, leg
        assert leg["answered_at"] is not None, leg
    assert len({leg["linkedid"] for leg in answered}) == truth.answered.calls
    fallbacks = await listed(
        client, admin, path, truth.fallback_legs, agent_id=str(centre.overflow["user_id"])
    )
    assert {leg["disposition"] for leg in fallbacks} == {"answered"}, fallbacks
    assert {leg["device"] for leg in fallbacks} == {centre.overflow["sip_username"]}
    for device in (centre.rings, centre.rejects):
        legs = await every_item(client, admin, path, agent_id=str(device["user_id"]))
        # Asterisk logs no CDR of a member's unanswered ring (cdr.conf ``unanswered = no``).
        assert "answered" not in {leg["disposition"] for leg in legs}, legs


async def every_leg(client: httpx.AsyncClient, centre: Centre) -> list[dict[str, Any]]:
    """Every leg of the tenant, every page."""
    return await every_item(client, centre.world.admin.headers, "/api/v1/cdrs")


async def check_every_call_has_legs(
    client: httpx.AsyncClient, centre: Centre, rows: list[dict[str, Any]]
) -> None:
    """Each queue call's caller has its legs, under the call's linkedid, and no other call."""
    calls = {row["linkedid"] for row in rows}
    assert len(calls) == len(rows)

    async def all_there() -> bool:
        return {leg["linkedid"] for leg in await every_leg(client, centre)} == calls

    await until(all_there, "legs of every queue call", timeout=30)


def expected_kpis(rows: list[dict[str, Any]], truth: Day) -> dict[str, Any]:
    """The queue's KPIs as the scenario fixes them (waits from the rows themselves)."""
    answered = [seconds(r["wait_seconds"]) for r in rows if r["outcome"] == "answered"]
    abandoned = [seconds(r["wait_seconds"]) for r in rows if r["outcome"] == "abandoned"]
    judged = truth.answered.calls + truth.short.calls + truth.long.calls
    milli = Decimal("0.001")
    ratio = Decimal("0.0001")
    return {
        "offered": truth.total,
        "answered": truth.answered.calls,
        "abandoned": truth.short.calls + truth.long.calls,
        "short_abandoned": truth.short.calls,
        "timeout": truth.timeout.calls,
        "joinempty": truth.joinempty.calls,
        "closed": truth.closed.calls,
        "full": 0,
        "leaveempty": 0,
        "exitkey": 0,
        "transferred": 0,
        # Answered at once; short abandons (3 s) within 5 s, the others (7 s) not.
        "answered_within": truth.answered.calls,
        "abandoned_within": truth.short.calls,
        "service_level_answered": str(Decimal(1).quantize(ratio)),
        "service_level_perf2": str(
            (Decimal(truth.answered.calls + truth.short.calls) / judged).quantize(ratio)
        ),
        "service_level_offered": str((Decimal(truth.answered.calls) / judged).quantize(ratio)),
        "service_level_excluding_short": str(
            (Decimal(truth.answered.calls) / (judged - truth.short.calls)).quantize(ratio)
        ),
        "abandon_rate": str(
            (Decimal(truth.short.calls + truth.long.calls) / truth.total).quantize(ratio)
        ),
        "average_speed_of_answer": str((sum(answered, ZERO) / len(answered)).quantize(milli)),
        "average_time_to_abandon": str((sum(abandoned, ZERO) / len(abandoned)).quantize(milli)),
        "longest_wait": str(max(seconds(r["wait_seconds"]) for r in rows).quantize(milli)),
    }


async def check_kpis(
    client: httpx.AsyncClient,
    centre: Centre,
    rows: list[dict[str, Any]],
    truth: Day,
    since: datetime,
) -> dict[str, Any]:
    params = {
        "queue_id": str(centre.queue["id"]),
        "interval": "hour",
        "since": (since - timedelta(hours=1)).isoformat(),
        "until": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    }
    expected = expected_kpis(rows, truth)
    totals: dict[str, Any] = {}

    async def counted() -> bool:
        nonlocal totals
        response = await client.get(
            "/api/v1/stats/queues", headers=centre.world.supervisor.headers, params=params
        )
        assert response.status_code == 200, response.text
        (totals,) = response.json()["totals"]
        return bool(totals["offered"] == truth.total)

    await until(counted, "KPIs of every queue call", timeout=30)
    assert {key: _plain(totals[key]) for key in expected} == expected, totals
    return totals


def _plain(value: Any) -> Any:
    """A Decimal string as Decimal's own str of its value (so "1.0000" == str(Decimal))."""
    return str(Decimal(value)) if isinstance(value, str) else value


async def check_asterisk_counters(
    plane: Plane, centre: Centre, truth: Day, totals: dict[str, Any]
) -> None:
    """Asterisk's own counters for the queue, where its definitions are ours.

    Asterisk counts a caller whose maximum wait ran out as abandoned (``record_abandoned``:
    it also sends ``QueueCallerAbandon``); it never counts a caller refused on entry or one
    who never entered (closed)."""
    events = await plane.ami.action_list("QueueStatus", {"Queue": centre.queue_name})
    (params,) = [event for event in events if event.name == "QueueParams"]
    assert int(params.get("Completed", "-1")) == totals["answered"], params
    assert int(params.get("Abandoned", "-1")) == totals["abandoned"] + totals["timeout"], params
    assert int(params.get("ServiceLevel", "-1")) == SERVICE_LEVEL, params
    perf = Decimal(params.get("ServicelevelPerf", "-1"))
    assert perf == (Decimal(totals["service_level_answered"]) * 100).quantize(Decimal("0.1"))
    # ServicelevelPerf2 counts time-outs as abandons: (answered + abandoned within T) over
    # (answered + abandoned + timed out).
    within = totals["answered_within"] + totals["abandoned_within"]
    judged = totals["answered"] + totals["abandoned"] + totals["timeout"]
    perf2 = Decimal(params.get("ServicelevelPerf2", "-1"))
    assert perf2 == (Decimal(100 * within) / judged).quantize(Decimal("0.1")), params


async def test_a_day_with_a_known_truth_gives_exact_rows_legs_and_kpis(
    pbx: RunningApp, client: httpx.AsyncClient, sessions: Sessions, sipp: SippPool
) -> None:
    since = datetime.now(UTC)
    plane = Plane(client=client, ami=pbx.runtime.ami, bus=pbx.runtime.bus)
    world = await make_world(client, sessions)
    centre = await build_centre(client, world)
    applier = pbx.runtime.applier
    assert applier is not None
    await applier.settled()
    truth = FULL_DAY
    assert truth.total == 30

    await run_day(plane, sipp, centre, truth)

    rows = await listed(client, world.supervisor.headers, "/api/v1/queue-calls", truth.total)
    check_queue_calls(rows, centre, truth)
    await check_legs(client, centre, truth)
    await check_every_call_has_legs(client, centre, rows)
    totals = await check_kpis(client, centre, rows, truth, since)
    await check_asterisk_counters(plane, centre, truth, totals)
    outcomes = Counter(row["outcome"] for row in rows)
    assert outcomes == Counter(
        {"answered": 6, "abandoned": 12, "timeout": 10, "joinempty": 1, "closed": 1}
    )


# ---- kill -9 of the control plane in the middle of the day ----------------------------------


@dataclass
class ControlPlane:
    """``graam-pbx run`` beside its own Asterisk sandbox and a database of the session's
    Postgres; killed and started again by the test, its Asterisk living on."""

    env: dict[str, str]
    console: Console | None = None
    runs: int = 0
    _drain: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.env['GRAAM_API_PORT']}"

    def settings(self) -> Settings:
        return Settings(
            data_dir=Path(self.env["GRAAM_DATA_DIR"]),
            ami_port=int(self.env["GRAAM_AMI_PORT"]),
            sip_port=int(self.env["GRAAM_SIP_PORT"]),
            asterisk_rootfs=Path(self.env["GRAAM_ASTERISK_ROOTFS"]),
        )

    async def start(self) -> None:
        self.console = Console(await start_command("run", env=self.env))
        await self.console.wait_for_line("[api]", timeout=180)
        # Its console read on to its end (a full pipe would block it), kept for a failure.
        self.runs += 1
        log = Path(self.env["GRAAM_DATA_DIR"]) / f"console-{self.runs}.log"
        self._drain = asyncio.create_task(self._keep(self.console, log))
        async with httpx.AsyncClient(base_url=self.base_url) as client:

            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200

            await until(ready, "ready control plane", timeout=60)

    @staticmethod
    async def _keep(console: Console, log: Path) -> None:
        assert console.process.stdout is not None
        with log.open("w") as out:
            out.write(console.text() + "\n")
            while raw := await console.process.stdout.readline():
                out.write(raw.decode(errors="replace"))
                out.flush()

    async def _drained(self) -> None:
        if self._drain is not None:
            async with asyncio.timeout(15):
                await self._drain
            self._drain = None

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, nothing written after this instant."""
        assert self.console is not None
        process = self.console.process
        process.send_signal(signal.SIGKILL)
        async with asyncio.timeout(15):
            await process.wait()
        assert process.returncode == -signal.SIGKILL
        await self._drained()
        self.console = None

    async def stop(self) -> None:
        if self.console is not None:
            await self.console.terminate()
            await self._drained()
            self.console = None


@pytest.fixture
async def control_plane(tmp_path: Path, postgres: EmbeddedPostgres) -> AsyncIterator[ControlPlane]:
    database = f"truth_{uuid.uuid4().hex[:8]}"
    await create_database(postgres.url(), database)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAAM_")}
    env.update(
        GRAAM_DATA_DIR=str(tmp_path / "var"),
        GRAAM_DATABASE_URL=postgres.url(database),
        GRAAM_DEMO_SEED="false",
        GRAAM_API_PORT=str(free_port()),
        GRAAM_AMI_PORT=str(free_port()),
        GRAAM_AMI_SECRET=secrets.token_urlsafe(24),
        GRAAM_AGI_PORT=str(free_port()),
        GRAAM_SIP_PORT=str(free_port()),
        GRAAM_ASTERISK_ROOTFS=str(Settings().asterisk_rootfs),
        PYTHONUNBUFFERED="1",
    )
    plane = ControlPlane(env)
    try:
        yield plane
    finally:
        await plane.stop()
        # A control plane that adopted its Asterisk (after the kill) leaves it running.
        sandbox = asterisk_sandbox(plane.settings())
        await sandbox.stop()
        await drop_database(postgres.url(), database)


@contextlib.asynccontextmanager
async def ami_of(plane: ControlPlane) -> AsyncIterator[tuple[AmiSupervisor, EventBus]]:
    """The test's own AMI connection to the control plane's Asterisk (which outlives it)."""
    settings = plane.settings()
    config = AmiConfig.from_settings(settings, secret=plane.env["GRAAM_AMI_SECRET"])
    async with connected_ami(config, timeout=30) as connection:
        yield connection


async def settled(client: httpx.AsyncClient, world: TenantWorld) -> None:
    """The tenant's configuration live in Asterisk."""

    async def live() -> bool:
        response = await client.get("/api/v1/config/status", headers=world.admin.headers)
        assert response.status_code == 200, response.text
        return not response.json()["pending"]

    await until(live, "configuration applied", timeout=60)


KILLED_DAY = day(short=2, long=2, timeout=3, answered=3)  # 12 callers


async def test_kill_9_of_the_control_plane_mid_day_loses_and_doubles_nothing(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    truth = KILLED_DAY
    await control_plane.start()
    engine = create_engine(control_plane.env["GRAAM_DATABASE_URL"])
    sessions = session_factory(engine)
    async with (
        contextlib.AsyncExitStack() as stack,
        httpx.AsyncClient(base_url=control_plane.base_url, timeout=30) as client,
        ami_of(control_plane) as (ami, bus),
    ):
        stack.push_async_callback(engine.dispose)
        plane = Plane(client=client, ami=ami, bus=bus)
        world = await make_world(client, sessions)
        centre = await build_centre(client, world)
        await settled(client, world)
        sipp = SippPool(tmp_path / "sipp", f"127.0.0.1:{control_plane.env['GRAAM_SIP_PORT']}")
        killed = False

        async def kill_and_restart(short: asyncio.Task[None]) -> None:
            # The second phase's callers are in the queue: killed now, the control plane is
            # started again only once the short abandons have hung up, unheard; the others
            # leave while it starts or once it runs.
            async def in_queue() -> bool:
                events = await ami.action_list("QueueStatus", {"Queue": centre.queue_name})
                return any(event.name == "QueueEntry" for event in events)

            await until(in_queue, "callers in the queue", timeout=15)
            nonlocal killed
            await control_plane.kill()
            killed = True
            await asyncio.shield(short)
            await control_plane.start()

        try:
            await run_day(plane, sipp, centre, truth, midway=kill_and_restart)
        finally:
            await sipp.close()
        assert killed

        rows = await listed(client, world.supervisor.headers, "/api/v1/queue-calls", truth.total)
        check_queue_calls(rows, centre, truth)
        # Nobody heard the short abandons hang up: their rows are from queue_log.
        short = [row for row in rows if row["caller_number"] == truth.short.caller]
        assert {row["source"] for row in short} == {"queue_log"}, short
        assert {row["source"] for row in rows} <= {"ami", "queue_log"}, rows
        # The same calls in Asterisk's own queue_log, each once.
        log_dir = asterisk_sandbox(control_plane.settings()).log_dir
        logged = [
            row
            for row in read_log(log_dir / "queue_log", QueueLogCheckpoint()).rows
            if row.tenant_id == world.tenant_id
        ]
        assert sorted((r.caller_uniqueid, r.queue_name, r.entry) for r in logged) == sorted(
            (r["caller_uniqueid"], r["queue_name"], r["entry"]) for r in rows
        )
        await check_legs(client, centre, truth)
        await check_every_call_has_legs(client, centre, rows)
        # Every CDR Asterisk wrote, once: its own CSV log against the API's legs.
        written = asterisk_cdrs(log_dir / CDR_LOG_NAME, world.tenant_id)

        async def every_cdr() -> bool:
            return len(await every_leg(client, centre)) >= len(written)

        await until(every_cdr, "every CDR of Asterisk's log", timeout=30)
        legs = await every_leg(client, centre)
        keys = [(leg["uniqueid"], leg["sequence"]) for leg in legs]
        assert len(keys) == len(set(keys)), Counter(keys).most_common(3)
        assert set(keys) == written


def asterisk_cdrs(path: Path, tenant_id: int) -> set[tuple[str, int]]:
    """(uniqueid, sequence) of each of the tenant's rows in Asterisk's CSV log of CDRs."""
    rows = list(csv.reader(path.read_text().splitlines()))
    # Layout: asterisk_conf/cdr_custom.conf ("graam-cdr-<n>", uniqueid, sequence, linkedid, ...,
    # accountcode at 8, tenantid at 10, in every layout): the tenant is the accountcode's, else
    # the TenantID's.
    tag = f"t{tenant_id}"
    return {
        (row[1], int(row[2]))
        for row in rows
        if row and row[0].startswith("graam-cdr-") and tag in (row[8], row[10])
    }
