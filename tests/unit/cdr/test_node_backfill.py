"""Every node's CSV log backfilled from a checkpoint of its own (cdr/node_logs.py, worker.py).

The writer runs on a real bus with the table replaced by one in memory (keyed as ``cdrs`` is:
a repeat is a duplicate) and the node supervisors by stubs answering ``CoreSettings``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

from graam_pbx.ami import AmiSupervisor, EventBus, Message
from graam_pbx.ami.bus import NODE_HEADER, RESYNC_EVENT
from graam_pbx.ami.errors import AmiTimeout
from graam_pbx.cdr.backfill import LOG_NAME
from graam_pbx.cdr.journal import Checkpoint
from graam_pbx.cdr.node_logs import LOG_SUBDIR, NodeLogs, checkpoint_dir
from graam_pbx.cdr.parse import CdrRecord
from graam_pbx.cdr.worker import CHECKPOINT_NAME, CdrSettings, CdrWorker
from graam_pbx.cdr.writer import WriteResult
from tests.cdr_events import append_rows, cdr_event

LOCAL = "local"
NODE_B = "nodeb"
MISSING = "missing"  # sorts before nodeb: its turn comes first in every pass
NODE_B_SYSTEM = "nodebsys"
TIMEOUT = 10.0


class MemoryTable:
    """``CdrTable`` in memory: one row per (system name, uniqueid, sequence, start)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, int, int], CdrRecord] = {}
        self.changed = asyncio.Event()

    async def write(self, records: Sequence[CdrRecord], *, expect_new: bool = False) -> WriteResult:
        result = WriteResult()
        for record in records:
            key = (record.system_name, record.uniqueid, record.sequence, record.started_us)
            if key in self.rows:
                result.duplicates += 1
            else:
                self.rows[key] = record
                result.inserted += 1
        self.changed.set()
        return result

    async def ensure_partition(self, moment: datetime) -> None:
        """Nothing: no partitions in memory."""

    async def close(self) -> None:
        """Nothing to close."""

    async def until_rows(self, uniqueids: set[str]) -> None:
        async with asyncio.timeout(TIMEOUT):
            while not uniqueids <= {key[1] for key in self.rows}:
                self.changed.clear()
                await self.changed.wait()


@dataclass
class _State:
    connected: bool = True


@dataclass
class StubSupervisor:
    """What ``NodeLogs`` asks a node's supervisor: connected, and its ``CoreSettings``."""

    system_name: str
    failures: int = 0  # CoreSettings calls that time out first
    asked: int = 0
    looked: int = 0  # reads of its state
    _state: _State = field(default_factory=_State)

    @property
    def state(self) -> _State:
        self.looked += 1
        return self._state

    async def action(self, name: str, timeout: float | None = None) -> Message:
        assert name == "CoreSettings"
        self.asked += 1
        if self.failures:
            self.failures -= 1
            raise AmiTimeout("no answer")
        return Message([("Response", "Success"), ("SystemName", self.system_name)])


@dataclass
class Cluster:
    worker: CdrWorker
    table: MemoryTable
    bus: EventBus
    files: Path
    state: Path
    stubs: dict[str, StubSupervisor]

    def log_of(self, node: str) -> Path:
        return self.files / node / LOG_SUBDIR / LOG_NAME

    def resync(self, node: str) -> None:
        self.bus.publish(
            Message([("Event", RESYNC_EVENT), ("Restarted", "no"), (NODE_HEADER, node)])
        )


def _events(first: datetime, count: int) -> list[Message]:
    return [cdr_event(None, first + timedelta(seconds=i)) for i in range(count)]


def _ids(events: list[Message]) -> set[str]:
    return {event["UniqueID"] for event in events}


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    files = tmp_path / "node-files"
    (files / NODE_B / LOG_SUBDIR).mkdir(parents=True)
    stubs = {
        LOCAL: StubSupervisor("graam"),
        NODE_B: StubSupervisor(NODE_B_SYSTEM),
        MISSING: StubSupervisor("missingsys"),
    }
    supervisors = cast("Mapping[str, AmiSupervisor]", stubs)
    bus = EventBus()
    state = tmp_path / "cdr"
    worker = CdrWorker(
        "postgresql://unused/unused",
        bus,
        None,
        CdrSettings(state_dir=state, csv_log=None, checkpoint_interval=3600, retry_interval=0.05),
        nodes=NodeLogs(files, LOCAL, lambda: supervisors),
    )
    table = MemoryTable()
    worker._table = table  # type: ignore[assignment]
    yield Cluster(worker, table, bus, files, state, stubs)
    await worker.stop()
    await bus.stop()


async def _start(cluster: Cluster) -> None:
    await cluster.bus.start()
    await cluster.worker.start()


async def test_another_nodes_log_is_read_at_start_with_that_nodes_system_name(
    cluster: Cluster,
) -> None:
    missed = _events(datetime(2026, 7, 1, 9, tzinfo=UTC), 3)
    append_rows(cluster.log_of(NODE_B), missed)

    await _start(cluster)

    await cluster.table.until_rows(_ids(missed))
    assert {record.system_name for record in cluster.table.rows.values()} == {NODE_B_SYSTEM}
    assert {record.source for record in cluster.table.rows.values()} == {"csv"}
    own = checkpoint_dir(cluster.state, NODE_B) / CHECKPOINT_NAME
    end = cluster.log_of(NODE_B).stat().st_size
    async with asyncio.timeout(TIMEOUT):  # saved once the rows read are durable
        while (Checkpoint.load(own) or Checkpoint(0, 0, 0)).offset != end:
            await asyncio.sleep(0.01)
    # The configured node's checkpoint is its own business: untouched.
    assert not (cluster.state / CHECKPOINT_NAME).exists()


async def test_a_nodes_reconnection_reads_its_log_from_its_checkpoint(cluster: Cluster) -> None:
    first = _events(datetime(2026, 7, 2, 9, tzinfo=UTC), 2)
    append_rows(cluster.log_of(NODE_B), first)
    await _start(cluster)
    await cluster.table.until_rows(_ids(first))

    later = _events(datetime(2026, 7, 2, 10, tzinfo=UTC), 2)
    append_rows(cluster.log_of(NODE_B), later)
    cluster.resync(NODE_B)

    await cluster.table.until_rows(_ids(later))
    assert cluster.worker.duplicates == 0  # the first rows were not read again
    assert len(cluster.table.rows) == 4


async def test_a_node_not_connected_is_read_at_its_resync(cluster: Cluster) -> None:
    stub = cluster.stubs[NODE_B]
    stub.state.connected = False
    stub.looked = 0
    missed = _events(datetime(2026, 7, 3, 9, tzinfo=UTC), 2)
    append_rows(cluster.log_of(NODE_B), missed)
    await _start(cluster)
    async with asyncio.timeout(TIMEOUT):
        while not stub.looked:  # the start's attempt: not connected, nothing read
            await asyncio.sleep(0.01)
    assert not cluster.table.rows
    assert stub.asked == 0

    stub.state.connected = True
    cluster.resync(NODE_B)  # what its supervisor publishes once logged in

    await cluster.table.until_rows(_ids(missed))
    assert {record.system_name for record in cluster.table.rows.values()} == {NODE_B_SYSTEM}


async def test_a_node_that_does_not_answer_is_asked_again(cluster: Cluster) -> None:
    cluster.stubs[NODE_B].failures = 2
    missed = _events(datetime(2026, 7, 4, 9, tzinfo=UTC), 2)
    append_rows(cluster.log_of(NODE_B), missed)

    await _start(cluster)

    await cluster.table.until_rows(_ids(missed))
    assert cluster.stubs[NODE_B].asked == 3


async def test_a_node_without_a_log_directory_is_skipped_with_one_warning(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="graam_pbx.cdr.node_logs")
    first = _events(datetime(2026, 7, 5, 9, tzinfo=UTC), 1)
    append_rows(cluster.log_of(NODE_B), first)
    await _start(cluster)
    await cluster.table.until_rows(_ids(first))

    for round_ in range(3):
        later = _events(datetime(2026, 7, 5, 10 + round_, tzinfo=UTC), 1)
        append_rows(cluster.log_of(NODE_B), later)
        cluster.resync(MISSING)  # handled before nodeb's: it sorts first
        cluster.resync(NODE_B)
        await cluster.table.until_rows(_ids(later))

    warnings = [r for r in caplog.records if "log directory missing" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert MISSING in warnings[0].getMessage()
    assert cluster.stubs[MISSING].asked == 0  # never asked: nothing to read
    assert not checkpoint_dir(cluster.state, MISSING).exists()


def test_node_logs_name_the_other_nodes_their_directories_and_who_sent_an_event(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stubs = {name: StubSupervisor(name) for name in ("zeta", LOCAL, NODE_B)}
    supervisors = cast("Mapping[str, AmiSupervisor]", stubs)
    logs = NodeLogs(tmp_path, LOCAL, lambda: supervisors)
    assert logs.others() == [NODE_B, "zeta"]
    assert logs.log_dir(NODE_B) == tmp_path / NODE_B / LOG_SUBDIR
    resync = [("Event", RESYNC_EVENT)]
    assert logs.is_local(Message([*resync, (NODE_HEADER, LOCAL)]))
    assert logs.is_local(Message(resync))  # untagged: the configured connection's
    assert not logs.is_local(Message([*resync, (NODE_HEADER, NODE_B)]))
    assert checkpoint_dir(tmp_path, NODE_B) != checkpoint_dir(tmp_path, "zeta")

    caplog.set_level(logging.INFO, logger="graam_pbx.cdr.node_logs")
    assert not logs.present(NODE_B)
    assert not logs.present(NODE_B)
    logs.log_dir(NODE_B).mkdir(parents=True)
    assert logs.present(NODE_B)
    said = [(r.levelno, r.getMessage().split(" node=")[0]) for r in caplog.records]
    assert said == [
        (logging.WARNING, said[0][1]),
        (logging.INFO, "node log directory found"),
    ], said


async def test_node_logs_ask_a_connected_node_its_system_name(tmp_path: Path) -> None:
    stubs = {NODE_B: StubSupervisor(NODE_B_SYSTEM)}
    supervisors = cast("Mapping[str, AmiSupervisor]", stubs)
    logs = NodeLogs(tmp_path, LOCAL, lambda: supervisors)
    assert await logs.system_name(NODE_B) == NODE_B_SYSTEM
    assert await logs.system_name("gone") is None
    stubs[NODE_B].state.connected = False
    assert await logs.system_name(NODE_B) is None
