"""Every node's queue_log backfilled from a checkpoint of its own (queue_calls/worker.py).

The writer's writes are kept in memory; the node supervisors are stubs (a queue_log needs no
system name: a caller's uniqueid carries its node's).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami import AmiSupervisor, EventBus
from graam_pbx.cdr.node_logs import LOG_SUBDIR, NodeLogs, checkpoint_dir
from graam_pbx.queue_calls.tracker import QueueCallRow
from graam_pbx.queue_calls.worker import (
    CHECKPOINT_NAME,
    LOG_NAME,
    Checkpoint,
    QueueCallSettings,
    QueueCallWorker,
)

LOCAL = "local"
NODE_B = "nodeb"
MISSING = "missing"


def _call(uniqueid: str, at: int, queue: str = "t7-q3") -> str:
    """A caller who entered ``queue`` and gave up four seconds later."""
    return (
        f"{at}|{uniqueid}|{queue}|NONE|ENTERQUEUE||+33612345678|1\n"
        f"{at + 4}|{uniqueid}|{queue}|NONE|ABANDON|1|1|4\n"
    )


class Recording(QueueCallWorker):
    """The worker with its writes kept in memory (the key's uniqueness is the table's)."""

    def __init__(self, settings: QueueCallSettings, nodes: NodeLogs) -> None:
        sessions = cast("async_sessionmaker[AsyncSession]", None)
        super().__init__(sessions, EventBus(), None, settings, nodes=nodes)
        self.rows: list[tuple[QueueCallRow, str]] = []

    async def _write(self, rows: list[QueueCallRow], source: str) -> None:
        self.rows.extend((row, source) for row in rows)

    async def backfill(self) -> None:
        await self._backfill()


def _worker(tmp_path: Path, local_log: Path | None) -> tuple[Recording, Path]:
    files = tmp_path / "node-files"
    (files / NODE_B / LOG_SUBDIR).mkdir(parents=True)
    names = {LOCAL: None, NODE_B: None, MISSING: None}
    supervisors = cast("Mapping[str, AmiSupervisor]", names)
    settings = QueueCallSettings(queue_log=local_log, state_dir=tmp_path / "state")
    return Recording(settings, NodeLogs(files, LOCAL, lambda: supervisors)), files


async def test_each_nodes_queue_log_is_read_from_its_own_checkpoint(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="graam_pbx.cdr.node_logs")
    local_log = tmp_path / "queue_log"
    local_log.write_text(_call("graam-1796300000.1", 1796300000))
    worker, files = _worker(tmp_path, local_log)
    node_log = files / NODE_B / LOG_SUBDIR / LOG_NAME
    node_log.write_text(_call("nodeb-1796300000.1", 1796300000))

    await worker.backfill()
    assert sorted(row.caller_uniqueid for row, _ in worker.rows) == [
        "graam-1796300000.1",
        "nodeb-1796300000.1",
    ]
    assert {source for _, source in worker.rows} == {"queue_log"}
    own = Checkpoint.load(checkpoint_dir(tmp_path / "state", NODE_B) / CHECKPOINT_NAME)
    assert own.offset == node_log.stat().st_size
    assert Checkpoint.load(worker.checkpoint_path).offset == local_log.stat().st_size

    # The next backfill reads only what each log got since (nothing for the local one).
    with node_log.open("a") as log:
        log.write(_call("nodeb-1796300100.2", 1796300100))
    worker.rows.clear()
    await worker.backfill()
    assert [row.caller_uniqueid for row, _ in worker.rows] == ["nodeb-1796300100.2"]

    warnings = [r for r in caplog.records if "log directory missing" in r.getMessage()]
    assert len(warnings) == 1 and MISSING in warnings[0].getMessage(), warnings


async def test_other_nodes_are_read_without_a_configured_queue_log(tmp_path: Path) -> None:
    worker, files = _worker(tmp_path, None)
    (files / NODE_B / LOG_SUBDIR / LOG_NAME).write_text(_call("nodeb-1796300000.1", 1796300000))
    await worker.backfill()
    assert [row.caller_uniqueid for row, _ in worker.rows] == ["nodeb-1796300000.1"]
    assert worker.rows[0][0].tenant_id == 7
