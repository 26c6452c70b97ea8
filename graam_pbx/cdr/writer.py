"""Batches of CDRs into ``cdrs``, idempotently: COPY into a temporary table, then one INSERT
from it, with ON CONFLICT DO NOTHING on the CDR key when the batch may repeat rows.

A live batch is new calls in the usual case: it is inserted without ON CONFLICT (the
speculative insertion behind it costs Postgres about a quarter of its time per row); only
when the key is already there is the batch staged again and sent through ON CONFLICT DO
NOTHING. Replays and backfills, which repeat rows by nature, take ON CONFLICT at
once.

asyncpg directly, not the SQLAlchemy pool: the hot path of the product (bench/cdr_ingest.py
measured COPY + INSERT at about 1.6 times multi-row INSERT with unnest). One connection,
opened on demand and dropped on any error, so a restarted Postgres is simply reconnected to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter

import asyncpg

from graam_pbx.cdr.parse import COLUMNS, CdrRecord, moment

log = logging.getLogger(__name__)

STAGING_TABLE = "cdrs_incoming"
# Microseconds become timestamptz and numeric(14, 6) in Postgres, exactly (2^53 microseconds
# is 285 years: a double holds every one of them), on the server's core rather than ours.
_TIME = "timestamptz 'epoch' + {} * interval '1 microsecond'"
_SECONDS = "{}::numeric / 1000000"
_CONVERTED = {
    "started_us": ("started_at", _TIME),
    "answered_us": ("answered_at", _TIME),
    "ended_us": ("ended_at", _TIME),
    "duration_us": ("duration", _SECONDS),
    "billsec_us": ("billsec", _SECONDS),
}
_BIGINT = {"sequence", "tenant_id", "queue_id", "agent_user_id", *_CONVERTED}
TABLE_COLUMNS = tuple(_CONVERTED.get(name, (name, ""))[0] for name in COLUMNS)
# Built from constants only (the record's field names).
_CREATE_STAGING = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} ("
    + ", ".join(f"{name} {'bigint' if name in _BIGINT else 'text'}" for name in COLUMNS)
    + ") ON COMMIT DELETE ROWS"
)
_INSERT_NEW = (
    f"INSERT INTO cdrs ({', '.join(TABLE_COLUMNS)}) SELECT "  # noqa: S608
    + ", ".join(
        _CONVERTED[name][1].format(name) if name in _CONVERTED else name for name in COLUMNS
    )
    + f" FROM {STAGING_TABLE}"
)
_INSERT = _INSERT_NEW + " ON CONFLICT DO NOTHING"
_DAY_US = 86_400 * 1_000_000
# Errors about the rows themselves (SQLSTATE classes 22 and 23, or a value asyncpg cannot
# encode): retrying cannot help them.
_ROW_ERRORS = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    ValueError,
    TypeError,
    OverflowError,
)


class DatabaseUnavailable(Exception):
    """Postgres could not take the batch now (down, restarting, unreachable, timed out)."""


@dataclass
class WriteResult:
    inserted: int = 0
    duplicates: int = 0
    rejected: list[tuple[CdrRecord, str]] = field(default_factory=list)


class CdrTable:
    """Writes batches to ``cdrs`` over one asyncpg connection."""

    def __init__(self, url: str, *, timeout: float = 10.0, connect_timeout: float = 3.0) -> None:
        self._url = url
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._connection: asyncpg.Connection | None = None
        self._months: set[tuple[int, int]] = set()
        self._days: set[int] = set()  # days (since the epoch) whose month has a partition
        self._lock = asyncio.Lock()  # one operation at a time on the connection

    async def write(self, records: Sequence[CdrRecord], *, expect_new: bool = False) -> WriteResult:
        """Insert what is new; rows Postgres refuses come back in ``rejected`` with why.

        ``expect_new``: the batch is live calls, most likely all new (see the module's note).
        Raises ``DatabaseUnavailable`` when nothing could be decided (the batch may be sent
        again whole: the key makes that harmless).
        """
        result = WriteResult()
        await self._write(list(records), result, expect_new=expect_new)
        return result

    async def _write(
        self, records: list[CdrRecord], result: WriteResult, *, expect_new: bool
    ) -> None:
        try:
            inserted = await self._insert(records, expect_new=expect_new)
        except _ROW_ERRORS as err:
            # One bad row must not hold back the others: halve until it is alone.
            self._months.clear()
            self._days.clear()
            if len(records) == 1:
                code = getattr(err, "sqlstate", None) or type(err).__name__
                result.rejected.append((records[0], f"{code}: {err}"[:300]))
                return
            middle = len(records) // 2
            await self._write(records[:middle], result, expect_new=False)
            await self._write(records[middle:], result, expect_new=False)
            return
        result.inserted += inserted
        result.duplicates += len(records) - inserted

    async def _insert(self, records: list[CdrRecord], *, expect_new: bool) -> int:
        try:
            async with self._lock, asyncio.timeout(self._timeout):
                connection = await self._connect()
                await self._ensure_partitions(connection, records)
                if expect_new:
                    try:
                        return await self._stage_and_insert(connection, records, expect_new=True)
                    except asyncpg.UniqueViolationError:
                        pass  # some were there already (a backfill, a replay): skip those
                return await self._stage_and_insert(connection, records, expect_new=False)
        except _ROW_ERRORS:
            raise
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
            await self.close()
            raise DatabaseUnavailable(f"{type(err).__name__}: {err}"[:300]) from err

    @staticmethod
    async def _stage_and_insert(
        connection: asyncpg.Connection, records: list[CdrRecord], *, expect_new: bool
    ) -> int:
        """One transaction: COPY into the staging table, INSERT from it; rows inserted.

        Four round trips for a live batch (BEGIN, the COPY's two, INSERT with COMMIT): each one
        waits for this process's event loop, which is parsing the next batch meanwhile.
        """
        await connection.execute("BEGIN")
        try:
            await connection.copy_records_to_table(
                # Plain tuples: asyncpg encodes them three times faster than named ones (its
                # fast path takes exact tuples only).
                STAGING_TABLE,
                records=map(tuple, records),
                columns=COLUMNS,
            )
            if expect_new:
                # Without ON CONFLICT every row is inserted or the statement fails.
                await connection.execute(_INSERT_NEW + "; COMMIT")
                return len(records)
            status = await connection.execute(_INSERT)
            await connection.execute("COMMIT")
        except (asyncpg.PostgresError, *_ROW_ERRORS):
            # The server refused a statement or a row could not be encoded: the connection is
            # sound, its transaction aborted. Anything else (cancelled, timed out, connection
            # lost) closes the connection, which ends the transaction.
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError):
                await connection.execute("ROLLBACK")
            raise
        return int(status.rsplit(" ", 1)[-1])

    async def ensure_partition(self, moment: datetime) -> None:
        """Make the monthly partition holding ``moment`` if it is missing."""
        try:
            async with self._lock, asyncio.timeout(self._timeout):
                connection = await self._connect()
                await connection.execute("SELECT cdrs_ensure_partition($1)", moment)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
            await self.close()
            raise DatabaseUnavailable(f"{type(err).__name__}: {err}"[:300]) from err
        self._months.add((moment.year, moment.month))

    async def _ensure_partitions(
        self, connection: asyncpg.Connection, records: list[CdrRecord]
    ) -> None:
        days = self._days
        starts = list(map(itemgetter(0), records))  # started_us
        first, last = min(starts, default=0) // _DAY_US, max(starts, default=0) // _DAY_US
        if first == last and first in days:
            return  # the usual batch: calls of one day, already known
        new_days = {start // _DAY_US for start in starts} - days
        for day in new_days:
            started = moment(day * _DAY_US)
            month = (started.year, started.month)
            if month not in self._months:
                await connection.execute("SELECT cdrs_ensure_partition($1)", started)
                self._months.add(month)
            days.add(day)

    async def _connect(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            self._connection = None
            connection = await asyncpg.connect(self._url, timeout=self._connect_timeout)
            try:
                await connection.execute(_CREATE_STAGING)
            except BaseException:
                connection.terminate()
                raise
            self._connection = connection
        return self._connection

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None or connection.is_closed():
            return
        try:
            async with asyncio.timeout(1.0):
                await connection.close()
        except Exception:
            with contextlib.suppress(Exception):
                connection.terminate()
