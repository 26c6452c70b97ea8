"""The 15-minute rollup of queue calls gives the same sums as the calls themselves.

Real Postgres, migrated to head (its triggers keep the rollup). One tenant in Europe/Paris,
two queues with their own thresholds, a few hundred calls around both 2026 DST changes and
across midnights, written, written again, updated, moved and deleted; then every interval
is read both ways (rollup and raw rows) and from the pure ``kpi.sum_queue_calls``, before and
after the thresholds change.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from graam_pbx.auth.models import User
from graam_pbx.auth.principal import Principal, Role, Scope
from graam_pbx.db import create_engine, session_factory
from graam_pbx.queue_calls.models import QueueCall
from graam_pbx.queues.models import Queue
from graam_pbx.stats import service
from graam_pbx.stats.kpi import (
    Interval,
    QueueCallFact,
    Thresholds,
    sum_queue_calls,
)
from graam_pbx.stats.models import QueueStatsRollup
from graam_pbx.tenants.models import Tenant
from tests.factories import unique

Sessions = async_sessionmaker[AsyncSession]
PARIS = ZoneInfo("Europe/Paris")
OUTCOMES = ["answered"] * 6 + ["abandoned"] * 3 + ["transferred", "timeout", "exitkey", "full"]
# Waits on and around the thresholds (5 s short abandon, 20 s service level; then 3 s and 30 s).
EDGES = ["0", "2.999", "3.000", "4.999", "5.000", "5.001", "19.999", "20.000", "20.001", "30.000"]

# Periods read, on the tenant's wall clock: (since, until, interval).
PERIODS = [
    ("2026-10-25T00:00", "2026-10-26T00:00", Interval.QUARTER),  # 25-hour day
    ("2026-10-25T00:00", "2026-10-26T00:00", Interval.HOUR),
    ("2026-03-29T00:00", "2026-03-30T00:00", Interval.HOUR),  # 23-hour day
    ("2026-03-28T00:00", "2026-03-31T00:00", Interval.DAY),
    ("2026-10-01T00:00", "2026-11-01T00:00", Interval.DAY),
    ("2026-03-01T00:00", "2026-11-01T00:00", Interval.MONTH),
    ("2026-10-25T01:45", "2026-10-25T03:15", Interval.QUARTER),  # the repeated hour
    ("2026-10-24T22:00", "2026-10-25T02:00", Interval.HOUR),  # across midnight
]
# Not whole quarters of an hour: the raw rows answer.
ODD_PERIODS = [("2026-10-25T00:07", "2026-10-25T23:52", Interval.HOUR)]


@dataclass
class World:
    tenant_id: int
    agent_id: int
    queues: dict[int, Thresholds]
    scope: Scope


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    made = create_engine(database_url, pool_size=2)
    yield made
    await made.dispose()


@pytest.fixture(scope="module")
def sessions(engine: AsyncEngine) -> Sessions:
    return session_factory(engine)


async def _world(sessions: Sessions) -> World:
    async with sessions() as session, session.begin():
        tenant = Tenant(slug=unique("rollup"), name="Rollup", country="FR", timezone=PARIS.key)
        session.add(tenant)
        await session.flush()
        agent = _user(tenant.id, "agent")
        supervisor = _user(tenant.id, "supervisor")
        first = Queue(tenant_id=tenant.id, name="sales")
        second = Queue(
            tenant_id=tenant.id, name="help", service_level_seconds=30, short_abandon_seconds=3
        )
        session.add_all([agent, supervisor, first, second])
        await session.flush()
        scope = Scope(
            tenant.id, Principal(supervisor.id, Role.SUPERVISOR, tenant.id, "rollup-test")
        )
        return World(
            tenant.id,
            agent.id,
            {first.id: Thresholds(20, 5), second.id: Thresholds(30, 3)},
            scope,
        )


def _user(tenant_id: int, role: str) -> User:
    return User(
        tenant_id=tenant_id,
        email=f"{unique(role)}@rollup.invalid",
        display_name=role,
        role=role,
        password_hash="!",
    )


def _calls(world: World, count: int, seed: int) -> list[dict[str, Any]]:
    """Calls around both DST changes, midnights and the quarter-hour bounds."""
    chance = random.Random(seed)
    days = [
        datetime(2026, 3, 28, tzinfo=UTC),
        datetime(2026, 3, 29, tzinfo=UTC),
        datetime(2026, 10, 24, tzinfo=UTC),
        datetime(2026, 10, 25, tzinfo=UTC),
        datetime(2026, 10, 12, tzinfo=UTC),
    ]
    queue_ids = sorted(world.queues)
    calls = []
    for _ in range(count):
        day = chance.choice(days) - timedelta(hours=2)
        # Often right on a quarter's bound, or a microsecond before it.
        minute = chance.randrange(0, 28 * 60, 15 if chance.random() < 0.3 else 1)
        at = day + timedelta(minutes=minute, seconds=chance.choice([0, 0, 59, 30]))
        if chance.random() < 0.1:
            at -= timedelta(microseconds=1)
        outcome = chance.choice(OUTCOMES)
        answered = outcome in ("answered", "transferred")
        wait = Decimal(chance.choice(EDGES)) + Decimal(chance.randrange(0, 3)) * 7
        calls.append(
            {
                "queue_id": chance.choice(queue_ids),
                "entered_at": at,
                "outcome": outcome,
                "wait_seconds": wait,
                "agent_id": world.agent_id if answered else None,
                "talk_seconds": Decimal(chance.randrange(0, 600_000)) / 1000 if answered else 0,
                "hold_seconds": Decimal(chance.randrange(0, 30)) if answered else 0,
                "wrapup_seconds": Decimal(chance.randrange(0, 20)) if answered else 0,
            }
        )
    return calls


INSERT = text(
    """
    INSERT INTO queue_calls (
        tenant_id, queue_id, queue_name, entry, linkedid, caller_uniqueid, caller_number,
        entered_at, agent_id, ended_at, wait_seconds, talk_seconds, hold_seconds,
        wrapup_seconds, outcome, source
    ) VALUES (
        :tenant_id, :queue_id, :queue_name, 1, :uniqueid, :uniqueid, '+33142685300',
        :entered_at, :agent_id, :entered_at, :wait_seconds, :talk_seconds, :hold_seconds,
        :wrapup_seconds, :outcome, :source
    )
    ON CONFLICT (tenant_id, caller_uniqueid, queue_name, entry) DO NOTHING
    """
)


def _params(world: World, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **call,
            "tenant_id": world.tenant_id,
            "queue_name": f"q{call['queue_id']}",
            "uniqueid": f"u-{world.tenant_id}-{n}",
            "source": "ami",
        }
        for n, call in enumerate(calls)
    ]


async def _write(sessions: Sessions, world: World, calls: list[dict[str, Any]]) -> None:
    """Each call once in batches as the writer does; then every call again (the backfill)."""
    params = _params(world, calls)
    for start in range(0, len(params), 50):
        async with sessions() as session, session.begin():
            await session.execute(INSERT, params[start : start + 50])
    async with sessions() as session, session.begin():
        await session.execute(INSERT, [{**p, "source": "queue_log"} for p in params])


async def _facts(sessions: Sessions, world: World) -> list[QueueCallFact]:
    async with sessions() as session:
        rows = await session.scalars(
            select(QueueCall).where(QueueCall.tenant_id == world.tenant_id)
        )
        return [
            QueueCallFact(
                queue_id=row.queue_id,
                entered_at=row.entered_at,
                outcome=row.outcome,
                wait_seconds=row.wait_seconds,
                agent_id=row.agent_id,
                talk_seconds=row.talk_seconds,
                hold_seconds=row.hold_seconds,
                wrapup_seconds=row.wrapup_seconds,
            )
            for row in rows
            if row.queue_id is not None
        ]


def _local(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=PARIS)


async def _both_ways(
    sessions: Sessions,
    world: World,
    periods: list[tuple[str, str, Interval]],
    *,
    rollup_used: bool,
) -> None:
    facts = await _facts(sessions, world)
    for since, until, interval in periods:
        async with sessions() as session, session.begin():
            span = await service.period(
                session, world.scope, _local(since), _local(until), interval
            )
            assert service.whole_quarters(span) is rollup_used, (since, until, interval)
            rolled, rolled_names = await service.queue_sums(session, world.scope, span, None)
            raw, raw_names = await service.queue_sums(
                session, world.scope, span, None, rollup=False
            )
            first = sorted(world.queues)[0]
            one, _ = await service.queue_sums(session, world.scope, span, first)
        inside = [f for f in facts if span.since <= f.entered_at < span.until]
        pure = sum_queue_calls(inside, interval=interval, zone=PARIS, thresholds=world.queues)
        assert rolled == raw == pure, (since, until, interval)
        assert rolled_names == raw_names
        assert one == {key: item for key, item in pure.items() if key[1] == first}
        assert sum((item.offered for item in rolled.values()), 0) == len(inside) > 0


async def _rollup_rows(sessions: Sessions, world: World) -> list[tuple[Any, ...]]:
    async with sessions() as session:
        rows = await session.execute(
            select(QueueStatsRollup.__table__)
            .where(QueueStatsRollup.tenant_id == world.tenant_id)
            .order_by(QueueStatsRollup.queue_id, QueueStatsRollup.bucket_start)
        )
        return [tuple(row) for row in rows]


async def _rebuilt_equals_kept(sessions: Sessions, world: World) -> None:
    """What the triggers kept equals a recomputation from scratch."""
    kept = await _rollup_rows(sessions, world)
    assert kept
    async with sessions() as session, session.begin():
        written = await service.rebuild_queue_rollup(session, world.tenant_id)
    assert written == len(kept)
    assert await _rollup_rows(sessions, world) == kept


async def test_the_rollup_and_the_raw_rows_give_the_same_sums(sessions: Sessions) -> None:
    world = await _world(sessions)
    await _write(sessions, world, _calls(world, 400, seed=15))
    await _rebuilt_equals_kept(sessions, world)
    await _both_ways(sessions, world, PERIODS, rollup_used=True)
    await _both_ways(sessions, world, ODD_PERIODS, rollup_used=False)


async def test_updates_moves_and_deletes_keep_the_rollup_exact(sessions: Sessions) -> None:
    world = await _world(sessions)
    await _write(sessions, world, _calls(world, 200, seed=16))
    second = sorted(world.queues)[1]
    async with sessions() as session, session.begin():
        # A row corrected by the other source, one moved to another bucket and queue,
        # some deleted.
        ids = list(
            await session.scalars(
                select(QueueCall.id)
                .where(QueueCall.tenant_id == world.tenant_id)
                .order_by(QueueCall.id)
            )
        )
        await session.execute(
            update(QueueCall)
            .where(QueueCall.id.in_(ids[:20]))
            .values(outcome="abandoned", wait_seconds=Decimal("4.5"), agent_id=None)
        )
        await session.execute(
            update(QueueCall)
            .where(QueueCall.id.in_(ids[20:30]))
            .values(entered_at=QueueCall.entered_at + timedelta(minutes=50), queue_id=second)
        )
        await session.execute(delete(QueueCall).where(QueueCall.id.in_(ids[30:45])))
    await _rebuilt_equals_kept(sessions, world)
    await _both_ways(sessions, world, PERIODS, rollup_used=True)


async def test_a_threshold_change_recomputes_the_queue(sessions: Sessions) -> None:
    world = await _world(sessions)
    await _write(sessions, world, _calls(world, 300, seed=17))
    first, second = sorted(world.queues)
    async with sessions() as session, session.begin():
        await session.execute(
            update(Queue)
            .where(Queue.id == first)
            .values(service_level_seconds=10, short_abandon_seconds=0)
        )
    world.queues[first] = Thresholds(10, 0)
    thresholds = {
        (row[0], row[1]) for row in (await _rollup_rows_thresholds(sessions, world, first))
    }
    assert thresholds == {(10, 0)}
    await _rebuilt_equals_kept(sessions, world)
    await _both_ways(sessions, world, PERIODS, rollup_used=True)

    # The rollup is what is read: a wrong count there shows (the test's own tampering).
    async with sessions() as session, session.begin():
        await session.execute(
            update(QueueStatsRollup)
            .where(QueueStatsRollup.queue_id == second)
            .values(answered_within=QueueStatsRollup.answered_within + 1000)
        )
    with pytest.raises(AssertionError):
        await _both_ways(sessions, world, PERIODS[:1], rollup_used=True)

    # Rows made with other thresholds than the queue's (as a change racing a write could
    # leave): not read, the queue's calls answer.
    async with sessions() as session, session.begin():
        await session.execute(
            update(QueueStatsRollup)
            .where(QueueStatsRollup.queue_id == second)
            .values(service_level_seconds=99)
        )
    await _both_ways(sessions, world, PERIODS, rollup_used=True)


async def _rollup_rows_thresholds(
    sessions: Sessions, world: World, queue_id: int
) -> list[tuple[int, int]]:
    async with sessions() as session:
        rows = await session.execute(
            select(
                QueueStatsRollup.service_level_seconds, QueueStatsRollup.short_abandon_seconds
            ).where(QueueStatsRollup.queue_id == queue_id)
        )
        return [(row[0], row[1]) for row in rows]


async def test_a_deleted_queue_leaves_no_rollup(sessions: Sessions) -> None:
    world = await _world(sessions)
    await _write(sessions, world, _calls(world, 50, seed=18))
    first, _ = sorted(world.queues)
    async with sessions() as session, session.begin():
        await session.execute(delete(Queue).where(Queue.id == first))
    del world.queues[first]
    assert await _rollup_rows_thresholds(sessions, world, first) == []
    await _rebuilt_equals_kept(sessions, world)
    facts = await _facts(sessions, world)
    assert {fact.queue_id for fact in facts} == set(world.queues)


async def test_the_command_rebuilds_a_tenants_rollup(
    sessions: Sessions, database_url: str, tmp_path: Path
) -> None:
    world = await _world(sessions)
    await _write(sessions, world, _calls(world, 60, seed=19))
    kept = await _rollup_rows(sessions, world)
    async with sessions() as session, session.begin():
        # What a bulk load bypassing the triggers leaves: calls without their rollup.
        await session.execute(
            delete(QueueStatsRollup).where(QueueStatsRollup.tenant_id == world.tenant_id)
        )
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GRAAM_")},
        "GRAAM_DATABASE_URL": database_url,
        "GRAAM_DATA_DIR": str(tmp_path),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "graam_pbx",
        "stats",
        "rebuild-rollup",
        "--tenant",
        str(world.tenant_id),
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(60):
        out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()
    assert f"rollup rebuilt: {len(kept)} rows" in out.decode()
    assert await _rollup_rows(sessions, world) == kept


async def test_two_writers_of_one_bucket_add_up(sessions: Sessions) -> None:
    """The live writer and the backfill at once, on the same calls of one bucket."""
    world = await _world(sessions)
    first = sorted(world.queues)[0]
    at = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    calls = _calls(world, 40, seed=20)
    for n, call in enumerate(calls):
        call.update(queue_id=first, entered_at=at + timedelta(seconds=n))
    params = _params(world, calls)

    async def alone(batch: list[dict[str, Any]]) -> None:
        async with sessions() as session, session.begin():
            await session.execute(INSERT, batch)

    async with sessions() as session:
        async with session.begin():
            await session.execute(INSERT, params[:25])
            # Waits on the first's uncommitted rows (same keys, same rollup row), whatever
            # the order the two commits come in.
            other = asyncio.create_task(alone(params[15:]))
        async with asyncio.timeout(30):
            await other
    await _rebuilt_equals_kept(sessions, world)
    kept = await _rollup_rows(sessions, world)
    columns = list(QueueStatsRollup.__table__.columns.keys())
    assert [row[columns.index("offered")] for row in kept] == [40]
