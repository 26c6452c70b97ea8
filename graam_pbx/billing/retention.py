"""Retention: monthly CDR archives, an invoice's calls from them, the ten-year purge, a
tenant's export and a person's erasure.

The contract keeps billing data (rated calls, invoices, payments) ten years from the
invoice's date (Code de commerce L123-22), and makes the operator the client's GDPR
processor. A month of CDRs (one partition, ``cdrs_YYYY_MM`` in UTC) whose calls are all
invoiced moves, once older than ``cdr_archive_after_months``, into one gzip CSV file whose
sha256 and row count are in ``cdr_archives``; the partition is dropped only after the file
was written, fsynced, renamed into place and read back to the same checksum and count, in
the transaction that records it, so a crash anywhere leaves either the partition or the
recorded file. The archive CSV is Postgres's own ``COPY ... CSV HEADER`` text (UTC
timestamps), so a record read back from a file is byte for byte the one Postgres gives.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import csv
import hashlib
import io
import json
import logging
import os
import re
import tempfile
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any, Final
from zoneinfo import ZoneInfo

import asyncpg
import phonenumbers
from sqlalchemy import Table, case, delete, func, null, or_, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from graam_pbx.audit import service as audit
from graam_pbx.auth import service as auth_service
from graam_pbx.auth.models import User
from graam_pbx.auth.principal import Principal, Role
from graam_pbx.billing.models import CdrArchive, Invoice, RatedCall
from graam_pbx.billing.periods import month_start, next_month
from graam_pbx.cdr.models import Cdr
from graam_pbx.db import Base, session_factory
from graam_pbx.errors import Forbidden, GraamError, Invalid, NotFound
from graam_pbx.queue_calls.models import QueueCall
from graam_pbx.settings import Settings
from graam_pbx.tenants.models import Tenant

log = logging.getLogger(__name__)

PARTITION: Final = re.compile(r"^cdrs_([0-9]{4})_([0-9]{2})$")
CDR_COLUMNS: Final[tuple[str, ...]] = tuple(column.name for column in Cdr.__table__.columns)
HEADER: Final = ",".join(CDR_COLUMNS) + "\n"
_CHUNK: Final = 1 << 20  # bytes read from an archive file at a time
_BATCH: Final = 2_000  # rows per round trip of the export, ids per purge statement
# Columns never exported: credentials (hashes of passwords, tokens and keys).
_SECRET_COLUMN: Final = re.compile(r"password|secret|hash|token|^pin$")
# Tables of credentials and sessions: never part of an export.
_NOT_EXPORTED: Final = frozenset({"refresh_tokens", "web_sessions", "login_attempts", "cdrs"})


class ArchiveCorrupt(GraamError):
    """An archive file is missing or its checksum is not the one recorded: never served."""

    status_code = 409
    error_id = "archive-corrupt"


class ArchivePurged(GraamError):
    """The archive of a month was purged (past the ten-year retention)."""

    status_code = 410
    error_id = "archive-purged"


# ---- records of Postgres's CSV ------------------------------------------------------------


def _records(chunks: Iterator[str]) -> Iterator[str]:
    """Whole CSV records (a quoted field may hold newlines), each with its line end."""
    pending: list[str] = []
    quotes = 0
    tail = ""
    for chunk in chunks:
        text = tail + chunk
        lines = text.split("\n")
        tail = lines.pop()  # no newline yet: kept for the next chunk
        for line in lines:
            pending.append(line + "\n")
            quotes += line.count('"')
            if quotes % 2 == 0:  # every quote closed: the record ends at this newline
                yield "".join(pending)
                pending, quotes = [], 0
    if tail:
        pending.append(tail)
    if pending:
        yield "".join(pending)


def _fields(record: str) -> list[str]:
    """A record's fields as text (NULL and "" both as ""; only the key fields are read)."""
    return next(csv.reader(io.StringIO(record)))


def _raw_fields(record: str) -> list[str]:
    """A record's fields as written (quotes kept, NULL as nothing, "" as two quotes)."""
    body = record.removesuffix("\n")
    fields: list[str] = []
    current: list[str] = []
    quoted = False
    for char in body:
        if char == '"':
            quoted = not quoted  # a doubled quote toggles twice
        if char == "," and not quoted:
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


def _raw_value(raw: str) -> str:
    return raw[1:-1].replace('""', '"') if raw.startswith('"') else raw


EMPTY: Final = '""'  # Postgres CSV's empty string (an unquoted nothing is NULL)


@dataclass(frozen=True)
class _Filter:
    """Which archived records to keep: one tenant's, started in [starts, ends)."""

    tenant_id: int
    starts: datetime
    ends: datetime


def _key(fields: list[str], index: dict[str, int]) -> tuple[str, int]:
    # Postgres writes UTC timestamps with their fraction's trailing zeros trimmed, so the
    # text orders like the instant; the same order as ``ORDER BY started_at, id``.
    return fields[index["started_at"]], int(fields[index["id"]])


def _scan_archive(
    path: Path, sha256: str, keep: _Filter | None
) -> tuple[str, int, list[tuple[tuple[str, int], str]]]:
    """Read an archive file and check its checksum: its header, its record count and the
    records ``keep`` selects (with their sort key). Blocking: run in a thread."""
    # One read: the checksum is over the very bytes decompressed, and nothing is returned
    # unless it matches.
    digest = hashlib.sha256()
    header = ""
    count = 0
    kept: list[tuple[tuple[str, int], str]] = []
    index: dict[str, int] = {}
    try:
        for record in _records(_archive_text(path, digest)):
            if not header:
                header = record
                index = {name: i for i, name in enumerate(_fields(record))}
                continue
            count += 1
            if keep is None:
                continue
            fields = _fields(record)
            if fields[index["tenant_id"]] != str(keep.tenant_id):
                continue
            started = datetime.fromisoformat(fields[index["started_at"]])
            if keep.starts <= started < keep.ends:
                kept.append((_key(fields, index), record))
    except FileNotFoundError:
        raise ArchiveCorrupt(f"the archive file {path.name} is missing") from None
    except (zlib.error, UnicodeDecodeError, ValueError, KeyError, IndexError) as err:
        # A changed file usually fails to inflate before its checksum is complete.
        raise ArchiveCorrupt(f"the archive file {path.name} is unreadable: {err}") from None
    if digest.hexdigest() != sha256:
        raise ArchiveCorrupt(f"the archive file {path.name} does not match its checksum")
    return header, count, kept


# ---- the archive pass ---------------------------------------------------------------------


def _months_before(day: date, months: int) -> date:
    total = day.year * 12 + (day.month - 1) - months
    return date(total // 12, total % 12 + 1, 1)


def _partition_name(month: date) -> str:
    return f"cdrs_{month.year:04d}_{month.month:02d}"


ARCHIVE_FILE: Final = re.compile(r"^cdrs-[0-9]{4}-[0-9]{2}-[0-9a-f]{8}\.csv\.gz$|\.tmp$")
# A file no archive row names is removed by the daily pass once this old: younger, it may be
# one a pass still running has written and not yet recorded.
ORPHAN_AGE: Final = timedelta(days=1)


def _file_name(month: date) -> str:
    # A new name for every file written: a rolled-back transaction never leaves the recorded
    # name pointing at other bytes than its checksum's.
    return f"cdrs-{month.year:04d}-{month.month:02d}-{uuid.uuid4().hex[:8]}.csv.gz"


def archive_file(settings: Settings, stored: str) -> Path:
    """Where an archive's recorded path is (a bare name: under the archive directory)."""
    path = Path(stored)
    return path if path.is_absolute() else settings.billing_archive_path / path


async def _driver(session: AsyncSession) -> asyncpg.Connection:
    # COPY streams a month through the session's own connection (and its transaction).
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None  # noqa: S101 - an open connection has its driver connection
    driver: asyncpg.Connection = raw
    return driver


async def _utc_text(session: AsyncSession) -> None:
    # COPY writes timestamps in the session's zone and date style: fixed, so a file and a
    # later read of Postgres write every record the same way. Through the session: its
    # first statement opens the transaction the driver's COPY then runs in.
    await session.execute(text("SET LOCAL timezone = 'UTC'"))
    await session.execute(text("SET LOCAL datestyle = 'ISO, YMD'"))


def _sessions(
    engine_or_session_factory: AsyncEngine | async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    if isinstance(engine_or_session_factory, AsyncEngine):
        return session_factory(engine_or_session_factory)
    return engine_or_session_factory


async def _list_partitions(session: AsyncSession) -> list[date]:
    names = await session.scalars(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'cdrs'::regclass"
        )
    )
    months = []
    for name in names:
        found = PARTITION.match(name)
        if found:
            months.append(date(int(found[1]), int(found[2]), 1))
    return sorted(months)


# A billable outbound leg of a month that billing still needs in Postgres: not on an invoice
# yet, of a tenant that has a billing account covering the call's day.
_NOT_INVOICED = """
SELECT count(*) FROM {partition} c
WHERE c.billable AND c.direction = 'outbound' AND c.tenant_id IS NOT NULL
    AND NOT EXISTS (
        SELECT 1 FROM rated_calls r WHERE r.cdr_id = c.id AND r.invoice_id IS NOT NULL)
    AND EXISTS (
        SELECT 1 FROM billing_accounts a
        WHERE a.tenant_id = c.tenant_id
            AND (c.started_at AT TIME ZONE $1)::date >= a.subscribed_on
            AND (a.terminates_on IS NULL
                OR (c.started_at AT TIME ZONE $1)::date <= a.terminates_on))
"""


async def archive_months(
    engine_or_session_factory: AsyncEngine | async_sessionmaker[AsyncSession],
    settings: Settings,
    now: datetime,
) -> list[date]:
    """Archive every monthly CDR partition older than ``cdr_archive_after_months`` whose
    calls are invoiced: the months archived (first days, UTC)."""
    sessions = _sessions(engine_or_session_factory)
    limit = _months_before(
        month_start(now.astimezone(UTC).date()), settings.cdr_archive_after_months
    )
    async with sessions() as session, session.begin():
        months = [month for month in await _list_partitions(session) if month < limit]
    archived: list[date] = []
    for month in months:
        try:
            async with sessions() as session, session.begin():
                if await _archive_month(session, settings, month):
                    archived.append(month)
        except (OSError, ArchiveCorrupt, asyncpg.PostgresError, SQLAlchemyError) as err:
            # The partition is still in place: the next pass tries this month again.
            log.warning("cdr archive of %s not made: %s", month.isoformat(), err)
    return archived


async def _archive_month(session: AsyncSession, settings: Settings, month: date) -> bool:
    partition = _partition_name(month)
    await _utc_text(session)
    await session.execute(text("SET LOCAL lock_timeout = '30s'"))
    raw = await _driver(session)
    if await raw.fetchval("SELECT to_regclass($1)", partition) is None:
        return False  # another pass archived it meanwhile
    # No row may join the partition between its copy and its drop.
    await raw.execute(f'LOCK TABLE "{partition}" IN SHARE MODE')
    waiting = await raw.fetchval(
        _NOT_INVOICED.format(partition=f'"{partition}"'), settings.billing_timezone
    )
    if waiting:
        log.info("cdr archive of %s waits for %d call(s) to be invoiced", month, waiting)
        return False
    # Partition names come from PARTITION's pattern, column names from the model: no input.
    rows: int = await raw.fetchval(f'SELECT count(*) FROM "{partition}"')  # noqa: S608
    prior = await session.scalar(
        select(CdrArchive).where(CdrArchive.month == month).with_for_update()
    )
    earlier: list[tuple[tuple[str, int], str]] = []
    if prior is not None and prior.purged_at is None:
        # Rows of an archived month came back (a late backfill): the new file holds both.
        earlier = await _every_record(archive_file(settings, prior.path), prior.sha256)
    directory = settings.billing_archive_path
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    target = directory / _file_name(month)
    columns = ", ".join(f'"{name}"' for name in CDR_COLUMNS)
    query = f'SELECT {columns} FROM "{partition}" ORDER BY started_at, id'  # noqa: S608
    writer = await asyncio.to_thread(_ArchiveWriter.open, target)
    try:
        if earlier:
            buffer = io.BytesIO()
            await raw.copy_from_query(query, output=buffer, format="csv", header=True)
            fresh = buffer.getvalue().decode("utf-8")
            records = list(_records(iter([fresh])))
            index = {name: i for i, name in enumerate(_fields(records[0]))}
            merged = earlier + [(_key(_fields(r), index), r) for r in records[1:]]
            merged.sort(key=lambda item: item[0])
            body = records[0] + "".join(record for _, record in merged)
            await asyncio.to_thread(writer.write, body.encode("utf-8"))
            rows += len(earlier)
        else:

            async def sink(chunk: bytes) -> None:
                await asyncio.to_thread(writer.write, chunk)

            await raw.copy_from_query(query, output=sink, format="csv", header=True)
        sha256, size = await asyncio.to_thread(writer.finish)
    except BaseException:
        await asyncio.to_thread(writer.abandon)
        raise
    # Read back before anything is dropped: the file on disk is the one recorded.
    _, counted, _ = await asyncio.to_thread(_scan_archive, target, sha256, None)
    if counted != rows:
        raise ArchiveCorrupt(f"{target.name} holds {counted} rows, the month {rows}")
    if prior is None:
        session.add(CdrArchive(month=month, path=target.name, sha256=sha256, rows=rows, bytes=size))
    else:
        prior.path, prior.sha256, prior.rows, prior.bytes = target.name, sha256, rows, size
        prior.archived_at = datetime.now(UTC)
        prior.purged_at = None
    await session.flush()
    await raw.execute(f'ALTER TABLE cdrs DETACH PARTITION "{partition}"')
    await raw.execute(f'DROP TABLE "{partition}"')
    log.info("cdrs of %s archived to %s (%d rows, sha256 %s)", month, target, rows, sha256)
    return True


async def _every_record(path: Path, sha256: str) -> list[tuple[tuple[str, int], str]]:
    def scan() -> list[tuple[tuple[str, int], str]]:
        header, _, _ = _scan_archive(path, sha256, None)
        index = {name: i for i, name in enumerate(_fields(header))}
        kept: list[tuple[tuple[str, int], str]] = []
        for n, record in enumerate(_records(_archive_text(path))):
            if n:
                kept.append((_key(_fields(record), index), record))
        return kept

    return await asyncio.to_thread(scan)


def _archive_text(path: Path, digest: Any = None) -> Iterator[str]:
    """A gzip CSV file's text, decompressed and decoded a block at a time; ``digest`` (a
    hashlib object) is fed the file's bytes on the way."""
    inflate = zlib.decompressobj(31)
    decode = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as source:
        while block := source.read(_CHUNK):
            if digest is not None:
                digest.update(block)
            yield decode.decode(inflate.decompress(block))
        yield decode.decode(inflate.flush(), final=True)
    if not inflate.eof:
        raise zlib.error("the gzip stream is truncated")


@dataclass
class _ArchiveWriter:
    """A gzip file written under a temporary name, fsynced, then renamed into place."""

    target: Path
    temporary: Path
    handle: IO[bytes]
    deflate: Any
    digest: Any = field(default_factory=hashlib.sha256)
    size: int = 0

    @classmethod
    def open(cls, target: Path) -> _ArchiveWriter:
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        # wbits 31: a gzip member (header with no name and no time: the same rows make the
        # same file).
        return cls(target, temporary, temporary.open("wb"), zlib.compressobj(6, zlib.DEFLATED, 31))

    def _out(self, data: bytes) -> None:
        if data:
            self.handle.write(data)
            self.digest.update(data)
            self.size += len(data)

    def write(self, chunk: bytes) -> None:
        self._out(self.deflate.compress(chunk))

    def finish(self) -> tuple[str, int]:
        self._out(self.deflate.flush())
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.replace(self.temporary, self.target)
        directory = os.open(self.target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)
        return self.digest.hexdigest(), self.size

    def abandon(self) -> None:
        self.handle.close()
        self.temporary.unlink(missing_ok=True)


def _rewrite_archive(
    path: Path, sha256: str, month: date, change: Callable[[dict[str, int], list[str]], bool]
) -> tuple[str, str, int, int] | None:
    """Write a new file of an archive with ``change`` applied to each record's raw fields:
    its name, sha256, size and changed records (None: nothing changed, nothing written).
    Blocking: run in a thread."""
    header, rows, _ = _scan_archive(path, sha256, None)
    index = {name: i for i, name in enumerate(_fields(header))}
    target = path.with_name(_file_name(month))
    writer = _ArchiveWriter.open(target)
    changed = 0
    try:
        for n, record in enumerate(_records(_archive_text(path))):
            if n:
                fields = _raw_fields(record)
                if change(index, fields):
                    changed += 1
                    record = ",".join(fields) + "\n"
            writer.write(record.encode("utf-8"))
        if not changed:
            writer.abandon()
            return None
        new_sha256, size = writer.finish()
    except BaseException:
        writer.abandon()
        raise
    if _scan_archive(target, new_sha256, None)[1] != rows:
        target.unlink(missing_ok=True)
        raise ArchiveCorrupt(f"{target.name} did not read back as written")
    return target.name, new_sha256, size, changed


async def _change_archives(
    session: AsyncSession,
    settings: Settings,
    change: Callable[[dict[str, int], list[str]], bool],
) -> tuple[int, list[date]]:
    """Apply ``change`` to every kept archive, each rewritten to a new file recorded in the
    caller's transaction (the former file goes with the next daily pass): records changed,
    and the months whose file could not be read."""
    archives = (
        await session.scalars(
            select(CdrArchive)
            .where(CdrArchive.purged_at.is_(None))
            .order_by(CdrArchive.month)
            .with_for_update()
        )
    ).all()
    total = 0
    unreadable: list[date] = []
    for archive in archives:
        try:
            written = await asyncio.to_thread(
                _rewrite_archive,
                archive_file(settings, archive.path),
                archive.sha256,
                archive.month,
                change,
            )
        except ArchiveCorrupt as err:
            # A broken archive does not hold back the rest of the erasure; it is reported.
            log.error("erasure skipped the archive of %s: %s", archive.month, err.message)
            unreadable.append(archive.month)
            continue
        if written is not None:
            archive.path, archive.sha256, archive.bytes, changed = written
            total += changed
    await session.flush()
    return total, unreadable


# ---- an invoice's calls -------------------------------------------------------------------


def _utc_months(starts: datetime, ends: datetime) -> list[date]:
    month = month_start(starts.astimezone(UTC).date())
    months = []
    while datetime.combine(month, time(0), UTC) < ends:
        months.append(month)
        month = next_month(month)
    return months


async def _tenant_records(
    session: AsyncSession,
    settings: Settings,
    tenant_id: int,
    starts: datetime,
    ends: datetime,
    *,
    skip_purged: bool = False,
) -> list[str]:
    """A tenant's CDR records started in [starts, ends), from the archives and Postgres, in
    the order of ``started_at, id`` (a purged month: ArchivePurged, unless skipped)."""
    await _utc_text(session)
    raw = await _driver(session)
    months = _utc_months(starts, ends)
    archives = (await session.scalars(select(CdrArchive).where(CdrArchive.month.in_(months)))).all()
    keyed: list[tuple[tuple[str, int], str]] = []
    wanted = _Filter(tenant_id, starts, ends)
    for archive in archives:
        if archive.purged_at is not None:
            if skip_purged:
                continue
            raise ArchivePurged(
                f"the CDRs of {archive.month:%Y-%m} were purged past their retention"
            )
        _, _, kept = await asyncio.to_thread(
            _scan_archive, archive_file(settings, archive.path), archive.sha256, wanted
        )
        keyed.extend(kept)
    columns = ", ".join(f'"{name}"' for name in CDR_COLUMNS)
    buffer = io.BytesIO()
    await raw.copy_from_query(
        f"SELECT {columns} FROM cdrs WHERE tenant_id = $1 AND started_at >= $2"  # noqa: S608
        " AND started_at < $3 ORDER BY started_at, id",
        tenant_id,
        starts,
        ends,
        output=buffer,
        format="csv",
        header=True,
    )
    records = list(_records(iter([buffer.getvalue().decode("utf-8")])))
    index = {name: i for i, name in enumerate(_fields(records[0]))}
    keyed.extend((_key(_fields(record), index), record) for record in records[1:])
    keyed.sort(key=lambda item: item[0])
    return [record for _, record in keyed]


async def archived_calls(session: AsyncSession, settings: Settings, invoice_id: int) -> bytes:
    """The CSV of the tenant's CDRs of an invoice's period: from the archive files (after
    checking their checksums) and from Postgres for months not archived."""
    invoice = await session.get(Invoice, invoice_id)
    if invoice is None:
        raise NotFound(f"no invoice {invoice_id}")
    zone = ZoneInfo(settings.billing_timezone)
    starts = datetime.combine(invoice.period_start, time(0), zone)
    ends = datetime.combine(invoice.period_end + timedelta(days=1), time(0), zone)
    records = await _tenant_records(session, settings, invoice.tenant_id, starts, ends)
    return (HEADER + "".join(records)).encode("utf-8")


# ---- the purge ----------------------------------------------------------------------------


def retention_cutoff(today: date, years: int) -> date:
    """The first day still kept: data dated before it are past retention (29 February
    counts from 28 February in a year without one)."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return today.replace(year=today.year - years, day=28)


@dataclass
class PurgeReport:
    """What one purge removed."""

    cutoff: date
    invoices: int = 0
    rated_calls: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    archives: list[date] = field(default_factory=list)


def _invoice_children() -> list[tuple[Table, str]]:
    """Every table holding rows of an invoice (a foreign key to it), but credit notes."""
    children: list[tuple[Table, str]] = []
    for table in Base.metadata.sorted_tables:
        if table.name == "invoices":
            continue
        for key in table.foreign_keys:
            if key.column.table.name == "invoices":
                children.append((table, key.parent.name))
    return children


async def purge_expired(
    session_factory: async_sessionmaker[AsyncSession], settings: Settings, now: datetime
) -> PurgeReport:
    """Delete billing data past retention (invoices issued before the cutoff and all their
    rows) and the archive files whose newest invoice is past it."""
    zone = ZoneInfo(settings.billing_timezone)
    cutoff = retention_cutoff(now.astimezone(zone).date(), settings.billing_retention_years)
    report = PurgeReport(cutoff)
    async with session_factory() as session, session.begin():
        # An invoice goes with its credit notes: one still kept keeps the invoice it credits.
        credits = Invoice.__table__.alias("credit")
        young_credit = (
            select(credits.c.id)
            .where(credits.c.credits_invoice_id == Invoice.id, credits.c.issued_on >= cutoff)
            .exists()
        )
        expired = (
            await session.execute(
                select(Invoice.id, Invoice.kind)
                .where(Invoice.issued_on < cutoff, ~young_credit)
                .order_by(Invoice.id)
            )
        ).all()
        ordered = [i for i, kind in expired if kind == "credit_note"] + [
            i for i, kind in expired if kind != "credit_note"
        ]
        children = _invoice_children()
        for start in range(0, len(ordered), _BATCH):
            ids = ordered[start : start + _BATCH]
            done = await session.execute(delete(RatedCall).where(RatedCall.invoice_id.in_(ids)))
            report.rated_calls += done.rowcount or 0  # type: ignore[attr-defined]
            for table, column in children:
                done = await session.execute(delete(table).where(table.c[column].in_(ids)))
                count = done.rowcount or 0  # type: ignore[attr-defined]
                report.rows[table.name] = report.rows.get(table.name, 0) + count
            done = await session.execute(delete(Invoice).where(Invoice.id.in_(ids)))
            report.invoices += done.rowcount or 0  # type: ignore[attr-defined]
        # Rated calls no invoice ever billed (a tenant without an account) go at the same age.
        done = await session.execute(
            delete(RatedCall).where(
                RatedCall.invoice_id.is_(None), RatedCall.period < month_start(cutoff)
            )
        )
        report.rated_calls += done.rowcount or 0  # type: ignore[attr-defined]
        # An archive is kept while a kept invoice's period touches its month, and at least
        # ten years from the month's end (when its invoices are issued). A UTC month and a
        # billing month differ by the zone's offset: a day either side keeps it the longer.
        archives = (
            await session.scalars(
                select(CdrArchive).where(CdrArchive.purged_at.is_(None)).with_for_update()
            )
        ).all()
        purged_files: list[str] = []
        for archive in archives:
            newest = await session.scalar(
                select(func.max(Invoice.issued_on)).where(
                    Invoice.period_start <= next_month(archive.month),
                    Invoice.period_end >= archive.month - timedelta(days=1),
                )
            )
            reference = max(next_month(archive.month), newest or date.min)
            if reference < cutoff:
                archive.purged_at = now
                report.archives.append(archive.month)
                purged_files.append(archive.path)
        kept_files = set(
            (
                await session.scalars(select(CdrArchive.path).where(CdrArchive.purged_at.is_(None)))
            ).all()
        )
    # Files go once their purge is committed. Any other archive file no kept archive names
    # (a purged one left by a crash, one an erasure replaced, one a failed pass wrote) goes
    # once a day old.
    for stored in purged_files:
        await asyncio.to_thread(archive_file(settings, stored).unlink, missing_ok=True)
    await asyncio.to_thread(_sweep, settings.billing_archive_path, kept_files)
    if report.invoices or report.archives or report.rated_calls:
        log.info(
            "retention purge before %s: %d invoice(s), %d rated call(s), archives %s",
            cutoff,
            report.invoices,
            report.rated_calls,
            [m.isoformat() for m in report.archives],
        )
    return report


def _sweep(directory: Path, kept: set[str]) -> None:
    now = datetime.now(UTC)  # the files' own clock, whatever the pass's ``now``
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.name in kept or not ARCHIVE_FILE.search(entry.name):
            continue
        modified = datetime.fromtimestamp(entry.stat().st_mtime, UTC)
        if now - modified >= ORPHAN_AGE:
            entry.unlink(missing_ok=True)
            log.info("archive file %s removed: no kept archive names it", entry.name)


async def run_retention(
    session_factory: async_sessionmaker[AsyncSession], settings: Settings, now: datetime
) -> None:
    """The scheduler's daily pass: archive the months due, then purge what is past retention."""
    await archive_months(session_factory, settings, now)
    await purge_expired(session_factory, settings, now)


# ---- a tenant's export --------------------------------------------------------------------


def _json_value(value: object) -> object:
    """A column's value as JSON: times in ISO 8601, decimals as exact strings, bytes in
    base64; anything else JSON has no type for, as its text."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if value is None or isinstance(value, bool | int | str | dict):
        return value
    return str(value)  # Decimal (exact), UUID, interval, address


def _exported_tables() -> list[tuple[Table, str]]:
    """Every table of a tenant's data and how it names the tenant: its own ``tenant_id``,
    else (``via:<table>.<column>``) a foreign key to a table that has one."""
    scoped = {
        table.name: table
        for table in Base.metadata.sorted_tables
        if "tenant_id" in table.c and table.name not in _NOT_EXPORTED
    }
    tables: list[tuple[Table, str]] = [(table, "tenant_id") for table in scoped.values()]
    for table in Base.metadata.sorted_tables:
        if table.name in scoped or table.name in _NOT_EXPORTED or table.name == "tenants":
            continue
        for key in table.foreign_keys:
            if key.column.table.name in scoped:
                tables.append((table, f"via:{key.column.table.name}.{key.parent.name}"))
                break
    return tables


class _ZipOut:
    """A ZIP file built entry by entry (blocking writes: called through to_thread)."""

    def __init__(self, path: Path) -> None:
        self.archive = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED)
        self.entry: IO[bytes] | None = None

    def begin(self, name: str) -> None:
        self.end()
        self.entry = self.archive.open(name, "w", force_zip64=True)

    def write(self, data: bytes) -> None:
        assert self.entry is not None  # noqa: S101 - begin() opened it
        self.entry.write(data)

    def end(self) -> None:
        if self.entry is not None:
            self.entry.close()
            self.entry = None

    def close(self) -> None:
        self.end()
        self.archive.close()


def export_tenant_of(principal: Principal, tenant_id: int | None) -> int:
    """Whose data the caller may export: a tenant admin its own tenant's, an operator the
    one it names."""
    if principal.is_operator:
        if tenant_id is None:
            raise Invalid("query.tenant_id", "operators name the tenant to export")
        return tenant_id
    if principal.role is not Role.ADMIN:
        raise Forbidden(f"a {principal.role} may not do this")
    assert principal.tenant_id is not None  # noqa: S101 - tenant roles have a tenant
    if tenant_id is not None and tenant_id != principal.tenant_id:
        raise NotFound(f"no tenant {tenant_id}")
    return principal.tenant_id


async def export_tenant(session: AsyncSession, settings: Settings, tenant_id: int) -> Path:
    """A ZIP file of a tenant's whole data (JSON lines per table, its CDRs as CSV, archived
    months included, its invoices' documents): the caller deletes it once sent."""
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"no tenant {tenant_id}")
    handle, name = tempfile.mkstemp(prefix=f"graam-export-{tenant_id}-", suffix=".zip")
    os.close(handle)
    path = Path(name)
    out = await asyncio.to_thread(_ZipOut, path)
    try:
        await _write_export(session, settings, tenant, out)
    except BaseException:
        await asyncio.to_thread(out.close)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    await asyncio.to_thread(out.close)
    return path


def _json_lines(rows: Sequence[dict[str, object]]) -> bytes:
    return "".join(
        json.dumps({k: _json_value(v) for k, v in row.items()}, ensure_ascii=False, default=str)
        + "\n"
        for row in rows
    ).encode("utf-8")


async def _write_export(
    session: AsyncSession, settings: Settings, tenant: Tenant, out: _ZipOut
) -> None:
    manifest: dict[str, object] = {
        "tenant_id": tenant.id,
        "exported_at": datetime.now(UTC).isoformat(),
        "files": {},
    }
    files: dict[str, int] = {}
    tenants_table = Base.metadata.tables["tenants"]
    row = (
        await session.execute(select(tenants_table).where(tenants_table.c.id == tenant.id))
    ).one()
    await asyncio.to_thread(out.begin, "tenants.jsonl")
    await asyncio.to_thread(out.write, _json_lines([_public(tenants_table, dict(row._mapping))]))
    files["tenants.jsonl"] = 1
    for table, scope in _exported_tables():
        # Documents' bytes go as files of their own (below), credentials never.
        statement = select(
            *[
                c
                for c in table.c
                if not _SECRET_COLUMN.search(c.name)
                and (table.name, c.name) != ("invoice_documents", "content")
            ]
        )
        if scope == "tenant_id":
            statement = statement.where(table.c.tenant_id == tenant.id)
        else:
            parent_name, column = scope.removeprefix("via:").split(".")
            parent = Base.metadata.tables[parent_name]
            key = next(k for k in table.foreign_keys if k.parent.name == column)
            statement = statement.where(
                table.c[column].in_(
                    select(parent.c[key.column.name]).where(parent.c.tenant_id == tenant.id)
                )
            )
        entry = f"{table.name}.jsonl"
        await asyncio.to_thread(out.begin, entry)
        count = 0
        result = await session.stream(statement.execution_options(yield_per=_BATCH))
        async for batch in result.mappings().partitions(_BATCH):
            rows = [dict(item) for item in batch]
            count += len(rows)
            await asyncio.to_thread(out.write, _json_lines(rows))
        files[entry] = count
    # The invoices' documents as they were sent.
    documents_table = Base.metadata.tables["invoice_documents"]
    invoices_table = Base.metadata.tables["invoices"]
    documents = await session.stream(
        select(invoices_table.c.number, documents_table.c.format, documents_table.c.content)
        .join(invoices_table, invoices_table.c.id == documents_table.c.invoice_id)
        .where(invoices_table.c.tenant_id == tenant.id)
    )
    async for number, fmt, content in documents:
        entry = f"invoices/{number}.{fmt}"
        await asyncio.to_thread(out.begin, entry)
        await asyncio.to_thread(out.write, bytes(content))
        files[entry] = 1
    # Every CDR, archived months included, in the archive's CSV: a UTC month at a time, so
    # a large tenant's calls are never all in memory at once.
    archived = set(await session.scalars(select(CdrArchive.month)))
    months = sorted(archived | set(await _list_partitions(session)))
    await asyncio.to_thread(out.begin, "cdrs.csv")
    await asyncio.to_thread(out.write, HEADER.encode("utf-8"))
    count = 0
    for month in months:
        records = await _tenant_records(
            session,
            settings,
            tenant.id,
            datetime.combine(month, time(0), UTC),
            datetime.combine(next_month(month), time(0), UTC),
            skip_purged=True,
        )
        count += len(records)
        await asyncio.to_thread(out.write, "".join(records).encode("utf-8"))
    files["cdrs.csv"] = count
    manifest["files"] = files
    await asyncio.to_thread(out.begin, "manifest.json")
    await asyncio.to_thread(out.write, json.dumps(manifest, indent=2).encode("utf-8"))


def _public(table: Table, row: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in row.items() if not _SECRET_COLUMN.search(k) and k in table.c}


# ---- a person's erasure -------------------------------------------------------------------


@dataclass
class ErasureReport:
    """What an erasure changed."""

    kind: str
    user_id: int | None = None
    cdrs: int = 0
    queue_calls: int = 0
    archives_unreadable: list[date] = field(default_factory=list)


def erased_email(user_id: int) -> str:
    """The address an erased user keeps: unique, and undeliverable by RFC 2606."""
    return f"erased-{user_id}@invalid"


def _eraser_tenant(principal: Principal) -> int | None:
    """The tenant an erasure may touch: an admin's own, any for an operator (None)."""
    if principal.is_operator:
        return None
    if principal.role is not Role.ADMIN:
        raise Forbidden(f"a {principal.role} may not do this")
    return principal.tenant_id


async def erase_user(
    session: AsyncSession, settings: Settings, principal: Principal, user_id: int
) -> ErasureReport:
    """Replace a tenant user's personal fields, disable it and end its sessions (tenant
    admins: their own tenant's users; operators: any tenant's)."""
    tenant_id = _eraser_tenant(principal)
    statement = select(User).where(User.id == user_id, User.tenant_id.is_not(None))
    if tenant_id is not None:
        statement = statement.where(User.tenant_id == tenant_id)
    user = await session.scalar(statement.with_for_update())
    if user is None:
        raise NotFound(f"no user {user_id}")
    if principal.user_id == user.id:
        raise Invalid("body.user_id", "you cannot erase yourself")
    user.email = erased_email(user.id)
    user.display_name = "erased"
    user.disabled = True
    await auth_service.revoke_credentials(session, user, api_keys=True)
    # The caller name of the user's own legs is its name; billing keeps only numbers.
    done = await session.execute(
        update(Cdr)
        .where(Cdr.tenant_id == user.tenant_id, Cdr.agent_user_id == user.id, Cdr.clid != "")
        .values(clid="")
    )
    tenant, user_text = str(user.tenant_id), str(user.id)

    def archived_legs(index: dict[str, int], fields: list[str]) -> bool:
        if (
            _raw_value(fields[index["tenant_id"]]) != tenant
            or _raw_value(fields[index["agent_user_id"]]) != user_text
            or fields[index["clid"]] in ("", EMPTY)
        ):
            return False
        fields[index["clid"]] = EMPTY
        return True

    archived, unreadable = await _change_archives(session, settings, archived_legs)
    report = ErasureReport(
        "user",
        user_id=user.id,
        cdrs=(done.rowcount or 0) + archived,  # type: ignore[attr-defined]
        archives_unreadable=unreadable,
    )
    await audit.record(
        session,
        principal,
        "erase",
        "user",
        user.id,
        {"cdrs": report.cdrs},
        tenant_id=user.tenant_id,
    )
    await session.flush()
    return report


ERASED_COLUMNS: Final = ("tenant_id", "billable", "direction", "src", "dst", "to_number", "clid")


def number_forms(e164: str) -> list[str]:
    """How a number can be written in CDRs: E.164, without "+", and nationally."""
    parsed = phonenumbers.parse(e164, None)
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return sorted({e164, e164.removeprefix("+"), re.sub(r"[^0-9+]", "", national)} - {""})


async def erase_phone_number(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    e164: str,
    tenant_id: int | None = None,
) -> ErasureReport:
    """Blank a caller's number where billing does not need it: every leg from or to it but
    billable outbound ones, and queue calls (admins: their tenant; operators: ``tenant_id``,
    or every tenant when None)."""
    own = _eraser_tenant(principal)
    if own is not None:
        if tenant_id is not None and tenant_id != own:
            raise NotFound(f"no tenant {tenant_id}")
        tenant_id = own
    elif tenant_id is not None and await session.get(Tenant, tenant_id) is None:
        raise NotFound(f"no tenant {tenant_id}")
    forms = number_forms(e164)
    # Billable outbound legs are billing data until their invoice's retention ends.
    not_billing = ~(Cdr.billable & (Cdr.direction == "outbound"))
    in_clid = or_(*(Cdr.clid.contains(form, autoescape=True) for form in forms))
    mentioned = or_(Cdr.src.in_(forms), Cdr.dst.in_(forms), Cdr.to_number.in_(forms), in_clid)
    statement = update(Cdr).where(not_billing, mentioned)
    if tenant_id is not None:
        statement = statement.where(Cdr.tenant_id == tenant_id)
    done = await session.execute(
        statement.values(
            src=case((Cdr.src.in_(forms), ""), else_=Cdr.src),
            dst=case((Cdr.dst.in_(forms), ""), else_=Cdr.dst),
            clid=case((in_clid, ""), else_=Cdr.clid),
            to_number=case((Cdr.to_number.in_(forms), null()), else_=Cdr.to_number),
        )
    )
    only = None if tenant_id is None else str(tenant_id)

    def archived_legs(index: dict[str, int], fields: list[str]) -> bool:
        value = {name: _raw_value(fields[index[name]]) for name in ERASED_COLUMNS}
        if only is not None and value["tenant_id"] != only:
            return False
        if value["billable"] == "t" and value["direction"] == "outbound":
            return False
        changed = False
        for name in ("src", "dst"):
            if value[name] in forms:
                fields[index[name]], changed = EMPTY, True
        if value["to_number"] in forms:
            fields[index["to_number"]], changed = "", True  # NULL
        if any(form in value["clid"] for form in forms):
            fields[index["clid"]], changed = EMPTY, True
        return changed

    archived, unreadable = await _change_archives(session, settings, archived_legs)
    calls = update(QueueCall).where(QueueCall.caller_number.in_(forms)).values(caller_number="")
    if tenant_id is not None:
        calls = calls.where(QueueCall.tenant_id == tenant_id)
    queue_done = await session.execute(calls)
    report = ErasureReport(
        "phone_number",
        cdrs=(done.rowcount or 0) + archived,  # type: ignore[attr-defined]
        queue_calls=queue_done.rowcount or 0,  # type: ignore[attr-defined]
        archives_unreadable=unreadable,
    )
    # The audit entry names no number: it would keep what was just erased.
    await audit.record(
        session,
        principal,
        "erase",
        "phone_number",
        None,
        {"cdrs": report.cdrs, "queue_calls": report.queue_calls},
        tenant_id=tenant_id,
    )
    await session.flush()
    return report


__all__ = [
    "ArchiveCorrupt",
    "ArchivePurged",
    "ErasureReport",
    "PurgeReport",
    "archive_months",
    "archived_calls",
    "erase_phone_number",
    "erase_user",
    "export_tenant",
    "export_tenant_of",
    "purge_expired",
    "retention_cutoff",
    "run_retention",
]
