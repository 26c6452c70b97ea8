"""Webhook deliveries at 1,000 events a second to 50 endpoints, against the bare HTTP limit.

python -m bench.webhooks [--quick] [--seconds S] [--rate R]

An embedded Postgres, migrated to head, gets TENANTS tenants, each with one enabled endpoint
subscribed to ``call.ended`` on a receiver of its own port (bench/webhook_receiver.py: a
process of its own on HOST, keep-alive HTTP/1.1 answering 200, noting each event's arrival).

The sender under test is production's: graam_pbx.webhooks.delivery.WebhookDeliverer (its
default concurrency, 127.0.0.0/8 allowed) woken by the fan-out trigger's ``pg_notify`` on a
LISTEN connection of its own (graam_pbx.cluster.signals.Listener), wired as graam_pbx/app.py
wires it, running in this process with the pool the worker has. The load: ``--rate`` events
a second (1,000) for ``--seconds`` (30; 5 with ``--quick``), ``call.ended`` events with a
CDR's data, one call each, spread over the tenants in turn, inserted into ``webhook_events``
every TICK seconds as one statement (the trigger fans each batch out to its deliveries and
notifies). Each event is dated when its batch is due: its insertion while this process keeps
the schedule; a process too busy to keep it is not excused the delay (late_ticks counts the
batches sent more than a tick late).

The limit, measured in the same run on the same schedule: the same requests (the bodies and
headers the deliverer sent, signed when sent) POSTed straight to the same receiver ports by
httpx with the same concurrency, one pool per endpoint as the deliverer has, each dated when
its batch is due.

Each phase starts with a second of the same load (connections opened, caches warm), waited
for and left out, then a VACUUM ANALYZE and CHECKPOINT. Prints one JSON line:

- events_per_s: events delivered / (last arrival - first event due); target_per_s;
- lag_p50_ms, lag_p99_ms, lag_max_ms: an event's arrival at its endpoint - when it was due;
- limit_events_per_s, limit_lag_p50_ms, limit_lag_p99_ms, limit_lag_max_ms: the same for the
  bare POSTs;
- lost: events never received once nothing arrived for DRAIN seconds; duplicated: events
  received more than once (both phases); deliveries: requests the receiver got;
- bench_cpu_us_per_delivery (this process: the deliverer and the inserts),
  postgres_cpu_us_per_delivery (every backend), receiver_cpu_us_per_delivery, and
  limit_client_cpu_us_per_post, limit_receiver_cpu_us_per_post for the limit;
- passes, events_per_pass: the deliverer's claims that found deliveries, and their mean size;
- late_ticks, limit_late_ticks: batches sent more than a tick after they were due;
- cores, seconds, events, endpoints, concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.login_storm import postgres_cpu_seconds
from bench.readings import percentile
from bench.webhook_receiver import Receiver, serve
from graam_pbx.cluster.signals import Listener
from graam_pbx.db import create_engine, migrate, session_factory
from graam_pbx.sandbox.ports import free_port
from graam_pbx.sandbox.postgres import EmbeddedPostgres, EmbeddedPostgresConfig
from graam_pbx.webhooks import signing
from graam_pbx.webhooks.delivery import CHANNEL, USER_AGENT, Claimed, WebhookDeliverer

HOST = "127.0.0.241"  # the receiver's loopback address: this bench's alone
TENANTS = 50  # one endpoint each
RATE = 1_000  # events a second
TICK = 0.05  # one insert (or one batch of POSTs) every TICK seconds
WARMUP = 1.0  # seconds of load before each phase, left out
DRAIN = 15.0  # seconds without an arrival before what is missing counts as lost
CONCURRENCY = 100  # the deliverer's default, the limit's client the same
POOL = 20  # the worker's database pool (GRAAM_DB_POOL_SIZE's default)

log = logging.getLogger("bench.webhooks")


@dataclass(frozen=True)
class Event:
    tenant_id: int
    key: str  # its ordering key: one call each
    occurred_at: datetime
    payload: str  # JSON, as the CDR trigger builds it


@dataclass
class Phase:
    """What one phase sent (event id -> when) and what arrived (event id, when)."""

    sent: dict[int, float] = field(default_factory=dict)
    arrivals: list[tuple[int, float]] = field(default_factory=list)
    cpu_s: float = 0.0  # this process
    postgres_cpu_s: float = 0.0
    receiver_cpu_s: float = 0.0
    late_ticks: int = 0  # batches sent more than a tick after they were due

    def lags(self) -> list[float]:
        first: dict[int, float] = {}
        for event_id, at in self.arrivals:
            if event_id in self.sent and event_id not in first:
                first[event_id] = at
        return sorted(at - self.sent[event_id] for event_id, at in first.items())

    def lost(self) -> int:
        return len(self.sent.keys() - {event_id for event_id, _ in self.arrivals})

    def duplicated(self) -> int:
        return len(self.arrivals) - len({event_id for event_id, _ in self.arrivals})

    def per_s(self) -> float:
        delivered = len(self.sent.keys() & {event_id for event_id, _ in self.arrivals})
        return delivered / (max(at for _, at in self.arrivals) - min(self.sent.values()))


def make_events(tenant_ids: Sequence[int], count: int, first: int) -> list[Event]:
    """``count`` call.ended events, a call each, the tenants in turn, with a CDR's data."""
    start = datetime.now(UTC).replace(microsecond=0)
    events = []
    for i in range(first, first + count):
        began = start + timedelta(milliseconds=i)
        answered, ended = began + timedelta(seconds=4), began + timedelta(seconds=64 + i % 300)
        linkedid = f"bench-{int(began.timestamp())}.{i}"
        cdr = {
            "uniqueid": linkedid,
            "sequence": i,
            "linkedid": linkedid,
            "system_name": "graam",
            "started_at": began.isoformat(),
            "answered_at": answered.isoformat(),
            "ended_at": ended.isoformat(),
            "duration": (ended - began).total_seconds(),
            "billsec": (ended - answered).total_seconds(),
            "disposition": "ANSWERED",
            "direction": "inbound",
            "did": "+33142685300",
            "queue_id": 1 + i % 20,
            "agent_user_id": 1000 + i % 500,
            "src": f"+3361234{i % 10000:04d}",
            "dst": "+33142685300",
            "to_number": None,
            "refusal_reason": None,
            "billable": True,
            "device": f"PJSIP/t{i % 50}-agent-{i % 500}",
        }
        payload = {"call_id": linkedid, "channel_id": linkedid, "cdr": cdr}
        events.append(
            Event(tenant_ids[i % len(tenant_ids)], f"call:{linkedid}", ended, json.dumps(payload))
        )
    return events


def batches(events: Sequence[Event], rate: int) -> list[list[Event]]:
    size = max(1, round(rate * TICK))
    return [list(events[first : first + size]) for first in range(0, len(events), size)]


# ---- the world ----------------------------------------------------------------------------------


async def world(url: str, ports: Sequence[int]) -> list[int]:
    """The tenants, each with one endpoint on its own receiver port; their ids."""
    connection = await asyncpg.connect(url)
    try:
        tenants = [
            row["id"]
            for row in await connection.fetch(
                "INSERT INTO tenants (slug, name, country, timezone, status, plan, licences) "
                "SELECT 'bench-' || n, 'Tenant ' || n, 'FR', 'Europe/Paris', 'active', "
                "'standard', 10 FROM generate_series(1, $1) AS n RETURNING id",
                len(ports),
            )
        ]
        await connection.executemany(
            "INSERT INTO webhook_endpoints (tenant_id, url, events, secret, version) "
            "VALUES ($1, $2, ARRAY['call.ended'], $3, 1)",
            [
                (tenant, f"http://{HOST}:{port}/hooks/{tenant}", signing.new_secret())
                for tenant, port in zip(tenants, ports, strict=True)
            ],
        )
    finally:
        await connection.close()
    return tenants


_INSERT = """
INSERT INTO webhook_events (tenant_id, type, ordering_key, occurred_at, payload)
SELECT t, 'call.ended', k, o, CAST(p AS jsonb)
FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[]) AS v(t, k, o, p)
RETURNING id, ordering_key
"""


async def insert(connection: asyncpg.Connection, batch: Sequence[Event]) -> dict[str, int]:
    """Insert the batch as one statement (the trigger fans it out); event id by key."""
    rows = await connection.fetch(
        _INSERT,
        [e.tenant_id for e in batch],
        [e.key for e in batch],
        [e.occurred_at for e in batch],
        [e.payload for e in batch],
    )
    return {row["ordering_key"]: row["id"] for row in rows}


async def quiesce(url: str) -> None:
    """Do now what the server would do in the background during the next measurement."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("VACUUM ANALYZE")
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


# ---- a phase: a load on schedule, then the drain ------------------------------------------------

Send = Callable[[list[Event]], Awaitable[list[int]]]  # a batch sent: its events' ids


async def on_schedule(rounds: Sequence[list[Event]], send: Send, phase: Phase) -> None:
    """``send`` each batch when due (every TICK seconds), its events dated when due: a
    sender that holds its own schedule back is not excused its delay (late_ticks)."""
    due, wall = time.monotonic(), time.time()
    for batch in rounds:
        if time.monotonic() - due > TICK:
            phase.late_ticks += 1
        phase.sent.update((event_id, wall) for event_id in await send(batch))
        due += TICK
        wall += TICK
        await asyncio.sleep(max(0.0, due - time.monotonic()))


async def drain(receiver: Receiver, expected: int) -> None:
    """Until ``expected`` requests arrived, or none for DRAIN seconds."""
    count, progress = -1, time.monotonic()
    while True:
        now = await receiver.count()
        if now >= expected:
            return
        if now != count:
            count, progress = now, time.monotonic()
        elif time.monotonic() - progress > DRAIN:
            return
        await asyncio.sleep(0.05)


async def measure(
    url: str,
    receiver: Receiver,
    postgres_cpu: Callable[[], float],
    warmup: Sequence[list[Event]],
    rounds: Sequence[list[Event]],
    send: Send,
    on_measured: Callable[[], None] = lambda: None,
) -> Phase:
    """The warm-up (waited for, left out), a quiet server, then the measured load;
    ``on_measured`` is called as it starts."""
    ignored = Phase()
    await on_schedule(warmup, send, ignored)
    await drain(receiver, len(ignored.sent))
    await receiver.take()
    await quiesce(url)
    phase = Phase()
    on_measured()
    cpu, postgres, received = time.process_time(), postgres_cpu(), receiver.cpu_seconds()
    await on_schedule(rounds, send, phase)
    await drain(receiver, len(phase.sent))
    phase.cpu_s = time.process_time() - cpu
    phase.postgres_cpu_s = postgres_cpu() - postgres
    phase.receiver_cpu_s = receiver.cpu_seconds() - received
    phase.arrivals = await receiver.take()
    return phase


# ---- the sender under test: production's deliverer ----------------------------------------------


@dataclass
class Passes:
    """The deliverer's passes that found deliveries, and how many they attempted."""

    passes: int = 0
    deliveries: int = 0

    def reset(self) -> None:
        self.passes = self.deliveries = 0


def counted(deliverer: WebhookDeliverer, passes: Passes) -> None:
    """Count the deliverer's passes (its own method, wrapped: nothing else changes)."""
    original = deliverer.deliver_due

    async def deliver_due() -> int:
        sent = await original()
        if sent:
            passes.passes += 1
            passes.deliveries += sent
        return sent

    deliverer.deliver_due = deliver_due  # type: ignore[method-assign]


async def through_deliverer(
    url: str,
    receiver: Receiver,
    postgres_cpu: Callable[[], float],
    warmup: Sequence[list[Event]],
    rounds: Sequence[list[Event]],
    ids: dict[str, int],
) -> tuple[Phase, Passes]:
    """Production's deliverer, woken by the trigger's notification; ``ids``: filled with
    each event's id, by key."""
    engine = create_engine(url, pool_size=POOL)
    deliverer = WebhookDeliverer(
        session_factory(engine),
        allowed=[ipaddress.ip_network("127.0.0.0/8")],
        concurrency=CONCURRENCY,
    )
    listener = Listener(
        url,
        {CHANNEL: lambda _: deliverer.request()},
        on_connected=deliverer.request,
        name="graam-webhooks",
    )
    passes = Passes()
    counted(deliverer, passes)
    inserter = await asyncpg.connect(url)

    async def send(batch: list[Event]) -> list[int]:
        made = await insert(inserter, batch)
        ids.update(made)
        return list(made.values())

    await deliverer.start()
    await listener.start()
    try:
        async with asyncio.timeout(10):
            await listener.listening.wait()
        phase = await measure(
            url, receiver, postgres_cpu, warmup, rounds, send, on_measured=passes.reset
        )
    finally:
        await listener.stop()
        await deliverer.stop()
        await inserter.close()
        await engine.dispose()
    return phase, passes


# ---- the limit: the same requests POSTed straight to the receiver -------------------------------


async def requests_sent(url: str) -> dict[int, Claimed]:
    """Every delivery as the deliverer claimed it (its event's body, endpoint and secret), by
    event id."""
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT d.id, d.attempts, coalesce(d.retry_from, ev.created_at), ev.id, ev.type, "
            "ev.occurred_at, ev.tenant_id, ev.payload::text, p.id, p.url, p.secret, p.enabled "
            "FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id "
            "JOIN webhook_endpoints p ON p.id = d.endpoint_id"
        )
    finally:
        await connection.close()
    return {row[3]: Claimed(*row) for row in rows}


async def straight(
    url: str,
    receiver: Receiver,
    postgres_cpu: Callable[[], float],
    warmup: Sequence[list[Event]],
    rounds: Sequence[list[Event]],
    ids: dict[str, int],
) -> Phase:
    """The same requests POSTed by httpx, one pool per endpoint (each its own origin: the
    cheapest way httpx has, as the deliverer's)."""
    claimed = await requests_sent(url)
    clients = {
        endpoint_id: httpx.AsyncClient(
            timeout=10.0,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=CONCURRENCY),
            headers={"User-Agent": USER_AGENT},
        )
        for endpoint_id in {delivery.endpoint_id for delivery in claimed.values()}
    }
    gate = asyncio.Semaphore(CONCURRENCY)
    posting: set[asyncio.Task[None]] = set()

    async def post(delivery: Claimed) -> None:
        async with gate:
            body = delivery.body()
            timestamp = int(time.time())
            response = await clients[delivery.endpoint_id].post(
                delivery.url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    signing.TIMESTAMP_HEADER: str(timestamp),
                    signing.SIGNATURE_HEADER: signing.signature(delivery.secret, timestamp, body),
                    signing.EVENT_ID_HEADER: str(delivery.event_id),
                    signing.EVENT_TYPE_HEADER: delivery.type,
                    signing.DELIVERY_ID_HEADER: str(delivery.id),
                },
            )
            response.raise_for_status()

    async def send(batch: list[Event]) -> list[int]:
        sent = []
        for event in batch:
            delivery = claimed[ids[event.key]]
            task = asyncio.create_task(post(delivery))
            posting.add(task)
            task.add_done_callback(posting.discard)
            sent.append(delivery.event_id)
        return sent

    try:
        return await measure(url, receiver, postgres_cpu, warmup, rounds, send)
    finally:
        await asyncio.gather(*posting, return_exceptions=True)
        for client in clients.values():
            await client.aclose()


# ---- the run ------------------------------------------------------------------------------------


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def us_per(seconds: float, count: int) -> float:
    return round(seconds / max(count, 1) * 1e6, 1)


async def main(seconds: float, rate: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="graam-bench-webhooks-"))
    pg = EmbeddedPostgres(EmbeddedPostgresConfig(work / "pg", port=free_port()))
    await pg.start()
    receiver = Receiver(HOST, TENANTS)
    try:
        admin = await asyncpg.connect(pg.url())
        await admin.execute('CREATE DATABASE "webhooks"')
        await admin.close()
        url = pg.url("webhooks")
        await migrate(url)
        await receiver.start()
        tenants = await world(url, receiver.ports)
        warm_events = make_events(tenants, round(rate * WARMUP), 0)
        events = make_events(tenants, round(rate * seconds), len(warm_events))
        warmup, rounds = batches(warm_events, rate), batches(events, rate)

        def postgres_cpu() -> float:
            return postgres_cpu_seconds(pg)

        ids: dict[str, int] = {}
        delivered, passes = await through_deliverer(
            url, receiver, postgres_cpu, warmup, rounds, ids
        )
        limit = await straight(url, receiver, postgres_cpu, warmup, rounds, ids)
    finally:
        await receiver.stop()
        await pg.stop()
        shutil.rmtree(work, ignore_errors=True)

    lags, limit_lags = delivered.lags(), limit.lags()
    deliveries, posts = len(delivered.arrivals), len(limit.arrivals)
    return {
        "bench": "webhooks",
        "target_per_s": rate,
        "events_per_s": round(delivered.per_s()),
        "lag_p50_ms": ms(statistics.median(lags)),
        "lag_p99_ms": ms(percentile(lags, 0.99)),
        "lag_max_ms": ms(lags[-1]),
        "limit_events_per_s": round(limit.per_s()),
        "limit_lag_p50_ms": ms(statistics.median(limit_lags)),
        "limit_lag_p99_ms": ms(percentile(limit_lags, 0.99)),
        "limit_lag_max_ms": ms(limit_lags[-1]),
        "lost": delivered.lost() + limit.lost(),
        "duplicated": delivered.duplicated() + limit.duplicated(),
        "deliveries": deliveries,
        "passes": passes.passes,
        "events_per_pass": round(passes.deliveries / max(passes.passes, 1), 1),
        "late_ticks": delivered.late_ticks,
        "limit_late_ticks": limit.late_ticks,
        "bench_cpu_us_per_delivery": us_per(delivered.cpu_s, deliveries),
        "postgres_cpu_us_per_delivery": us_per(delivered.postgres_cpu_s, deliveries),
        "receiver_cpu_us_per_delivery": us_per(delivered.receiver_cpu_s, deliveries),
        "limit_client_cpu_us_per_post": us_per(limit.cpu_s, posts),
        "limit_receiver_cpu_us_per_post": us_per(limit.receiver_cpu_s, posts),
        "cores": os.cpu_count(),
        "seconds": seconds,
        "events": len(events),
        "endpoints": TENANTS,
        "concurrency": CONCURRENCY,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5 seconds of load instead of 30")
    parser.add_argument("--seconds", type=float, help="seconds of load (30; 5 with --quick)")
    parser.add_argument("--rate", type=int, default=RATE, help="events a second")
    parser.add_argument("--receive", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receive:
        serve(args.receive[0], int(args.receive[1]))
    else:
        logging.basicConfig(level=logging.WARNING)
        seconds = args.seconds if args.seconds else 5.0 if args.quick else 30.0
        print(json.dumps(asyncio.run(main(seconds, args.rate))))
