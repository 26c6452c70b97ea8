"""A working day of a small call centre, written as facts for the Reports page's tests.

Queue calls go through the project's own writer (``queue_calls.store.write_rows``, as the live
tracker and the ``queue_log`` backfill do); the agents' timeline is written as closed state
intervals, as the statistics tests do. A seeded generator: the same day every run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents.models import AgentStateInterval
from graam_pbx.queue_calls.store import write_rows
from graam_pbx.queue_calls.tracker import Outcome, QueueCallRow
from tests.factories import PASSWORD, TenantWorld, unique

PARIS = ZoneInfo("Europe/Paris")  # make_world's tenants' zone
# Calls an hour from 08:00 to 18:00: a morning and an afternoon peak.
HOURLY_CALLS = [6, 14, 22, 18, 9, 7, 15, 19, 12, 6]


@dataclass
class ReportDay:
    day: date
    queue_ids: list[int]
    agent_ids: list[int]
    calls: int


async def _queue(client: httpx.AsyncClient, world: TenantWorld, name: str) -> int:
    made = await client.post(
        "/api/v1/queues",
        headers=world.headers("admin"),
        json={"name": name, "service_level_seconds": 20, "short_abandon_seconds": 5},
    )
    assert made.status_code == 201, made.text
    queue_id: int = made.json()["id"]
    return queue_id


async def _agent(client: httpx.AsyncClient, world: TenantWorld, name: str) -> int:
    made = await client.post(
        "/api/v1/users",
        headers=world.headers("admin"),
        json={
            "email": f"{unique('a')}@{world.slug}.example",
            "display_name": name,
            "role": "agent",
            "password": PASSWORD,
        },
    )
    assert made.status_code == 201, made.text
    user_id: int = made.json()["id"]
    return user_id


async def write_report_day(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    world: TenantWorld,
    day: date,
    seed: int = 16,
) -> ReportDay:
    """Two queues, three agents, about 130 queue calls and the agents' day, on ``day``."""
    randomly = random.Random(seed)
    queues = [
        await _queue(client, world, unique("sales")),
        await _queue(client, world, unique("care")),
    ]
    agents = [
        world.agent.user_id,
        await _agent(client, world, "Camille Martin"),
        await _agent(client, world, "Hugo Bernard"),
    ]
    start = datetime(day.year, day.month, day.day, 8, tzinfo=PARIS)
    rows: list[QueueCallRow] = []
    for hour, count in enumerate(HOURLY_CALLS):
        for _ in range(count):
            entered = start + timedelta(hours=hour, seconds=randomly.randrange(3600))
            queue_id = queues[0] if randomly.random() < 0.6 else queues[1]
            wait = Decimal(int(randomly.expovariate(1 / (3 + count / 2)) * 1000)) / 1000
            draw = randomly.random()
            uniqueid = unique("rep")
            row = QueueCallRow(
                tenant_id=world.tenant_id,
                queue_id=queue_id,
                queue_name=f"t{world.tenant_id}-q{queue_id}",
                caller_uniqueid=uniqueid,
                entry=1,
                linkedid=uniqueid,
                caller_number=f"+3314268{randomly.randrange(10_000):04d}",
                entered_at=entered.astimezone(UTC),
                position_at_entry=1,
            )
            if draw < 0.84:
                talk = Decimal(randomly.randrange(45, 420))
                row.outcome = Outcome.ANSWERED
                row.answered_at = entered.astimezone(UTC) + timedelta(seconds=float(wait))
                row.agent_id = randomly.choice(agents)
                row.talk_seconds = talk
                row.hold_seconds = Decimal(randomly.choice([0, 0, 0, 15, 40]))
                row.ended_at = row.answered_at + timedelta(seconds=float(talk))
            elif draw < 0.97:
                row.outcome = Outcome.ABANDONED
                row.ended_at = entered.astimezone(UTC) + timedelta(seconds=float(wait))
            else:
                wait = Decimal(120)
                row.outcome = Outcome.TIMEOUT
                row.ended_at = entered.astimezone(UTC) + timedelta(seconds=120)
            row.wait_seconds = wait
            rows.append(row)
    async with sessions() as session, session.begin():
        await write_rows(session, rows, "ami")
        for agent_id in agents:
            for interval in _agent_day(randomly, world.tenant_id, agent_id, start):
                session.add(interval)
    return ReportDay(day, queues, agents, len(rows))


def _agent_day(
    randomly: random.Random, tenant_id: int, agent_id: int, start: datetime
) -> list[AgentStateInterval]:
    """Contiguous closed intervals from 08:00 to 18:00: calls, wrap-ups, a few pauses."""
    at = start + timedelta(minutes=randomly.randrange(0, 20))
    end = start + timedelta(hours=10)
    made: list[AgentStateInterval] = []

    def stretch(state: str, minutes: float, reason: str | None = None) -> None:
        nonlocal at
        until = min(end, at + timedelta(minutes=minutes))
        if until > at:
            made.append(
                AgentStateInterval(
                    tenant_id=tenant_id,
                    agent_id=agent_id,
                    state=state,
                    pause_reason_code=reason,
                    started_at=at.astimezone(UTC),
                    ended_at=until.astimezone(UTC),
                )
            )
        at = until

    lunch_done = False
    while at < end:
        stretch("available", randomly.uniform(2, 9))
        stretch("ringing", 0.2)
        stretch("on-call", randomly.uniform(2, 6))
        stretch("wrap-up", 0.5)
        if not lunch_done and at.hour >= 12:
            stretch("paused", 45, "lunch")
            lunch_done = True
        elif randomly.random() < 0.08:
            stretch("paused", randomly.uniform(5, 12), "break")
        elif randomly.random() < 0.03:
            stretch("paused", randomly.uniform(3, 8), None)
    return made
