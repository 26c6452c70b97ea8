"""Batches of CDRs into ``cdrs``, idempotently.

A live batch is new calls in the usual case: it is COPYed straight into ``cdrs``, one
statement in its own transaction (two round trips), the way the benchmark's limit is. When
the key of a row is already there (a backfill raced it, a replay), the COPY fails whole and
the batch takes the path of replays and backfills, which repeat rows by nature: COPY into a
temporary table, then one INSERT from it with ON CONFLICT DO NOTHING on the CDR key.

On this connection ``timestamptz`` and ``numeric`` travel as the records hold them, whole
microseconds (since the epoch, or long), encoded in binary by ``cdr/codecs.py``: no
datetime or Decimal is made per row, and nothing is rounded.

asyncpg directly, not the SQLAlchemy pool: the hot path of the product. One connection,
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

from graam_pbx.cdr import codecs, continuations
from graam_pbx.cdr.continuations import CarrierLeg, OutboundCall
from graam_pbx.cdr.parse import COLUMNS, CdrRecord, micros, moment

log = logging.getLogger(__name__)

STAGING_TABLE = "cdrs_incoming"
# The record's field names, where the table names its column otherwise.
_RENAMED = {
    "started_us": "started_at",
    "answered_us": "answered_at",
    "ended_us": "ended_at",
    "duration_us": "duration",
    "billsec_us": "billsec",
}
TABLE_COLUMNS = tuple(_RENAMED.get(name, name) for name in COLUMNS)
_COLUMN_LIST = ", ".join(TABLE_COLUMNS)
# Built from constants only (the record's field names): the staging table has the types of
# ``cdrs`` itself, so its rows go in as they are.
_CREATE_STAGING = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} ON COMMIT DELETE ROWS "  # noqa: S608
    f"AS SELECT {_COLUMN_LIST} FROM cdrs WITH NO DATA"
)
_INSERT = (
    f"INSERT INTO cdrs ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} "  # noqa: S608
    f"FROM {STAGING_TABLE} ON CONFLICT DO NOTHING"
)
_DAY_US = 86_400 * 1_000_000
# The outbound legs whose carrier channel some of a batch's CDRs continue after a transfer
# (cdr/continuations.py), among those stored: by tenant and linkedid (its index), started at
# most CALL_LOOKBACK_US before the batch's first CDR.
_OUTBOUND_CALLS = """
SELECT c.system_name, c.linkedid, c.dstchannel, c.to_number, c.src
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])
    AS w(tenant_id, system_name, linkedid, channel)
JOIN cdrs c ON c.tenant_id = w.tenant_id AND c.linkedid = w.linkedid
    AND c.system_name = w.system_name AND c.dstchannel = w.channel
WHERE c.started_at >= $5 AND c.direction = 'outbound' AND c.billable
"""
CALL_LOOKBACK_US = 2 * _DAY_US  # a call transferred after two days of talk is not followed
# Errors about the rows themselves (SQLSTATE classes 22 and 23, or a value asyncpg cannot
# encode): retrying cannot help them.
_ROW_ERRORS = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    ValueError,
    TypeError,
    OverflowError,
)


def _row_count(status: str) -> int:
    """The rows a command's status reports ("COPY 5000", "INSERT 0 5000")."""
    return int(status.rsplit(" ", 1)[-1])


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
                records = await self._continued(connection, records)
                if expect_new:
                    try:
                        return await self._copy_new(connection, records)
                    except asyncpg.UniqueViolationError:
                        pass  # some were there already (a backfill, a replay): skip those
                return await self._stage_and_insert(connection, records)
        except _ROW_ERRORS:
            raise
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
            await self.close()
            raise DatabaseUnavailable(f"{type(err).__name__}: {err}"[:300]) from err

    @staticmethod
    async def _continued(
        connection: asyncpg.Connection, records: list[CdrRecord]
    ) -> list[CdrRecord]:
        """``records``, each CDR continuing an outbound call after a transfer made a leg of
        it (``cdr/continuations.py``); the outbound legs are looked up in the batch, then
        among the stored CDRs (a query only when some CDR of the batch may continue one)."""
        found = continuations.candidates(records)
        if not found:
            return records  # the usual batch: no CDR of it follows a transfer
        known = continuations.outbound_calls(records)
        wanted = continuations.unresolved(found, known)
        if wanted:
            first = min(record.started_us for record in records) - CALL_LOOKBACK_US
            rows = await connection.fetch(
                _OUTBOUND_CALLS,
                [tenant for tenant, _ in wanted],
                [leg.system_name for _, leg in wanted],
                [leg.linkedid for _, leg in wanted],
                [leg.channel for _, leg in wanted],
                first,
            )
            for system_name, linkedid, channel, to_number, src in rows:
                known[CarrierLeg(system_name, linkedid, channel)] = OutboundCall(to_number, src)
        return continuations.apply(records, found, known)

    @staticmethod
    async def _copy_new(connection: asyncpg.Connection, records: list[CdrRecord]) -> int:
        """COPY straight into ``cdrs``, a transaction of its own: every row or none."""
        status = await connection.copy_records_to_table(
            # Plain tuples: asyncpg encodes them three times faster than named ones (its fast
            # path takes exact tuples only).
            "cdrs",
            records=map(tuple, records),
            columns=TABLE_COLUMNS,
        )
        return _row_count(status)

    @staticmethod
    async def _stage_and_insert(connection: asyncpg.Connection, records: list[CdrRecord]) -> int:
        """One transaction: COPY into the staging table, INSERT what is new; rows inserted."""
        await connection.execute("BEGIN")
        try:
            await connection.copy_records_to_table(
                STAGING_TABLE, records=map(tuple, records), columns=TABLE_COLUMNS
            )
            status = await connection.execute(_INSERT)
            await connection.execute("COMMIT")
        except (asyncpg.PostgresError, *_ROW_ERRORS):
            # The server refused a statement or a row could not be encoded: the connection is
            # sound, its transaction aborted. Anything else (cancelled, timed out, connection
            # lost) closes the connection, which ends the transaction.
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError):
                await connection.execute("ROLLBACK")
            raise
        return _row_count(status)

    async def ensure_partition(self, moment: datetime) -> None:
        """Make the monthly partition holding ``moment`` if it is missing."""
        try:
            async with self._lock, asyncio.timeout(self._timeout):
                connection = await self._connect()
                await connection.execute("SELECT cdrs_ensure_partition($1)", micros(moment))
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
                await connection.execute("SELECT cdrs_ensure_partition($1)", day * _DAY_US)
                self._months.add(month)
            days.add(day)

    async def _connect(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            self._connection = None
            connection = await asyncpg.connect(self._url, timeout=self._connect_timeout)
            try:
                await codecs.install(connection)
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
