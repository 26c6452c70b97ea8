"""The KPI queries of /api/v1/stats on a year of a large call centre.

python -m bench.stats_query [--quick]

An embedded Postgres, migrated to head, gets one large tenant (500 agents, QUEUES queues,
BIG_ROWS queue calls over a year, business hours, Europe/Paris) and 1,000 small tenants (2
agents, one queue, a tenth as many calls between them), interleaved in time as a live
system writes them. The rows are made by one INSERT ... SELECT over generate_series while
the table's indexes and constraints are set aside, then rebuilt from their own definitions
(what a bulk load does), then VACUUM ANALYZE and CHECKPOINT: the table is as a year of
writes and autovacuum leave it.

Then the services the API calls (graam_pbx.stats.service.period and queue_stats; agent_stats
as well) run for the large tenant, as a supervisor, in one session each like a request:

- day_p95_ms: one day by 15 minutes (target < 50 ms);
- month_p95_ms: one month by day (target < 300 ms);
- year_p95_ms: one year by month (target < 1 s);
- agents_day_p95_ms, agents_month_p95_ms, agents_year_p95_ms: the same periods per agent;
- the floor, measured in the same run on the same periods: a bare
  ``SELECT count(*), sum(talk_seconds)`` over the tenant's rows of the period
  (floor_day_p95_ms, ...); ratio_day, ... are the KPI query's p95 over the floor's;
- rows (the large tenant's), rows_all_tenants, load_s (generation, index rebuild, VACUUM
  ANALYZE) and load_rows_per_s;
- rollup_s: building the 15-minute rollup the queue KPIs read (queue_stats_rollup_rebuild
  over every row, then VACUUM ANALYZE; the load itself bypasses the triggers that keep it),
  rollup_rows and rollup_mb. The floor reads the raw rows: the ratios compare the two. The
  agent figures have no rollup and read the raw rows.

Every figure is a p95 of REPEATS runs after one warm-up run (a dashboard refreshes the same
period again and again: the pages are in memory).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.auth.models import User
from graam_pbx.auth.principal import Principal, Role, Scope
from graam_pbx.db import create_engine, migrate, session_factory
from graam_pbx.queues.models import Queue
from graam_pbx.sandbox.ports import free_port
from graam_pbx.sandbox.postgres import EmbeddedPostgres, EmbeddedPostgresConfig
from graam_pbx.stats import service
from graam_pbx.stats.kpi import Interval
from graam_pbx.tenants.models import Tenant

ZONE = ZoneInfo("Europe/Paris")
YEAR = 2025
AGENTS = 500
QUEUES = 20
SMALL_TENANTS = 1_000
SMALL_AGENTS = 2
SMALL_SHARE = 10  # one small tenants' call for every SMALL_SHARE of the large tenant
OPEN_HOUR = 8  # calls arrive between 08:00 and 18:00, every day of the year
OPEN_HOURS = 10
REPEATS = {"day": 40, "month": 20, "year": 5}
QUICK_REPEATS = {"day": 20, "month": 10, "year": 5}

# The large tenant's periods: a day and a month in the middle of the year, and the year.
PERIODS: dict[str, tuple[datetime, datetime, Interval]] = {
    "day": (
        datetime(YEAR, 6, 17, tzinfo=ZONE),
        datetime(YEAR, 6, 18, tzinfo=ZONE),
        Interval.QUARTER,
    ),
    "month": (datetime(YEAR, 6, 1, tzinfo=ZONE), datetime(YEAR, 7, 1, tzinfo=ZONE), Interval.DAY),
    "year": (
        datetime(YEAR, 1, 1, tzinfo=ZONE),
        datetime(YEAR + 1, 1, 1, tzinfo=ZONE),
        Interval.MONTH,
    ),
}

# Row g of the load: every (SMALL_SHARE + 1)th is a small tenant's, the others the large
# one's; the day and time follow g, so the table is in time order as a live one is. The
# other columns are spread by cheap hashes of g.
LOAD = """
INSERT INTO queue_calls (
    tenant_id, queue_id, queue_name, entry, linkedid, caller_uniqueid, caller_number, did,
    entered_at, position_at_entry, answered_at, agent_id, ended_at, wait_seconds,
    talk_seconds, hold_seconds, wrapup_seconds, ring_no_answer, outcome, abandon_position,
    exit_key, source
)
SELECT
    CASE WHEN small THEN ($4::bigint[])[1 + s % $8] ELSE $1 END,
    CASE WHEN small THEN ($5::bigint[])[1 + s % $8] ELSE ($2::bigint[])[1 + (g / 7) % $9] END,
    CASE WHEN small THEN 'support' ELSE 'q' || (1 + (g / 7) % $9) END,
    1,
    'bench-' || g,
    'bench-' || g,
    '+3314268' || lpad((g % 10000)::text, 4, '0'),
    '+33142685300',
    entered,
    1 + g % 9,
    CASE WHEN outcome IN ('answered', 'transferred') THEN entered + wait * interval '1 second' END,
    CASE
        WHEN outcome NOT IN ('answered', 'transferred') THEN NULL
        WHEN small THEN ($6::bigint[])[1 + (s % $8) * $11 + g % $11]
        ELSE ($3::bigint[])[1 + g % $10]
    END,
    entered + (wait + talk) * interval '1 second',
    wait,
    talk,
    CASE WHEN talk > 0 THEN (g % 7) * 3 ELSE 0 END,
    CASE WHEN talk > 0 THEN 5 + g % 20 ELSE 0 END,
    (g / 3) % 3,
    outcome,
    CASE WHEN outcome = 'abandoned' THEN 1 + g % 5 END,
    CASE WHEN outcome = 'exitkey' THEN '0' END,
    'ami'
FROM (
    SELECT g, small, s, entered, outcome,
        round(((g * 7919) % 18000) / 100.0, 3) AS wait,
        CASE WHEN outcome IN ('answered', 'transferred')
            THEN round(20 + ((g * 104729) % 600000) / 1000.0, 3) ELSE 0 END AS talk
    FROM (
        SELECT g,
            g % ($12 + 1) = $12 AS small,
            g / ($12 + 1) AS s,
            $7::timestamptz
                + (g * $13 / $14) * interval '1 day'
                + (((g * $13) % $14) * $15 / $14) * interval '1 second' AS entered,
            CASE
                WHEN (g * 31) % 100 < 84 THEN 'answered'
                WHEN (g * 31) % 100 < 94 THEN 'abandoned'
                WHEN (g * 31) % 100 < 97 THEN 'timeout'
                WHEN (g * 31) % 100 < 98 THEN 'transferred'
                WHEN (g * 31) % 100 < 99 THEN 'exitkey'
                ELSE 'leaveempty'
            END AS outcome
        FROM generate_series(0::bigint, $14::bigint - 1) AS g
    ) AS base
) AS call
"""


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def main(quick: bool) -> dict[str, Any]:
    big_rows = 200_000 if quick else 10_000_000
    work = Path(tempfile.mkdtemp(prefix="graam-bench-stats-"))
    pg = EmbeddedPostgres(EmbeddedPostgresConfig(work / "pg", port=free_port()))
    await pg.start()
    engine = None
    try:
        admin = await asyncpg.connect(pg.url())
        await admin.execute('CREATE DATABASE "stats"')
        await admin.close()
        url = pg.url("stats")
        await migrate(url)
        engine = create_engine(url, pool_size=2)
        sessions = session_factory(engine)
        world = await _world(sessions)
        load = await _load(url, world, big_rows)
        result: dict[str, Any] = {"bench": "stats_query", "rows": big_rows, **load}
        scope = Scope(
            world["tenant"],
            Principal(world["supervisor"], Role.SUPERVISOR, world["tenant"], "bench"),
        )
        floor = await asyncpg.connect(url)
        try:
            repeats = QUICK_REPEATS if quick else REPEATS
            for name, (since, until, interval) in PERIODS.items():
                times = repeats[name]
                kpi = await _timed(
                    times, functools.partial(_queues, sessions, scope, since, until, interval)
                )
                agents = await _timed(
                    times, functools.partial(_agents, sessions, scope, since, until, interval)
                )
                bare = await _timed(
                    times, functools.partial(_floor, floor, world["tenant"], since, until)
                )
                result[f"{name}_p95_ms"] = round(p95(kpi), 1)
                result[f"{name}_median_ms"] = round(statistics.median(kpi), 1)
                result[f"agents_{name}_p95_ms"] = round(p95(agents), 1)
                result[f"floor_{name}_p95_ms"] = round(p95(bare), 1)
                result[f"ratio_{name}"] = round(p95(kpi) / max(p95(bare), 0.01), 2)
                result[f"{name}_rows_scanned"] = await floor.fetchval(
                    "SELECT count(*) FROM queue_calls WHERE tenant_id = $1 "
                    "AND entered_at >= $2 AND entered_at < $3",
                    world["tenant"],
                    since,
                    until,
                )
        finally:
            await floor.close()
        result["targets_met"] = (
            result["day_p95_ms"] < 50
            and result["month_p95_ms"] < 300
            and result["year_p95_ms"] < 1000
        )
        return result
    finally:
        if engine is not None:
            await engine.dispose()
        await pg.stop()
        shutil.rmtree(work, ignore_errors=True)


async def _world(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """The tenants, their queues and agents; ids to spread the calls over."""
    async with sessions() as session, session.begin():
        big = Tenant(slug="bench-big", name="Large centre", country="FR", timezone=ZONE.key)
        session.add(big)
        smalls = [
            Tenant(slug=f"bench-{n}", name=f"Small {n}", country="FR", timezone=ZONE.key)
            for n in range(SMALL_TENANTS)
        ]
        session.add_all(smalls)
        await session.flush()
        supervisor = _user(big.id, "supervisor", 0)
        agents = [_user(big.id, "agent", n) for n in range(AGENTS)]
        queues = [Queue(tenant_id=big.id, name=f"q{n + 1}") for n in range(QUEUES)]
        small_agents = [_user(t.id, "agent", n) for t in smalls for n in range(SMALL_AGENTS)]
        small_queues = [Queue(tenant_id=t.id, name="support") for t in smalls]
        session.add_all([supervisor, *agents, *queues, *small_agents, *small_queues])
        await session.flush()
        return {
            "tenant": big.id,
            "supervisor": supervisor.id,
            "agents": [a.id for a in agents],
            "queues": [q.id for q in queues],
            "small_tenants": [t.id for t in smalls],
            "small_queues": [q.id for q in small_queues],
            "small_agents": [a.id for a in small_agents],
        }


def _user(tenant_id: int, role: str, n: int) -> User:
    return User(
        tenant_id=tenant_id,
        email=f"{role}{n}@t{tenant_id}.bench.invalid",
        display_name=f"{role} {n}",
        role=role,
        password_hash="!",  # noqa: S106 - not a hash: nobody logs in
    )


async def _load(url: str, world: dict[str, Any], big_rows: int) -> dict[str, Any]:
    total = big_rows + big_rows // SMALL_SHARE
    days = (date(YEAR + 1, 1, 1) - date(YEAR, 1, 1)).days
    connection = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        async with connection.transaction():
            constraints = await connection.fetch(
                "SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint "
                "WHERE conrelid = 'queue_calls'::regclass AND contype IN ('p', 'u')"
            )
            indexes = await connection.fetch(
                "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) "
                "AS definition FROM pg_index i WHERE i.indrelid = 'queue_calls'::regclass "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
            )
            for index in indexes:
                await connection.execute(f"DROP INDEX {index['name']}")
            for constraint in constraints:
                await connection.execute(
                    f'ALTER TABLE queue_calls DROP CONSTRAINT "{constraint["conname"]}"'
                )
            # The ids come from the rows made above: the foreign keys need not be checked row
            # by row.
            await connection.execute("SET LOCAL session_replication_role = replica")
            await connection.execute(
                LOAD,
                world["tenant"],
                world["queues"],
                world["agents"],
                world["small_tenants"],
                world["small_queues"],
                world["small_agents"],
                datetime(YEAR, 1, 1, OPEN_HOUR, tzinfo=ZONE).astimezone(UTC),
                len(world["small_tenants"]),
                len(world["queues"]),
                len(world["agents"]),
                SMALL_AGENTS,
                SMALL_SHARE,
                days,
                total,
                OPEN_HOURS * 3600,
            )
            generated = time.perf_counter() - started
            await connection.execute("SET LOCAL maintenance_work_mem = '512MB'")
            for constraint in constraints:
                await connection.execute(
                    f'ALTER TABLE queue_calls ADD CONSTRAINT "{constraint["conname"]}" '
                    f"{constraint['definition']}"
                )
            for index in indexes:
                await connection.execute(index["definition"])
        indexed = time.perf_counter() - started
        await connection.execute("VACUUM ANALYZE queue_calls")
        elapsed = time.perf_counter() - started
        # The load bypassed the triggers that keep the rollup (replica role): it is built as
        # an upgrade or `graam-pbx stats rebuild-rollup` builds it, and timed apart.
        rolled = time.perf_counter()
        rollup_rows = await connection.fetchval("SELECT queue_stats_rollup_rebuild()")
        await connection.execute("VACUUM ANALYZE queue_stats_rollup")
        rollup_s = time.perf_counter() - rolled
        await connection.execute("CHECKPOINT")
        count = await connection.fetchval("SELECT count(*) FROM queue_calls")
        size = await connection.fetchval("SELECT pg_total_relation_size('queue_calls')")
        rollup_size = await connection.fetchval(
            "SELECT pg_total_relation_size('queue_stats_rollup')"
        )
    finally:
        await connection.close()
    assert count == total, (count, total)
    return {
        "rows_all_tenants": total,
        "tenants": 1 + SMALL_TENANTS,
        "load_s": round(elapsed, 1),
        "load_generate_s": round(generated, 1),
        "load_index_s": round(indexed - generated, 1),
        "load_rows_per_s": round(total / elapsed),
        "table_mb": round(size / 2**20),
        "rollup_s": round(rollup_s, 1),
        "rollup_rows": rollup_rows,
        "rollup_mb": round(rollup_size / 2**20),
    }


async def _queues(
    sessions: async_sessionmaker[AsyncSession],
    scope: Scope,
    since: datetime,
    until: datetime,
    interval: Interval,
) -> None:
    async with sessions() as session, session.begin():
        span = await service.period(session, scope, since, until, interval)
        rows, totals = await service.queue_stats(session, scope, span, None)
    assert totals and rows


async def _agents(
    sessions: async_sessionmaker[AsyncSession],
    scope: Scope,
    since: datetime,
    until: datetime,
    interval: Interval,
) -> None:
    async with sessions() as session, session.begin():
        span = await service.period(session, scope, since, until, interval)
        rows, totals = await service.agent_stats(session, scope, span, None, datetime.now(UTC))
    assert totals and rows


async def _floor(
    connection: asyncpg.Connection, tenant_id: int, since: datetime, until: datetime
) -> None:
    await connection.fetchrow(
        "SELECT count(*), sum(talk_seconds) FROM queue_calls "
        "WHERE tenant_id = $1 AND entered_at >= $2 AND entered_at < $3",
        tenant_id,
        since,
        until,
    )


async def _timed(times: int, run: Callable[[], Awaitable[None]]) -> list[float]:
    """Milliseconds of ``times`` runs after one warm-up run."""
    await run()
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        await run()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="200,000 calls of the large tenant, not 10 million"
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.quick))))
