"""Rating a month of outbound calls, and invoicing a thousand tenants for it.

python -m bench.billing [--quick]

An embedded Postgres, migrated to head, gets TENANTS tenants (each with a billing account,
two users, licences and three numbers held since before the month, monthly prices), a
20,000-prefix rate deck (the country codes, deeper prefixes of them, a few by number type
and by origin) and CALLS billable outbound legs (1,000,000; --quick: 20,000) spread over
March 2026 on the billing clock, to DESTINATIONS distinct numbers in eleven countries (0.5 %
to a country the deck lacks: unrated). Prints one JSON line:

- rated_per_s: ``rating.rate_period`` over the month, all tenants, into an empty
  ``rated_calls`` (read the legs, classify, longest-prefix match, price, COPY, insert),
  committed, in a process that had classified none of the numbers yet (cold);
  rated_warm_per_s: the best of the next runs (RUNS in all), with the numbers' classification
  kept by the process as the scheduler's is from one pass to the next;
- limit_per_s: the physical floor in the same run: the same legs written into an emptied
  ``rated_calls`` by one ``INSERT ... SELECT`` from ``cdrs`` with constant rate columns (no
  lookup, no Python); the best of RUNS runs, each after a rating run; ratio_to_limit is
  rated_per_s / limit_per_s (target >= 0.3), ratio_to_limit_warm the same when warm;
- copy_limit_per_s: the floor of a client that computes the rows (the CDR ingest bench's
  kind of limit): the same legs as complete ``rated_calls`` rows, made beforehand, COPYed
  into an emptied table (asyncpg encodes them during the COPY); ratio_to_copy_limit and
  ratio_to_copy_limit_warm compare rating to it;
- rerate_s: rating the month again when nothing changed (every leg computed, no row written);
- invoices, invoicing_s: ``invoicing.invoice_due`` at the start of April for every tenant
  (its own rating of new legs included), each invoice in its own transaction (target: 1,000
  tenants in < 60 s).

Every timed phase starts from a quiet server: VACUUM ANALYZE of what the previous phase
wrote, then a CHECKPOINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import tempfile
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from graam_pbx.billing import invoicing, rating
from graam_pbx.db import create_engine, migrate, session_factory
from graam_pbx.sandbox.ports import free_port
from graam_pbx.sandbox.postgres import EmbeddedPostgres, EmbeddedPostgresConfig
from graam_pbx.settings import Settings

ZONE = ZoneInfo("Europe/Paris")
MONTH = date(2026, 3, 1)
MONTH_STARTS = datetime(2026, 3, 1, tzinfo=ZONE)
MONTH_ENDS = datetime(2026, 4, 1, tzinfo=ZONE)
INVOICED_AT = datetime(2026, 4, 2, 6, tzinfo=ZONE)
TENANTS = 1_000
PREFIXES = 20_000
RUNS = 3
SEED = 17

# (prefix of the number, digits after it): numbers libphonenumber classifies in each country.
PATTERNS: list[tuple[str, int, int]] = [  # prefix, digits after it, weight
    ("331", 8, 20),  # FR geographic (Paris)
    ("334", 8, 10),  # FR geographic
    ("336", 8, 15),  # FR mobile
    ("337", 8, 5),  # FR mobile
    ("4420", 8, 6),  # GB geographic (London)
    ("4477", 8, 6),  # GB mobile
    ("4930", 8, 5),  # DE geographic (Berlin)
    ("49151", 8, 4),  # DE mobile
    ("1212", 7, 6),  # US (New York)
    ("3491", 7, 5),  # ES geographic (Madrid)
    ("3906", 8, 5),  # IT geographic (Rome)
    ("322", 7, 4),  # BE geographic (Brussels)
    ("4144", 7, 4),  # CH geographic (Zurich)
    ("3120", 7, 4),  # NL geographic (Amsterdam)
]
UNRATED_PATTERN = ("8869", 8)  # Taiwan mobile: no rate in the deck
COUNTRY_CODES = ["33", "44", "49", "1", "34", "39", "32", "41", "31"]

# The tenants' and destinations' lists are tables joined by row number: a subscript of a
# large text[] walks it from the start, every row.
LOAD_CDRS = """
INSERT INTO cdrs (
    started_at, system_name, uniqueid, sequence, linkedid, answered_at, ended_at, duration,
    billsec, disposition, tenant_id, direction, src, dst, dcontext, clid, channel, dstchannel,
    lastapp, lastdata, accountcode, peeraccount, amaflags, userfield, source, to_number, billable
)
SELECT started, 'bench', 'bench-' || g, 0, 'bench-' || g, started,
    started + billsec * interval '1 second', billsec + 4, billsec, 'ANSWERED', t.tenant_id,
    'outbound', t.src, d.e164, 'x', 'x', 'PJSIP/x', 'PJSIP/y', 'Dial', '', 't' || t.tenant_id,
    '', 'DOCUMENTATION', '', 'ami', d.e164, true
FROM (
    SELECT g,
        $1::timestamptz + ((g * $2::bigint) / $3::bigint) * interval '1 microsecond' AS started,
        round(((g * 7919) % 600000)::numeric / 1000 + 0.001, 3) AS billsec,
        g % $4 AS tenant_n,
        (g * 104729) % $5 AS destination_n
    FROM generate_series(0::bigint, $3::bigint - 1) AS g
) AS leg
JOIN bench_tenants t ON t.n = leg.tenant_n
JOIN bench_destinations d ON d.n = leg.destination_n
"""

LIMIT_INSERT = """
INSERT INTO rated_calls (
    cdr_id, started_at, tenant_id, period, to_number, origin_country, destination_country,
    number_type, billsec, billed_seconds, deck_id, prefix, price_per_minute, connect_fee, amount
)
SELECT id, started_at, tenant_id, $3::date, to_number, 'FR', 'FR', 'geographic', billsec,
    ceil(billsec)::int, $4::bigint, '33', 0.050000, 0, 0.050000
FROM cdrs
WHERE billable AND direction = 'outbound' AND started_at >= $1 AND started_at < $2
"""


COPY_COLUMNS = [
    "cdr_id", "started_at", "tenant_id", "period", "to_number", "origin_country",
    "destination_country", "number_type", "billsec", "billed_seconds", "deck_id", "prefix",
    "price_per_minute", "connect_fee", "amount",
]  # fmt: skip


def _numbers(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct destinations, weighted by PATTERNS, 0.5 % unrated."""
    weights = [w for _, _, w in PATTERNS]
    made: set[str] = set()
    while len(made) < count:
        if rng.random() < 0.005:
            prefix, digits = UNRATED_PATTERN
        else:
            prefix, digits, _ = rng.choices(PATTERNS, weights)[0]
        tail = "".join(rng.choice("0123456789") for _ in range(digits))
        if prefix == "1212":  # a North American subscriber number starts with 2-9
            tail = rng.choice("23456789") + tail[1:]
        made.add(f"+{prefix}{tail}")
    return sorted(made)


def _deck(rng: random.Random) -> list[tuple[str, str, str, str, Decimal, Decimal]]:
    """PREFIXES rows: every country code, deeper prefixes, some by type and origin."""
    countries = {
        "33": "FR", "44": "GB", "49": "DE", "1": "US", "34": "ES", "39": "IT", "32": "BE",
        "41": "CH", "31": "NL",
    }  # fmt: skip
    rows: dict[tuple[str, str, str], tuple[str, str, str, str, Decimal, Decimal]] = {}

    def add(prefix: str, origin: str = "", number_type: str = "") -> None:
        code = next(c for c in sorted(countries, key=len, reverse=True) if prefix.startswith(c))
        price = Decimal(rng.randrange(5_000, 400_000)).scaleb(-6)
        fee = Decimal(rng.choice([0, 0, 0, 5_000])).scaleb(-6)
        rows[(prefix, origin, number_type)] = (
            prefix, origin, number_type, countries[code], price, fee,
        )  # fmt: skip

    for code in COUNTRY_CODES:
        add(code)
    add("33", number_type="mobile")
    add("44", number_type="mobile")
    add("44", origin="GB")
    add("336", origin="GB", number_type="mobile")
    while len(rows) < PREFIXES:
        prefix = rng.choice(PATTERNS)[0]
        add(prefix + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 4))))
    return list(rows.values())


async def _world(url: str, rng: random.Random, calls: int) -> dict[str, Any]:
    """Tenants, accounts, holdings, prices, the deck and the month's legs."""
    connection = await asyncpg.connect(url)
    try:
        tenants = [
            row["id"]
            for row in await connection.fetch(
                "INSERT INTO tenants (slug, name, country, timezone, status, plan, licences) "
                "SELECT 'bench-' || n, 'Tenant ' || n, 'FR', 'Europe/Paris', 'active', "
                "'standard', 1 + n % 5 FROM generate_series(1, $1) AS n RETURNING id",
                TENANTS,
            )
        ]
        await connection.execute(
            "INSERT INTO users (tenant_id, email, display_name, role, password_hash, disabled, "
            "version) SELECT t, r || '@t' || t || '.bench.invalid', r, r, '!', false, 1 "
            "FROM unnest($1::bigint[]) AS t, unnest(ARRAY['admin', 'agent']) AS r",
            tenants,
        )
        await connection.execute(
            "INSERT INTO billing_accounts (tenant_id, legal_name, address, country, siren, "
            "tax_status, billing_email, locale, subscribed_on, grace_days, version) "
            "SELECT t, 'Client ' || t, '1 rue de la Paix, 75002 Paris', 'FR', "
            "lpad(t::text, 9, '0'), 'fr', 'billing@t' || t || '.bench.invalid', 'fr', $2, 15, 1 "
            "FROM unnest($1::bigint[]) AS t",
            tenants,
            MONTH,
        )
        # Three numbers each, and everything held since before the month (the triggers
        # stamped the users and licences now).
        await connection.execute(
            "INSERT INTO billing_holdings (tenant_id, item, ref_id, label, country, "
            "number_type, quantity, held_from) "
            "SELECT t, 'number', t * 10 + n, '+331426' || lpad((t * 10 + n)::text, 5, '0'), "
            "'FR', 'geographic', 1, $2 FROM unnest($1::bigint[]) AS t, generate_series(1, 3) n",
            tenants,
            datetime(2026, 1, 1, tzinfo=ZONE),
        )
        await connection.execute(
            "UPDATE billing_holdings SET held_from = $1", datetime(2026, 1, 1, tzinfo=ZONE)
        )
        for item, country, number_type, amount in (
            ("plan", None, None, "29.00"),
            ("number", "FR", "geographic", "1.50"),
            ("user", None, None, "4.00"),
            ("licence", None, None, "15.00"),
        ):
            await connection.execute(
                "INSERT INTO billing_prices (item, plan_code, country, number_type, amount, "
                "currency, effective_on, published_by) VALUES ($1, $2, $3, $4, $5, 'EUR', $6, "
                "'bench')",
                item,
                "standard" if item == "plan" else None,
                country,
                number_type,
                Decimal(amount),
                date(2026, 1, 1),
            )
        deck_rows = _deck(rng)
        deck_id = await connection.fetchval(
            "INSERT INTO rate_decks (name, currency, activates_at, published_by, rates_count) "
            "VALUES ('bench', 'EUR', $1, 'bench', $2) RETURNING id",
            datetime(2026, 1, 1, tzinfo=ZONE),
            len(deck_rows),
        )
        await connection.copy_records_to_table(
            "rates",
            records=[(deck_id, *row) for row in deck_rows],
            columns=[
                "deck_id", "prefix", "origin_country", "number_type", "destination_country",
                "price_per_minute", "connect_fee",
            ],
        )  # fmt: skip
        destinations = _numbers(rng, max(1_000, calls // 5))
        # Caller IDs: most tenants' are French, one in ten a London number.
        sources = [
            f"+4420794{t % 100_000:05d}" if n % 10 == 0 else f"+3314268{t % 10_000:04d}"
            for n, t in enumerate(tenants)
        ]
        loaded = time.perf_counter()
        for at in (MONTH_STARTS, datetime(2026, 3, 31, 12, tzinfo=ZONE)):
            await connection.execute("SELECT cdrs_ensure_partition($1)", at)
        # Aware datetimes of one zone subtract as wall clocks: in UTC, the month is an hour short.
        span_us = int((MONTH_ENDS.astimezone(UTC) - MONTH_STARTS).total_seconds()) * 1_000_000
        await connection.execute(
            "CREATE TABLE bench_tenants (n bigint PRIMARY KEY, tenant_id bigint, src text);"
            "CREATE TABLE bench_destinations (n bigint PRIMARY KEY, e164 text)"
        )
        await connection.copy_records_to_table(
            "bench_tenants", records=[(n, t, sources[n]) for n, t in enumerate(tenants)]
        )
        await connection.copy_records_to_table(
            "bench_destinations", records=list(enumerate(destinations))
        )
        await connection.execute("ANALYZE bench_tenants, bench_destinations")
        await connection.execute(
            LOAD_CDRS, MONTH_STARTS, span_us, calls, len(tenants), len(destinations)
        )
        await connection.execute("DROP TABLE bench_tenants, bench_destinations")
        load_s = time.perf_counter() - loaded
        await connection.execute("VACUUM ANALYZE")
        await connection.execute("CHECKPOINT")
        return {
            "tenants": tenants,
            "deck_id": deck_id,
            "prefixes": len(deck_rows),
            "destinations": len(destinations),
            "load_s": round(load_s, 1),
        }
    finally:
        await connection.close()


async def _quiet(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("VACUUM ANALYZE rated_calls")
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


async def _truncate(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("TRUNCATE rated_calls")
    finally:
        await connection.close()
    await _quiet(url)


async def _limit(url: str, deck_id: int) -> tuple[float, int]:
    connection = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        async with connection.transaction():
            status = await connection.execute(
                LIMIT_INSERT, MONTH_STARTS, MONTH_ENDS, MONTH, deck_id
            )
        return time.perf_counter() - started, int(status.split()[-1])
    finally:
        await connection.close()


async def _prepared(url: str, deck_id: int) -> list[tuple[Any, ...]]:
    """The month's legs as complete rated_calls rows with constant rate columns."""
    connection = await asyncpg.connect(url)
    try:
        legs = await connection.fetch(
            "SELECT id, started_at, tenant_id, to_number, billsec FROM cdrs WHERE billable "
            "AND direction = 'outbound' AND started_at >= $1 AND started_at < $2",
            MONTH_STARTS,
            MONTH_ENDS,
        )
    finally:
        await connection.close()
    price = Decimal("0.050000")
    fee = Decimal(0)
    return [
        (cdr_id, at, tenant, MONTH, to, "FR", "FR", "geographic", billsec, 60, deck_id, "33",
         price, fee, price)
        for cdr_id, at, tenant, to, billsec in legs
    ]  # fmt: skip


async def _copy_limit(url: str, rows: list[tuple[Any, ...]]) -> float:
    connection = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        async with connection.transaction():
            await connection.copy_records_to_table(
                "rated_calls", records=rows, columns=COPY_COLUMNS
            )
        return time.perf_counter() - started
    finally:
        await connection.close()


async def main(quick: bool) -> dict[str, Any]:
    calls = 20_000 if quick else 1_000_000
    rng = random.Random(SEED)
    work = Path(tempfile.mkdtemp(prefix="graam-bench-billing-"))
    pg = EmbeddedPostgres(EmbeddedPostgresConfig(work / "pg", port=free_port()))
    await pg.start()
    engine = None
    try:
        admin = await asyncpg.connect(pg.url())
        await admin.execute('CREATE DATABASE "billing"')
        await admin.close()
        url = pg.url("billing")
        await migrate(url)
        world = await _world(url, rng, calls)
        engine = create_engine(url, pool_size=2)
        sessions = session_factory(engine)

        rate_runs: list[float] = []
        limit_runs: list[float] = []
        copy_runs: list[float] = []
        prepared = await _prepared(url, world["deck_id"])
        report = rating.RatingReport()
        for run in range(RUNS):
            if run:
                await _truncate(url)
            started = time.perf_counter()
            async with sessions() as session, session.begin():
                report = await rating.rate_period(session, month=MONTH, zone=ZONE)
            rate_runs.append(time.perf_counter() - started)
            await _truncate(url)
            seconds, rows = await _limit(url, world["deck_id"])
            assert rows == calls, (rows, calls)
            limit_runs.append(seconds)
            await _truncate(url)
            copy_runs.append(await _copy_limit(url, prepared))
        del prepared
        # Leave the month rated for the invoices.
        await _truncate(url)
        async with sessions() as session, session.begin():
            report = await rating.rate_period(session, month=MONTH, zone=ZONE)
        assert report.rated + report.unrated == calls, (report, calls)
        await _quiet(url)
        started = time.perf_counter()
        async with sessions() as session, session.begin():
            again = await rating.rate_period(session, month=MONTH, zone=ZONE)
        rerate_s = time.perf_counter() - started
        assert (again.rated, again.unrated) == (report.rated, report.unrated)
        await _quiet(url)

        settings = Settings(billing_timezone=ZONE.key)
        started = time.perf_counter()
        invoices = await invoicing.invoice_due(sessions, settings, INVOICED_AT.astimezone(UTC))
        invoicing_s = time.perf_counter() - started

        cold = rate_runs[0]  # the process had never classified these numbers
        warm = min(rate_runs[1:])  # the same numbers, classified by the first run
        best_limit = min(limit_runs)
        return {
            "bench": "billing",
            "calls": calls,
            "tenants": TENANTS,
            "prefixes": world["prefixes"],
            "destinations": world["destinations"],
            "rated": report.rated,
            "unrated": report.unrated,
            "rated_per_s": round(calls / cold),
            "rating_s": round(cold, 2),
            "rated_warm_per_s": round(calls / warm),
            "rating_s_runs": [round(s, 2) for s in rate_runs],
            "limit_per_s": round(calls / best_limit),
            "limit_s": round(best_limit, 2),
            "limit_s_runs": [round(s, 2) for s in limit_runs],
            "ratio_to_limit": round(best_limit / cold, 3),
            "ratio_to_limit_warm": round(best_limit / warm, 3),
            "copy_limit_per_s": round(calls / min(copy_runs)),
            "copy_limit_s_runs": [round(s, 2) for s in copy_runs],
            "ratio_to_copy_limit": round(min(copy_runs) / cold, 3),
            "ratio_to_copy_limit_warm": round(min(copy_runs) / warm, 3),
            "rerate_s": round(rerate_s, 2),
            "invoices": len(invoices),
            "invoicing_s": round(invoicing_s, 2),
            "load_s": world["load_s"],
            "targets_met": best_limit / cold >= 0.3
            and invoicing_s < 60
            and len(invoices) == TENANTS,
        }
    finally:
        if engine is not None:
            await engine.dispose()
        await pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20,000 calls, not 1,000,000")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.quick))))
