"""``Cdr`` AMI events for tests: a recorded Asterisk 22 event with the fields a test needs."""

from __future__ import annotations

import asyncio
import csv
import itertools
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg

from graam_pbx.ami.protocol import FrameDecoder, Message
from graam_pbx.db import plain_url

DATA = Path(__file__).parent / "data"
# An answered inbound leg, as Asterisk 22 sent it (tests/data/ami_cdr_events.txt).
TEMPLATE = dict(FrameDecoder().feed((DATA / "ami_cdr_events.txt").read_bytes())[4].fields)
_sequence = itertools.count(1)


def epoch(moment: datetime) -> str:
    """``start,u``-style epoch seconds with microseconds."""
    delta = moment - datetime(1970, 1, 1, tzinfo=moment.tzinfo)
    us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def cdr_event(
    tenant_id: int | None,
    start: datetime,
    *,
    talk: float | None = 10.0,
    ring: float = 2.0,
    direction: str = "inbound",
    src: str = "+33612345678",
    dst: str = "+33123456789",
    did: str | None = "+33123456789",
    queue_id: int | None = None,
    agent_id: int | None = None,
    disposition: str | None = None,
    linkedid: str | None = None,
    uniqueid: str | None = None,
    clid: str | None = None,
) -> Message:
    """One leg: rings ``ring`` seconds, then talks ``talk`` (None: never answered)."""
    answer = None if talk is None else start + timedelta(seconds=ring)
    end = start + timedelta(seconds=ring + (talk or 0))
    unique = uniqueid or f"test-{uuid.uuid4().hex[:12]}.{next(_sequence)}"
    billsec = "0.000000" if answer is None else f"{(end - answer).total_seconds():.6f}"
    fields = {
        **TEMPLATE,
        "AccountCode": f"t{tenant_id}" if tenant_id else "",
        "Source": src,
        "Destination": dst,
        "CallerID": clid if clid is not None else f'"" <{src}>',
        "UniqueID": unique,
        "LinkedID": linkedid or unique,
        "Sequence": str(next(_sequence)),
        "StartEpoch": epoch(start),
        "AnswerEpoch": "0.000000" if answer is None else epoch(answer),
        "EndEpoch": epoch(end),
        "BillableSecondsExact": billsec,
        "Disposition": disposition or ("ANSWERED" if answer else "NO ANSWER"),
        "GraamDirection": direction,
        "GraamDID": did or "",
        "GraamQueue": str(queue_id or ""),
        "GraamAgent": str(agent_id or ""),
    }
    return Message(fields.items())


async def count_rows(database_url: str, where: str = "true", *args: object) -> int:
    connection = await asyncpg.connect(plain_url(database_url))
    try:
        count: int = await connection.fetchval(f"SELECT count(*) FROM cdrs WHERE {where}", *args)  # noqa: S608
    finally:
        await connection.close()
    return count


async def wait_for_rows(
    database_url: str, count: int, where: str = "true", *args: object, timeout: float = 30
) -> None:
    """Wait until ``cdrs`` holds ``count`` rows matching ``where`` (never more: that fails)."""
    found = -1
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    found = await count_rows(database_url, where, *args)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    found = -1  # Postgres restarting
                assert found <= count, f"{found} rows where {count} were expected ({where})"
                if found == count:
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"{found} of {count} rows within {timeout:g} s ({where})") from None


def csv_row(event: Message) -> list[str]:
    """The row Asterisk's cdr_custom writes for the CDR of ``event`` (cdr_custom.conf)."""
    names = (
        *("UniqueID", "Sequence", "LinkedID", "StartEpoch", "AnswerEpoch", "EndEpoch"),
        *("Disposition", "AccountCode", "PeerAccount", "TenantID", "Source", "Destination"),
        *("DestinationContext", "CallerID", "Channel", "DestinationChannel", "LastApplication"),
        *("LastData", "AMAFlags", "UserField", "GraamDirection", "GraamDID", "GraamQueue"),
        "GraamAgent",
    )
    return ["graam-cdr-1", *(event.get(name, "") for name in names)]


def append_rows(log: Path, events: list[Message]) -> None:
    """Append the events' CSV rows to ``log`` as Asterisk does."""
    with log.open("a", newline="") as out:
        csv.writer(out, quoting=csv.QUOTE_ALL).writerows(csv_row(event) for event in events)
