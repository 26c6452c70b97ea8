"""Calls through the real Asterisk end up as CDRs in Postgres, once each, whatever fails.

A tenant's number (made through the session's app, which generates Asterisk's dialplan)
plays a one-second announcement. Each call is a Local channel originated over AMI into
``graam-from-trunk``, as a carrier's call would enter: leg ``…-1`` is the caller's side,
leg ``…-2`` runs the tenant's inbound route. Each leg is one CDR.

The CDRs go to a control plane of their own (its own database, journal and CSV checkpoint),
which the tests stop and start; the session's app only provisions. A raw AMI connection of
the test's own clocks every leg from its ``Up`` to its ``Hangup``: the real call length.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Collection, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import phonenumbers
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami import FrameDecoder, encode_action
from graam_pbx.app import Endpoints
from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.cdr.backfill import LOG_NAME
from graam_pbx.cdr.worker import CdrWorker, PipelineState
from graam_pbx.db import plain_url
from graam_pbx.sandbox.ports import free_port
from graam_pbx.sandbox.postgres import EmbeddedPostgres
from graam_pbx.settings import Settings
from tests.cdr_events import wait_for_rows
from tests.conftest import Asterisk, RunningApp, start_app
from tests.factories import TenantWorld, make_world
from tests.unit.test_wav import make_wav

Sessions = async_sessionmaker[AsyncSession]

ANNOUNCEMENT_SECONDS = 1.0
TOLERANCE = Decimal("0.050")  # exact billsec against the measured call, seconds
_suffix = itertools.count(secrets.randbelow(10_000_000) * 10 + 5)


# ---- the tenant: a number that plays an announcement -----------------------------------------


@dataclass
class AnnouncedNumber:
    world: TenantWorld
    did: str


def new_did() -> str:
    while True:
        e164 = f"+331{next(_suffix) % 100_000_000:08d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(e164)):
            return e164


async def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def announced(
    pbx: RunningApp, client: httpx.AsyncClient, sessions: Sessions, applier: ConfigApplier
) -> AnnouncedNumber:
    world = await make_world(client, sessions)
    did = new_did()
    entry = [{"e164": did, "monthly_price": "1.00", "currency": "EUR"}]
    await created(
        await client.post("/api/v1/catalogue/numbers", headers=world.operator.headers, json=entry)
    )
    number = await created(
        await client.post("/api/v1/numbers", headers=world.admin.headers, json={"e164": did})
    )
    prompt = await created(
        await client.post(
            "/api/v1/prompts",
            headers=world.admin.headers,
            data={"name": "cdr-announcement"},
            files={"file": ("a.wav", make_wav(seconds=ANNOUNCEMENT_SECONDS), "audio/wav")},
        )
    )
    body = {
        "number_id": number["id"],
        "open_destination": {"type": "announcement", "id": prompt["id"]},
    }
    await created(
        await client.post("/api/v1/inbound-routes", headers=world.admin.headers, json=body)
    )
    await applier.settled()
    return AnnouncedNumber(world, did)


# ---- the control plane under test -------------------------------------------------------------


class ControlPlane:
    """An app whose CDR writer is under test, stopped and started at will."""

    def __init__(self, database_url: str, asterisk: Asterisk, state_dir: Path) -> None:
        self.database_url = database_url
        self.endpoints = Endpoints(
            database_url=database_url,
            ami=asterisk.ami_config(),
            cdr_csv_log=asterisk.sandbox.log_dir / LOG_NAME,
        )
        self.settings = Settings(agi_port=free_port(), cdr_dir=state_dir)
        self._running: AsyncIterator[RunningApp] | None = None
        self.app: RunningApp | None = None

    @property
    def cdr(self) -> CdrWorker:
        assert self.app is not None and self.app.runtime.cdr is not None
        return self.app.runtime.cdr

    async def start(self) -> None:
        self._running = start_app(self.endpoints, self.settings)
        self.app = await anext(self._running)
        await self.app.runtime.ami.wait_connected(timeout=20)

    async def stop(self) -> None:
        running, self._running, self.app = self._running, None, None
        if running is not None:
            await running.aclose()  # the lifespan's shutdown: the CDR writer flushes


@pytest.fixture
async def control_plane(
    database_url: str, asterisk: Asterisk, tmp_path: Path
) -> AsyncIterator[ControlPlane]:
    plane = ControlPlane(database_url, asterisk, tmp_path / "cdr")
    await plane.start()
    try:
        yield plane
    finally:
        await plane.stop()


# ---- calls and their clock --------------------------------------------------------------------


class CallClock:
    """Up and Hangup of every leg whose uniqueid starts with ``prefix`` (epoch seconds).

    Its own AMI connection read by its own thread. Each instant is the event's ``Timestamp``
    (manager.conf ``timestampevents = yes``): when Asterisk raised the event, not when this
    process got to read it, so neither the test's event loop (busy with two control planes) nor
    the machine's load can stretch or shrink the measured call.
    """

    def __init__(self, prefix: str, asterisk: Asterisk) -> None:
        self.prefix = prefix
        self.up: dict[str, float] = {}
        self.hangup: dict[str, float] = {}
        info = asterisk.info
        self._socket = socket.create_connection(("127.0.0.1", info.ami_port), timeout=5)
        self._socket.sendall(
            encode_action("Login", {"Username": info.ami_username, "Secret": info.ami_secret}, "1")
        )
        self._socket.settimeout(None)
        self._thread = threading.Thread(target=self._read, name="cdr-call-clock", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        decoder = FrameDecoder()
        while data := self._recv():
            for message in decoder.feed(data):
                unique = message.get("Uniqueid", "")
                if not unique.startswith(self.prefix):
                    continue
                if message.name == "Newstate" and message.get("ChannelStateDesc") == "Up":
                    self.up.setdefault(unique, float(message["Timestamp"]))
                elif message.name == "Hangup":
                    self.hangup.setdefault(unique, float(message["Timestamp"]))

    def _recv(self) -> bytes:
        try:
            return self._socket.recv(65536)
        except OSError:
            return b""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self._socket.close()

    async def wait_hung_up(self, legs: Collection[str], timeout: float = 60) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not all(leg in self.hangup for leg in legs):
                    await asyncio.sleep(0.02)
        except TimeoutError:
            missing = len([leg for leg in legs if leg not in self.hangup])
            raise AssertionError(f"{missing} legs still up after {timeout:g} s") from None

    def seconds(self, leg: str) -> Decimal:
        return Decimal(f"{self.hangup[leg] - self.up[leg]:.6f}")


@pytest.fixture
def clock(asterisk: Asterisk) -> Iterator[CallClock]:
    calls = CallClock(f"cdr{uuid.uuid4().hex[:8]}-", asterisk)
    try:
        yield calls
    finally:
        calls.close()


async def place_calls(
    pbx: RunningApp, number: AnnouncedNumber, clock: CallClock, count: int, *, every: float = 0.0
) -> list[str]:
    """Originate ``count`` calls to the number (one every ``every`` seconds); their call ids.

    Leg ``<id>-1`` is the caller's, ``<id>-2`` the one the tenant's dialplan answers.
    """
    calls = [f"{clock.prefix}{uuid.uuid4().hex[:10]}" for _ in range(count)]
    for call in calls:
        await pbx.runtime.ami.action(
            "Originate",
            {
                "Channel": f"Local/{number.did}@graam-from-trunk/n",
                "Application": "Wait",
                "Data": "30",
                "Account": f"t{number.world.tenant_id}",
                "ChannelId": f"{call}-1",
                "OtherChannelId": f"{call}-2",
                "Async": "true",
            },
        )
        if every:
            await asyncio.sleep(every)  # the pace of the calls, not a wait for a result
    return calls


def legs_of(calls: list[str]) -> list[str]:
    return [f"{call}-{leg}" for call in calls for leg in (1, 2)]


async def rows_of(database_url: str, legs: list[str]) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(plain_url(database_url))
    try:
        return list(
            await connection.fetch(
                "SELECT uniqueid, sequence, linkedid, tenant_id, direction, did, disposition, "
                "billsec, answered_at, source FROM cdrs WHERE uniqueid = ANY($1::text[])",
                legs,
            )
        )
    finally:
        await connection.close()


def assert_recorded_once_each(
    rows: list[asyncpg.Record], calls: list[str], number: AnnouncedNumber, clock: CallClock
) -> None:
    """One row per leg, the tenant's, grouped by linkedid, billed to 50 ms of the real call."""
    by_leg = {row["uniqueid"]: row for row in rows}
    assert len(rows) == len(by_leg) == 2 * len(calls), "a leg missing or recorded twice"
    for leg in (1, 2):
        assert sum(1 for row in rows if row["uniqueid"].endswith(f"-{leg}")) == len(calls)
    assert {row["tenant_id"] for row in rows} == {number.world.tenant_id}
    for call in calls:
        caller, answered = by_leg[f"{call}-1"], by_leg[f"{call}-2"]
        assert caller["linkedid"] == answered["linkedid"] == f"{call}-1"
        assert (answered["direction"], answered["did"]) == ("inbound", number.did)
        assert answered["disposition"] == caller["disposition"] == "ANSWERED"
    off = {
        row["uniqueid"]: row["billsec"] - clock.seconds(row["uniqueid"])
        for row in rows
        if abs(row["billsec"] - clock.seconds(row["uniqueid"])) > TOLERANCE
    }
    assert not off, f"billsec off the measured call by more than 50 ms: {off}"
    assert min(row["billsec"] for row in rows) >= Decimal(ANNOUNCEMENT_SECONDS)


# ---- the tests ---------------------------------------------------------------------------------


async def test_fifty_calls_give_one_exact_cdr_per_leg(
    pbx: RunningApp, announced: AnnouncedNumber, control_plane: ControlPlane, clock: CallClock
) -> None:
    calls = await place_calls(pbx, announced, clock, 50)
    legs = legs_of(calls)
    await clock.wait_hung_up(legs)
    await wait_for_rows(control_plane.database_url, 100, "uniqueid = ANY($1::text[])", legs)

    rows = await rows_of(control_plane.database_url, legs)

    assert_recorded_once_each(rows, calls, announced, clock)
    assert {row["source"] for row in rows} == {"ami"}


async def test_postgres_down_for_20_seconds_loses_and_doubles_nothing(
    pbx: RunningApp,
    announced: AnnouncedNumber,
    control_plane: ControlPlane,
    clock: CallClock,
    postgres: EmbeddedPostgres,
) -> None:
    cdr = control_plane.cdr
    journaled = cdr.journaled
    stopped_at = time.monotonic()
    await postgres.stop()
    try:
        # 100 calls over 20 seconds, all ending while Postgres is down.
        calls = await place_calls(pbx, announced, clock, 100, every=0.2)
        legs = legs_of(calls)
        await clock.wait_hung_up(legs)
        async with asyncio.timeout(30):
            while cdr.journaled < journaled + len(legs):
                await asyncio.sleep(0.05)
        assert time.monotonic() - stopped_at >= 20
        assert control_plane.app is not None
        ready = (await control_plane.app.client.get("/readyz")).json()
        assert ready["checks"]["cdr"]["state"] == PipelineState.JOURNALING.value
        assert ready["checks"]["cdr"]["journal_bytes"] > 0
    finally:
        await postgres.start()
    await wait_for_rows(control_plane.database_url, 200, "uniqueid = ANY($1::text[])", legs)
    async with asyncio.timeout(30):
        while cdr.state is not PipelineState.WRITING:
            await asyncio.sleep(0.05)
    assert cdr.journal.empty

    # Asterisk's CSV log holds the same CDRs: reading it again changes nothing.
    duplicates = cdr.duplicates
    assert control_plane.app is not None
    control_plane.app.runtime.bus.publish_resync(False)
    async with asyncio.timeout(30):
        while cdr.duplicates < duplicates + len(legs):
            await asyncio.sleep(0.05)

    rows = await rows_of(control_plane.database_url, legs)
    assert_recorded_once_each(rows, calls, announced, clock)
    assert {row["source"] for row in rows} == {"ami"}  # journaled, then replayed


async def test_calls_made_while_the_control_plane_is_down_are_backfilled_once(
    pbx: RunningApp,
    announced: AnnouncedNumber,
    control_plane: ControlPlane,
    clock: CallClock,
    asterisk: Asterisk,
) -> None:
    seen = await place_calls(pbx, announced, clock, 10)
    await clock.wait_hung_up(legs_of(seen))
    await wait_for_rows(control_plane.database_url, 20, "uniqueid = ANY($1::text[])", legs_of(seen))

    await control_plane.stop()
    missed = await place_calls(pbx, announced, clock, 50)
    await clock.wait_hung_up(legs_of(missed))
    log = asterisk.sandbox.log_dir / LOG_NAME
    async with asyncio.timeout(30):
        while not all(f'"{leg}"' in log.read_text() for leg in legs_of(missed)):
            await asyncio.sleep(0.05)
    await control_plane.start()

    everything = seen + missed
    await wait_for_rows(
        control_plane.database_url, 120, "uniqueid = ANY($1::text[])", legs_of(everything)
    )
    rows = await rows_of(control_plane.database_url, legs_of(everything))
    assert_recorded_once_each(rows, everything, announced, clock)
    sources = {row["uniqueid"]: row["source"] for row in rows}
    assert {sources[leg] for leg in legs_of(seen)} == {"ami"}
    assert {sources[leg] for leg in legs_of(missed)} == {"csv"}
