"""The CDR writer's microsecond codecs against a real Postgres: what it sends is what
Postgres' own conversions make of the same microseconds, to the last digit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from graam_pbx.cdr import codecs
from graam_pbx.cdr.parse import EARLIEST_US, LATEST_US, MAX_SECONDS_US, record_from_event
from graam_pbx.cdr.writer import CdrTable
from graam_pbx.db import plain_url
from tests.cdr_events import cdr_event

DURATIONS = [0, 1, 99, 100, 999_999, 1_000_000, 7_500_000, 10_000_000_000, MAX_SECONDS_US - 1]
TIMES = [EARLIEST_US, EARLIEST_US + 1, 1_795_392_001_507_001, LATEST_US - 1]


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(plain_url(database_url))
    await codecs.install(connection)
    yield connection
    await connection.close()


@pytest.mark.parametrize("us", DURATIONS)
async def test_seconds_are_exactly_what_postgres_makes_of_them(
    connection: asyncpg.Connection, us: int
) -> None:
    same, text, back = await connection.fetchrow(
        "SELECT $1::numeric(14, 6) = $2::bigint / 1000000.0, $1::numeric(14, 6)::text, "
        "$1::numeric(14, 6)",
        us,
        us,
    )
    assert same
    assert text == f"{us // 1_000_000}.{us % 1_000_000:06d}"
    assert back == us


@pytest.mark.parametrize("us", TIMES)
async def test_times_are_exactly_what_postgres_makes_of_them(
    connection: asyncpg.Connection, us: int
) -> None:
    same, back = await connection.fetchrow(
        "SELECT $1::timestamptz = timestamptz 'epoch' + $2::bigint * interval '1 microsecond', "
        "$1::timestamptz",
        us,
        us,
    )
    assert same
    assert back == us


async def test_a_value_the_column_cannot_hold_is_refused_by_the_server(
    connection: asyncpg.Connection,
) -> None:
    # The codec sends any duration under 10^8 s; the column's type is the server's to check.
    with pytest.raises(asyncpg.NumericValueOutOfRangeError):
        await connection.fetchval("SELECT $1::numeric(7, 1)", 9_999_999_500_000)


@pytest.mark.parametrize("live", [True, False], ids=["copied", "staged"])
async def test_both_ways_into_the_table_store_the_same_values(
    database_url: str, live: bool
) -> None:
    start = datetime(2026, 7, 1, 8, tzinfo=UTC) + timedelta(microseconds=123_457)
    record = record_from_event(cdr_event(None, start))
    table = CdrTable(plain_url(database_url))
    try:
        result = await table.write([record], expect_new=live)
    finally:
        await table.close()
    assert result.inserted == 1

    plain = await asyncpg.connect(plain_url(database_url))
    try:
        row = await plain.fetchrow(
            "SELECT started_at, answered_at, ended_at, duration, billsec FROM cdrs "
            "WHERE uniqueid = $1",
            record.uniqueid,
        )
    finally:
        await plain.close()
    assert tuple(row) == (
        record.started_at,
        record.answered_at,
        record.ended_at,
        record.duration,
        record.billsec,
    )
