"""The CDR writer in the running app: the real bus, the real Postgres and the real Asterisk."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from graam_pbx.ami import EventBus
from graam_pbx.ami.protocol import FrameDecoder, Message
from graam_pbx.cdr.journal import Checkpoint
from graam_pbx.cdr.parse import record_from_event
from graam_pbx.cdr.worker import CdrSettings, CdrWorker
from graam_pbx.cdr.writer import CdrTable
from graam_pbx.db import plain_url
from tests.cdr_events import DATA, append_rows, cdr_event, count_rows, wait_for_rows
from tests.conftest import RunningApp

MALFORMED = (DATA / "ami_cdr_malformed.txt").read_bytes()


def worker(running_app: RunningApp) -> CdrWorker:
    assert running_app.runtime.cdr is not None
    return running_app.runtime.cdr


def metric(text: str, name: str, labels: str = "") -> float:
    """One sample of the /metrics text (0 when absent)."""
    pattern = re.escape(name) + (re.escape("{" + labels + "}") if labels else "") + r" (\S+)"
    found = re.search(rf"^{pattern}$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_the_same_cdr_reported_again_is_one_row(
    running_app: RunningApp, database_url: str
) -> None:
    event = cdr_event(None, datetime(2026, 5, 1, 12, tzinfo=UTC))
    cdr = worker(running_app)
    duplicates = cdr.duplicates

    running_app.runtime.bus.publish(event)
    running_app.runtime.bus.publish(event)  # the same batch
    await wait_for_rows(database_url, 1, "uniqueid = $1", event["UniqueID"])
    running_app.runtime.bus.publish(event)  # a later batch
    async with asyncio.timeout(10):
        while cdr.duplicates < duplicates + 2:
            await asyncio.sleep(0.02)

    assert await count_rows(database_url, "uniqueid = $1", event["UniqueID"]) == 1


async def test_malformed_and_partial_events_become_dead_letters_and_the_pipeline_goes_on(
    running_app: RunningApp, database_url: str
) -> None:
    client = running_app.client
    before = (await client.get("/metrics")).text
    cdr = worker(running_app)
    kept = len(cdr.dead_letters.entries())
    malformed = FrameDecoder().feed(MALFORMED)
    valid = cdr_event(None, datetime(2026, 5, 2, 12, tzinfo=UTC))

    for message in [*malformed, valid]:
        running_app.runtime.bus.publish(message)
    await wait_for_rows(database_url, 1, "uniqueid = $1", valid["UniqueID"])

    letters = cdr.dead_letters.entries()[kept:]
    assert [(letter["reason"], letter["source"]) for letter in letters] == [
        ("missing-field", "ami"),  # an Asterisk without our cdr_manager mappings
        ("missing-field", "ami"),  # cut short
        ("bad-number", "ami"),  # Sequence: twelve
        ("bad-time", "ami"),  # StartEpoch in local time
        ("bad-time", "ami"),  # ends before it starts
        ("bad-time", "ami"),  # a clock in 1970
        ("bad-number", "ami"),  # billsec longer than the call
    ]
    assert "cdr_manager.conf" in letters[0]["detail"]
    assert Message([tuple(field) for field in letters[2]["content"]]) == malformed[2]
    after = (await client.get("/metrics")).text
    for reason, count in (("missing-field", 2), ("bad-number", 2), ("bad-time", 3)):
        name, labels = "graam_cdr_dead_letters_total", f'reason="{reason}"'
        assert metric(after, name, labels) - metric(before, name, labels) == count
    ready = (await client.get("/readyz")).json()
    assert ready["checks"]["cdr"]["ok"] is True
    assert ready["checks"]["cdr"]["dead_letters"] >= 7


async def test_a_month_without_a_partition_gets_one(
    running_app: RunningApp, database_url: str
) -> None:
    event = cdr_event(None, datetime(2031, 7, 14, 9, 30, tzinfo=UTC))

    running_app.runtime.bus.publish(event)
    await wait_for_rows(database_url, 1, "uniqueid = $1", event["UniqueID"])

    connection = await asyncpg.connect(plain_url(database_url))
    try:
        partition = await connection.fetchval(
            "SELECT tableoid::regclass::text FROM cdrs WHERE uniqueid = $1", event["UniqueID"]
        )
    finally:
        await connection.close()
    assert partition == "cdrs_2031_07"


async def test_a_real_asterisk_call_is_recorded_with_its_exact_times(
    running_app: RunningApp, database_url: str
) -> None:
    ami = running_app.runtime.ami
    ids = (f"it-{datetime.now(UTC).timestamp():.6f}.1", f"it-{datetime.now(UTC).timestamp():.6f}.2")

    await ami.action(
        "Originate",
        {
            "Channel": "Local/s@graam-refuse/n",  # refused at once: never answered
            "Application": "Wait",
            "Data": "5",
            "Async": "true",
            "Account": "t999",
            "ChannelId": ids[0],
            "OtherChannelId": ids[1],
        },
    )
    await wait_for_rows(database_url, 2, "uniqueid = ANY($1::text[])", list(ids))

    connection = await asyncpg.connect(plain_url(database_url))
    try:
        rows = await connection.fetch(
            "SELECT uniqueid, linkedid, tenant_id, answered_at, billsec, source, system_name "
            "FROM cdrs WHERE uniqueid = ANY($1::text[]) ORDER BY uniqueid",
            list(ids),
        )
    finally:
        await connection.close()
    assert [(r["uniqueid"], r["linkedid"], r["answered_at"], r["source"]) for r in rows] == [
        (ids[0], ids[0], None, "ami"),
        (ids[1], ids[0], None, "ami"),
    ]
    assert {r["system_name"] for r in rows} == {"graam"}
    assert rows[0]["tenant_id"] == 999  # the Originate's account
    assert all(r["billsec"] == 0 for r in rows)


# ---- the CSV log: backfill, checkpoint, dropped events -----------------------------------------


@pytest.fixture
async def lone_worker(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[CdrWorker, EventBus, Path]]:
    """A CDR writer of its own, on a bus of its own, with a tiny bus queue and a fast clock."""
    bus = EventBus()
    log = tmp_path / "graam-cdr.csv"
    cdr = CdrWorker(
        plain_url(database_url),
        bus,
        None,
        CdrSettings(
            state_dir=tmp_path / "cdr",
            csv_log=log,
            checkpoint_interval=0.2,
            subscriber_queue=1,
            system_name="graam",  # as the recorded events say
        ),
    )
    await bus.start()
    await cdr.start()
    try:
        yield cdr, bus, log
    finally:
        await cdr.stop()
        await bus.stop()


async def test_a_resync_backfills_the_csv_log_and_moves_the_checkpoint(
    lone_worker: tuple[CdrWorker, EventBus, Path], database_url: str
) -> None:
    cdr, bus, log = lone_worker
    start = datetime(2026, 6, 1, 9, tzinfo=UTC)
    missed = [cdr_event(None, start + timedelta(seconds=i)) for i in range(5)]
    append_rows(log, missed)

    bus.publish_resync(False)
    await wait_for_rows(database_url, 5, "uniqueid = ANY($1::text[]) AND source = 'csv'",
                        [e["UniqueID"] for e in missed])  # fmt: skip

    checkpoint = Checkpoint.load(cdr.checkpoint_path)
    assert checkpoint is not None and checkpoint.offset == log.stat().st_size
    # Seen live and logged: the checkpoint follows the log once both are known written.
    live = [cdr_event(None, start + timedelta(minutes=1, seconds=i)) for i in range(3)]
    for event in live:
        bus.publish(event)
        append_rows(log, [event])
        await wait_for_rows(database_url, 1, "uniqueid = $1", event["UniqueID"])
    async with asyncio.timeout(20):
        while (Checkpoint.load(cdr.checkpoint_path) or checkpoint).offset < log.stat().st_size:
            await asyncio.sleep(0.05)


async def test_events_the_bus_dropped_come_back_from_the_csv_log(
    lone_worker: tuple[CdrWorker, EventBus, Path], database_url: str
) -> None:
    _, bus, log = lone_worker
    start = datetime(2026, 6, 2, 9, tzinfo=UTC)
    burst = [cdr_event(None, start + timedelta(seconds=i)) for i in range(50)]
    append_rows(log, burst)

    for event in burst:  # faster than the writer takes them: a queue of one drops most
        bus.publish(event)

    await wait_for_rows(
        database_url, 50, "uniqueid = ANY($1::text[])", [e["UniqueID"] for e in burst]
    )
    dropped = bus._subscriptions["cdr"].dropped
    assert dropped > 0
    assert (
        await count_rows(
            database_url,
            "uniqueid = ANY($1::text[]) AND source = 'csv'",
            [e["UniqueID"] for e in burst],
        )
        >= dropped
    )


async def test_stopping_writes_what_is_pending(
    lone_worker: tuple[CdrWorker, EventBus, Path], database_url: str
) -> None:
    cdr, bus, _ = lone_worker
    start = datetime(2026, 6, 3, 9, tzinfo=UTC)
    events = [cdr_event(None, start + timedelta(seconds=i)) for i in range(3)]

    for event in events:
        await asyncio.sleep(0)  # one at a time: the lone worker's bus queue holds one
        bus.publish(event)
    assert cdr.written == 0  # well within the batch delay: nothing written yet
    await cdr.stop()

    ids = [event["UniqueID"] for event in events]
    assert await count_rows(database_url, "uniqueid = ANY($1::text[])", ids) == 3


async def test_a_crash_loses_nothing_the_next_start_backfills_it(
    database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "graam-cdr.csv"
    settings = CdrSettings(
        state_dir=tmp_path / "cdr", csv_log=log, batch_delay=0.2, system_name="graam"
    )
    bus = EventBus()
    await bus.start()
    first = CdrWorker(plain_url(database_url), bus, None, settings)
    await first.start()
    start = datetime(2026, 6, 4, 9, tzinfo=UTC)
    events = [cdr_event(None, start + timedelta(seconds=i)) for i in range(4)]
    append_rows(log, events)  # Asterisk logs them as it sends them
    for event in events:
        bus.publish(event)
    await asyncio.sleep(0)
    # The process dies: its tasks end where they are, nothing pending is flushed.
    tasks = [first._writer_task, first._housekeeping_task]
    for task in tasks:
        assert task is not None
        task.cancel()
    await asyncio.wait(tasks)  # type: ignore[arg-type]
    await bus.unsubscribe(first._subscription)  # type: ignore[arg-type]
    await first._table.close()  # what the kernel does to a dead process's sockets
    ids = [event["UniqueID"] for event in events]
    assert await count_rows(database_url, "uniqueid = ANY($1::text[])", ids) == 0

    second = CdrWorker(plain_url(database_url), bus, None, settings)
    await second.start()
    try:
        await wait_for_rows(database_url, 4, "uniqueid = ANY($1::text[])", ids)
    finally:
        await second.stop()
        await bus.stop()


async def test_a_live_batch_with_rows_already_stored_keeps_only_the_new_ones(
    database_url: str,
) -> None:
    start = datetime(2026, 6, 4, 9, tzinfo=UTC)
    records = [record_from_event(cdr_event(None, start + timedelta(seconds=i))) for i in range(4)]
    table = CdrTable(plain_url(database_url))
    try:
        first = await table.write(records[:2], expect_new=True)  # all new: no ON CONFLICT
        # A live batch meeting a backfilled row: the new ones are kept, the stored one skipped.
        second = await table.write([records[2], records[1], records[3]], expect_new=True)
        again = await table.write(records, expect_new=False)
    finally:
        await table.close()

    assert (first.inserted, first.duplicates) == (2, 0)
    assert (second.inserted, second.duplicates) == (2, 1)
    assert (again.inserted, again.duplicates) == (0, 4)
    ids = [record.uniqueid for record in records]
    assert await count_rows(database_url, "uniqueid = ANY($1::text[])", ids) == 4


async def test_a_row_that_cannot_be_sent_is_rejected_alone_and_the_batch_kept(
    database_url: str,
) -> None:
    start = datetime(2026, 6, 5, 9, tzinfo=UTC)
    records = [record_from_event(cdr_event(None, start + timedelta(seconds=i))) for i in range(5)]
    # A lone surrogate cannot be encoded as UTF-8: the COPY fails in the middle of the batch.
    records[2] = records[2]._replace(clid="\udc80")
    table = CdrTable(plain_url(database_url))
    try:
        result = await table.write(records, expect_new=True)
        after = await table.write(records[:2], expect_new=True)  # the connection still works
    finally:
        await table.close()

    assert (result.inserted, result.duplicates) == (4, 0)
    assert [record for record, _ in result.rejected] == [records[2]]
    assert (after.inserted, after.duplicates) == (0, 2)
    ids = [record.uniqueid for record in records]
    assert await count_rows(database_url, "uniqueid = ANY($1::text[])", ids) == 4
