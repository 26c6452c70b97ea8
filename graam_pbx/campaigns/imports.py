"""CSV imports into a contact list: streamed, merged by number, every refused row reported.

The file is read from the upload's spooled copy a batch of rows at a time, parsed and checked
in a worker thread (numbers are parsed by ``phonenumbers``, which is CPU work), and each batch
is COPied into a temporary table; one INSERT … SELECT … ON CONFLICT then merges the whole file
into the list. Everything happens in the caller's transaction: a failed import leaves nothing.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, BinaryIO

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Scope
from graam_pbx.campaigns.models import ContactImport, ContactList, ImportRefusal
from graam_pbx.campaigns.phones import InvalidNumber, parse_contact_number
from graam_pbx.db import keyset_page
from graam_pbx.errors import GraamError, Invalid, NotFound
from graam_pbx.rest import unstorable_reason

MAX_IMPORT_BYTES = 50 * 1024 * 1024
MAX_IMPORT_ROWS = 1_000_000
MAX_COLUMNS = 100
MAX_HEADER_CHARS = 64
# The longest value each known column takes (the table's), and any custom field.
MAX_CHARS = {"number": 32, "name": 200, "consent_at": 40, "consent_source": 200}
MAX_FIELD_CHARS = 1000
BATCH_ROWS = 5000
_KNOWN = ("number", "name", "consent_at", "consent_source")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of undecodable bytes
_FRENCH_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_SHOWN_CHARS = 200  # how much of a refused value the report keeps


class ImportTooLarge(GraamError):
    status_code = 413
    error_id = "import-too-large"


@dataclass
class _Batch:
    rows: list[tuple[Any, ...]] = field(default_factory=list)  # the staging table's columns
    refusals: list[tuple[int, str, str, str]] = field(default_factory=list)
    done: bool = False


def shown_value(value: str) -> str:
    """A value as a report stores it: storable, and not endless."""
    text = "".join("\ufffd" if unstorable_reason(c) else c for c in value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"


def _unstorable(value: str) -> str | None:
    if _NOT_UTF8.search(value):
        return "not UTF-8 text"
    return unstorable_reason(value)


def _consent_time(text: str, now: datetime) -> datetime:
    """ISO 8601 (a date: that day's midnight; no offset: UTC) or French DD/MM/YYYY."""
    french = _FRENCH_DATE.match(text)
    try:
        if french:
            day, month, year = (int(part) for part in french.groups())
            moment = datetime(year, month, day, tzinfo=UTC)
        elif len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            # In UTC: 0001-01-01T00:00+14:00 is before year 1 there, which the database
            # cannot store (an OverflowError once the row is written, not a refused row).
            moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(
            "not a date (2026-09-01, 01/09/2026 or 2026-09-01T10:15:00+02:00)"
        ) from None
    if moment > now:
        raise ValueError("consent cannot be dated in the future")
    return moment


class _CsvRows:
    """The rows of one uploaded CSV, checked, a batch at a time (runs in a worker thread)."""

    def __init__(self, file: BinaryIO, default_region: str, now: datetime) -> None:
        self.default_region = default_region
        self.now = now
        self.rows_read = 0
        self._seq = 0
        # surrogateescape: a row with bytes that are not UTF-8 is refused alone, not the file.
        self._text = io.TextIOWrapper(
            file, encoding="utf-8-sig", errors="surrogateescape", newline=""
        )
        try:
            header_line = self._text.readline()
            if not header_line.strip():
                raise Invalid("body.file", "the file is empty: a header row comes first")
            self.delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
            header = next(csv.reader([header_line], delimiter=self.delimiter))
            self.columns = self._header(header)
        except BaseException:
            self.close()
            raise
        self._reader = csv.reader(self._text, delimiter=self.delimiter)
        self._rows: Iterator[list[str]] = iter(self._reader)

    @staticmethod
    def _header(names: list[str]) -> list[str]:
        columns: list[str] = []
        for position, raw in enumerate(names, start=1):
            name = raw.strip()
            if _unstorable(name) or any(unicodedata.category(c) == "Cc" for c in name):
                raise Invalid("body.file", f"column {position} of the header is not plain text")
            if not name:
                raise Invalid("body.file", f"column {position} of the header has no name")
            if len(name) > MAX_HEADER_CHARS:
                raise Invalid(
                    "body.file", f"column {position}'s name is over {MAX_HEADER_CHARS} characters"
                )
            known = name.lower()
            columns.append(known if known in _KNOWN else name)
        if len(columns) > MAX_COLUMNS:
            raise Invalid("body.file", f"more than {MAX_COLUMNS} columns")
        duplicates = sorted({c for c in columns if columns.count(c) > 1})
        if duplicates:
            raise Invalid("body.file", f"columns named twice: {', '.join(duplicates)}")
        if "number" not in columns:
            raise Invalid("body.file", "the header row has no 'number' column")
        return columns

    def next_batch(self, size: int) -> _Batch:
        """Up to ``size`` rows read (accepted or refused); ``done`` at the end of the file."""
        batch = _Batch()
        while len(batch.rows) + len(batch.refusals) < size:
            # The header is line 1; the reader counts the lines it read after it.
            line = self._reader.line_num + 2
            try:
                values = next(self._rows)
            except StopIteration:
                batch.done = True
                break
            except csv.Error as err:
                self.rows_read += 1
                batch.refusals.append((line, "row", f"not CSV: {err}", ""))
                continue
            if not values or (len(values) == 1 and not values[0].strip()):
                continue  # a blank line
            self.rows_read += 1
            self._check(line, values, batch)
        return batch

    def _check(self, line: int, values: list[str], batch: _Batch) -> None:
        def refuse(column: str, reason: str, value: str) -> None:
            batch.refusals.append((line, column, reason, shown_value(value)))

        if len(values) > len(self.columns):
            refuse(
                "row",
                f"{len(values)} columns where the header has {len(self.columns)}",
                self.delimiter.join(values),
            )
            return
        record: dict[str, str] = {}
        for column, raw in zip(self.columns, values, strict=False):
            reason = _unstorable(raw)
            if reason:
                refuse(column, reason, raw)
                return
            value = raw.strip()
            limit = MAX_CHARS.get(column, MAX_FIELD_CHARS)
            if len(value) > limit:
                refuse(column, f"longer than {limit} characters", value)
                return
            if value:
                record[column] = value
        raw_number = record.pop("number", "")
        if not raw_number:
            refuse("number", "missing", "")
            return
        try:
            number = parse_contact_number(raw_number, self.default_region)
        except InvalidNumber as err:
            refuse("number", str(err), raw_number)
            return
        if not _E164.match(number.number):
            refuse("number", "not storable in E.164 form", raw_number)
            return
        name = record.pop("name", None)
        if name is not None and any(unicodedata.category(c) == "Cc" for c in name):
            refuse("name", "control characters (newlines included) are not allowed", name)
            return
        consent_text = record.pop("consent_at", None)
        consent_source = record.pop("consent_source", None)
        consent_at = None
        if consent_text is not None:
            try:
                consent_at = _consent_time(consent_text, self.now)
            except ValueError as err:
                refuse("consent_at", str(err), consent_text)
                return
        elif consent_source is not None:
            refuse("consent_source", "a consent source needs its consent_at", consent_source)
            return
        self._seq += 1
        batch.rows.append(
            (
                self._seq,
                line,
                number.number,
                number.region,
                list(number.time_zones),
                name,
                json.dumps(record, ensure_ascii=False),
                consent_at,
                consent_source,
            )
        )

    def close(self) -> None:
        # Detached, not closed: the upload's file is the framework's to close.
        self._text.detach()


def file_size(file: BinaryIO) -> int:
    """The size of an uploaded file (spooled by the framework), read from its start again."""
    size = file.seek(0, io.SEEK_END)
    file.seek(0)
    return size


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The session's asyncpg connection, within its transaction (for COPY)."""
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None  # noqa: S101 - an open connection has its driver connection
    driver: asyncpg.Connection = raw
    return driver


# Merges the staged rows by number (later rows' non-empty values win; custom fields key by key;
# the consent date and its source as a pair), then into the list. xmax = 0 marks a new row.
_MERGE = """
WITH kv AS (
    SELECT DISTINCT ON (s.number, e.key) s.number, e.key, e.value
    FROM {stage} s CROSS JOIN LATERAL jsonb_each(s.fields) e
    ORDER BY s.number, e.key, s.seq DESC
), merged_fields AS (
    SELECT number, jsonb_object_agg(key, value) AS fields FROM kv GROUP BY number
), merged AS (
    SELECT number,
        min(seq) AS first_seq,
        max(region) AS region,
        max(time_zones) AS time_zones,
        (array_agg(name ORDER BY seq DESC) FILTER (WHERE name IS NOT NULL))[1] AS name,
        (array_agg(consent_at ORDER BY seq DESC) FILTER (WHERE consent_at IS NOT NULL))[1]
            AS consent_at,
        (array_agg(consent_source ORDER BY seq DESC) FILTER (WHERE consent_at IS NOT NULL))[1]
            AS consent_source
    FROM {stage} GROUP BY number
), upserted AS (
    INSERT INTO contacts AS c
        (tenant_id, list_id, number, region, time_zones, name, fields, consent_at, consent_source)
    SELECT $1, $2, m.number, m.region, m.time_zones, m.name,
        COALESCE(f.fields, '{{}}'::jsonb), m.consent_at, m.consent_source
    FROM merged m LEFT JOIN merged_fields f USING (number)
    ORDER BY m.first_seq
    ON CONFLICT (list_id, number) DO UPDATE SET
        name = COALESCE(EXCLUDED.name, c.name),
        fields = c.fields || EXCLUDED.fields,
        consent_at = COALESCE(EXCLUDED.consent_at, c.consent_at),
        consent_source = CASE WHEN EXCLUDED.consent_at IS NULL
            THEN c.consent_source ELSE EXCLUDED.consent_source END
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) FROM upserted
"""
_STAGE_COLUMNS = (
    "seq int, line int, number text, region text, time_zones text[], name text, fields jsonb, "
    "consent_at timestamptz, consent_source text"
)


async def import_csv(
    session: AsyncSession,
    scope: Scope,
    contact_list: ContactList,
    filename: str,
    file: BinaryIO,
    *,
    now: datetime | None = None,
) -> ContactImport:
    """Import a CSV file into ``contact_list``: its counts, and a refusal for each bad row."""
    size = await asyncio.to_thread(file_size, file)
    if size > MAX_IMPORT_BYTES:
        raise ImportTooLarge(
            f"the file is {size} bytes; at most {MAX_IMPORT_BYTES} (split it)",
            max_bytes=MAX_IMPORT_BYTES,
        )
    rows = await asyncio.to_thread(
        _CsvRows, file, contact_list.default_region, now or datetime.now(UTC)
    )
    try:
        record = ContactImport(
            tenant_id=scope.tenant_id,
            list_id=contact_list.id,
            filename=shown_value(filename)[:200] or "upload.csv",
        )
        session.add(record)
        await session.flush()
        accepted = await _stage_and_merge(session, scope, contact_list, record, rows)
    finally:
        rows.close()
    record.rows_read = rows.rows_read
    record.rows_refused = rows.rows_read - accepted
    record.rows_merged = accepted - record.rows_added
    await session.flush()
    await audit.record(
        session,
        scope,
        "import",
        "contact_list",
        contact_list.id,
        {
            "import_id": record.id,
            "filename": record.filename,
            "rows_read": record.rows_read,
            "rows_added": record.rows_added,
            "rows_merged": record.rows_merged,
            "rows_refused": record.rows_refused,
        },
    )
    return record


async def _stage_and_merge(
    session: AsyncSession,
    scope: Scope,
    contact_list: ContactList,
    record: ContactImport,
    rows: _CsvRows,
) -> int:
    """COPY the rows into a staging table, merge them into the list: the rows accepted."""
    # COPY through the session's asyncpg connection (its transaction): a million rows in
    # seconds, where ORM inserts or executemany take minutes.
    raw = await driver_connection(session)
    stage = f"contact_import_stage_{record.id}"
    await raw.execute(f"CREATE TEMP TABLE {stage} ({_STAGE_COLUMNS}) ON COMMIT DROP")
    accepted = 0
    while True:
        batch = await asyncio.to_thread(rows.next_batch, BATCH_ROWS)
        if rows.rows_read > MAX_IMPORT_ROWS:
            raise Invalid("body.file", f"more than {MAX_IMPORT_ROWS} rows: split the file")
        if batch.rows:
            await raw.copy_records_to_table(stage, records=batch.rows)
            accepted += len(batch.rows)
        if batch.refusals:
            await raw.copy_records_to_table(
                ImportRefusal.__tablename__,
                records=[(record.id, *refusal) for refusal in batch.refusals],
                columns=["import_id", "line", "field", "reason", "value"],
            )
        if batch.done:
            break
    added = await raw.fetchval(_MERGE.format(stage=stage), scope.tenant_id, contact_list.id)
    record.rows_added = int(added or 0)
    return accepted


async def list_imports(
    session: AsyncSession, scope: Scope, list_id: int, *, after_id: int | None, limit: int
) -> tuple[list[ContactImport], int | None]:
    """A list's imports, oldest first."""
    statement = select(ContactImport).where(
        ContactImport.list_id == list_id, ContactImport.tenant_id == scope.tenant_id
    )
    return await keyset_page(session, statement, ContactImport.id, after_id, limit)


async def get_import(
    session: AsyncSession, scope: Scope, list_id: int, import_id: int
) -> ContactImport:
    """One import of one of the tenant's lists."""
    found = await session.scalar(
        select(ContactImport).where(
            ContactImport.id == import_id,
            ContactImport.list_id == list_id,
            ContactImport.tenant_id == scope.tenant_id,
        )
    )
    if found is None:
        raise NotFound(f"no import {import_id} of list {list_id}")
    return found


async def list_refusals(
    session: AsyncSession,
    scope: Scope,
    list_id: int,
    import_id: int,
    *,
    after_line: int | None,
    limit: int,
) -> tuple[list[ImportRefusal], int | None]:
    """An import's refused rows, by line; the line to continue after, if any."""
    found = await get_import(session, scope, list_id, import_id)
    statement = select(ImportRefusal).where(ImportRefusal.import_id == found.id)
    if after_line is not None:
        statement = statement.where(ImportRefusal.line > after_line)
    refusals = list(
        (await session.scalars(statement.order_by(ImportRefusal.line).limit(limit + 1))).all()
    )
    if len(refusals) > limit:
        refusals = refusals[:limit]
        return refusals, refusals[-1].line
    return refusals, None
