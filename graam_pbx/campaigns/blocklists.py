"""Numbers never to call: the tenant's do-not-call list and the national opposition list.

The opposition list (Bloctel in France) is the answer to the tenant's own check of its files,
dated by that check: only a list checked within the law's period counts (the compliance rules
refuse to call consumers at all when the latest one is older).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import BinaryIO

from sqlalchemy import String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Scope
from graam_pbx.campaigns import imports
from graam_pbx.campaigns.law import law_for_region
from graam_pbx.campaigns.models import DoNotCall, OppositionList, OppositionNumber
from graam_pbx.campaigns.phones import InvalidNumber, parse_contact_number
from graam_pbx.campaigns.schemas.contacts import DoNotCallCreate
from graam_pbx.db import flush_or_conflict, get_in_tenant, keyset_page
from graam_pbx.errors import Invalid
from graam_pbx.tenants.models import Tenant

_UNIQUE_DO_NOT_CALL = "uq_do_not_call_tenant_id_number"
# The national opposition list is French: its national numbers are read as French ones.
OPPOSITION_REGION = "FR"
_BATCH_LINES = 20_000
# The staging table's name is made of an integer id (nothing of the request's).
_STORE_NUMBERS = """
WITH stored AS (
    INSERT INTO opposition_numbers (list_id, number, tenant_id)
    SELECT DISTINCT $1::bigint, number, $2::bigint FROM {stage}
    ON CONFLICT DO NOTHING RETURNING 1
) SELECT count(*) FROM stored
"""


async def _tenant_region(session: AsyncSession, tenant_id: int) -> str:
    country = await session.scalar(select(Tenant.country).where(Tenant.id == tenant_id))
    return country or "FR"


async def add_do_not_call(session: AsyncSession, scope: Scope, data: DoNotCallCreate) -> DoNotCall:
    """Put a number on the tenant's do-not-call list (national numbers in its country)."""
    try:
        parsed = parse_contact_number(data.number, await _tenant_region(session, scope.tenant_id))
    except InvalidNumber as err:
        raise Invalid("body.number", str(err)) from err
    entry = DoNotCall(tenant_id=scope.tenant_id, number=parsed.number, reason=data.reason)
    session.add(entry)
    await flush_or_conflict(session, taken={_UNIQUE_DO_NOT_CALL: ("number", parsed.number)})
    await audit.record(
        session,
        scope,
        "create",
        "do_not_call",
        entry.id,
        {"number": entry.number, "reason": entry.reason},
    )
    return entry


async def list_do_not_call(
    session: AsyncSession, scope: Scope, *, after_id: int | None, limit: int
) -> tuple[list[DoNotCall], int | None]:
    """The tenant's do-not-call list, oldest first."""
    statement = select(DoNotCall).where(DoNotCall.tenant_id == scope.tenant_id)
    return await keyset_page(session, statement, DoNotCall.id, after_id, limit)


async def delete_do_not_call(session: AsyncSession, scope: Scope, entry_id: int) -> None:
    """Take a number off the tenant's do-not-call list."""
    entry = await get_in_tenant(session, DoNotCall, scope.tenant_id, entry_id)
    number = entry.number
    await session.delete(entry)
    await session.flush()
    await audit.record(session, scope, "delete", "do_not_call", entry_id, {"number": number})


@dataclass
class _Lines:
    numbers: list[tuple[str]]
    ignored: int
    done: bool


class _OppositionLines:
    """The numbers of an opposition list's answer, a batch at a time (in a worker thread).

    One number per line, national (0612345678) or E.164; a line with ``;`` keeps its first
    field (the answer's other columns). Lines that are no number (a header) are ignored.
    """

    def __init__(self, file: BinaryIO) -> None:
        self._text = io.TextIOWrapper(file, encoding="utf-8-sig", errors="replace", newline="")
        self.lines = 0

    def next_batch(self, size: int) -> _Lines:
        numbers: list[tuple[str]] = []
        ignored = 0
        for raw in self._text:
            self.lines += 1
            field = raw.split(";", 1)[0].strip().strip('"').strip()
            if field:
                try:
                    numbers.append((parse_contact_number(field, OPPOSITION_REGION).number,))
                except InvalidNumber:
                    ignored += 1
            if len(numbers) + ignored >= size:
                return _Lines(numbers, ignored, done=False)
        return _Lines(numbers, ignored, done=True)

    def close(self) -> None:
        self._text.detach()


async def import_opposition_list(
    session: AsyncSession,
    scope: Scope,
    list_date: date,
    filename: str,
    file: BinaryIO,
    *,
    today: date | None = None,
) -> tuple[OppositionList, int]:
    """Store the opposition list's answer checked on ``list_date``; and the lines ignored."""
    if list_date > (today or datetime.now(UTC).date()):
        raise Invalid("body.list_date", "the list cannot be dated in the future")
    size = await asyncio.to_thread(imports.file_size, file)
    if size > imports.MAX_IMPORT_BYTES:
        raise imports.ImportTooLarge(
            f"the file is {size} bytes; at most {imports.MAX_IMPORT_BYTES}",
            max_bytes=imports.MAX_IMPORT_BYTES,
        )
    record = OppositionList(
        tenant_id=scope.tenant_id,
        list_date=list_date,
        filename=imports.shown_value(filename)[:200] or "opposition.csv",
        numbers=0,
    )
    session.add(record)
    await session.flush()
    raw = await imports.driver_connection(session)
    stage = f"opposition_stage_{record.id}"
    await raw.execute(f"CREATE TEMP TABLE {stage} (number text) ON COMMIT DROP")
    lines = _OppositionLines(file)
    ignored = 0
    try:
        while True:
            batch = await asyncio.to_thread(lines.next_batch, _BATCH_LINES)
            if lines.lines > imports.MAX_IMPORT_ROWS:
                raise Invalid(
                    "body.file", f"more than {imports.MAX_IMPORT_ROWS} lines: split the file"
                )
            ignored += batch.ignored
            if batch.numbers:
                await raw.copy_records_to_table(stage, records=batch.numbers)
            if batch.done:
                break
    finally:
        lines.close()
    stored = await raw.fetchval(
        _STORE_NUMBERS.format(stage=stage),
        record.id,
        scope.tenant_id,
    )
    record.numbers = int(stored or 0)
    await session.flush()
    await audit.record(
        session,
        scope,
        "import",
        "opposition_list",
        record.id,
        {"list_date": list_date, "filename": record.filename, "numbers": record.numbers},
    )
    return record, ignored


async def list_opposition_lists(
    session: AsyncSession, scope: Scope, *, after_id: int | None, limit: int
) -> tuple[list[OppositionList], int | None]:
    """The tenant's opposition list imports, oldest first."""
    statement = select(OppositionList).where(OppositionList.tenant_id == scope.tenant_id)
    return await keyset_page(session, statement, OppositionList.id, after_id, limit)


async def latest_opposition_date(session: AsyncSession, tenant_id: int) -> date | None:
    """The day of the tenant's latest opposition list check, if any."""
    latest: date | None = await session.scalar(
        select(func.max(OppositionList.list_date)).where(OppositionList.tenant_id == tenant_id)
    )
    return latest


async def blocked_numbers(
    session: AsyncSession,
    tenant_id: int,
    numbers: Collection[str],
    *,
    today: date | None = None,
) -> tuple[set[str], set[str]]:
    """Of ``numbers`` (E.164): those on the tenant's do-not-call list, and those on one of its
    opposition lists checked within the law's period."""
    if not numbers:
        return set(), set()
    # One array parameter, not one parameter per number: a batch may hold thousands.
    wanted = bindparam("numbers", list(numbers), type_=ARRAY(String))
    do_not_call = set(
        (
            await session.scalars(
                select(DoNotCall.number).where(
                    DoNotCall.tenant_id == tenant_id, DoNotCall.number == any_(wanted)
                )
            )
        ).all()
    )
    # A list older than the law's period proves nothing either way; the compliance rules
    # refuse consumer calls while no recent one exists.
    oldest = (today or datetime.now(UTC).date()) - law_for_region(
        OPPOSITION_REGION
    ).opposition_max_age
    opposed = set(
        (
            await session.scalars(
                select(OppositionNumber.number)
                .join(OppositionList, OppositionList.id == OppositionNumber.list_id)
                .where(
                    OppositionNumber.tenant_id == tenant_id,
                    OppositionNumber.number == any_(wanted),
                    OppositionList.tenant_id == tenant_id,
                    OppositionList.list_date >= oldest,
                )
                .distinct()
            )
        ).all()
    )
    return do_not_call, opposed
