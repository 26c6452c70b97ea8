"""The CDR writer: every ``Cdr`` event to Postgres in batches, exactly once, nothing lost.

- Events are parsed as they arrive and batched; a batch is written when it is full or when
  its oldest CDR has waited ``batch_delay`` seconds.
- Postgres down: batches go to the local journal (fsync'd) and are replayed in order once
  Postgres answers again; while the journal holds anything, new batches queue behind it.
- AMI away or this process stopped: Asterisk keeps writing its CSV log; after every AMI
  (re)connection (``GraamResync``) and whenever the bus dropped events, what was written
  after the checkpoint is read back and written too. The key makes every repeat harmless.
- Every other node's CSV log too (``NodeLogs``, cdr/node_logs.py): each has a checkpoint of
  its own, and is read from it to its end at this worker's start, at each (re)connection of
  that node's AMI (its resync names it) and whenever the bus dropped events; the checkpoint
  then moves to what was read. (The configured node's checkpoint also moves while AMI stays
  up, through the marks below; another node's moves only at those reads, so a reconnection
  re-reads what was written live since the last one: duplicates, ignored.)
- An event that cannot be a CDR goes to the dead letters with its reason; nothing raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from graam_pbx import metrics
from graam_pbx.ami import AmiError, AmiSupervisor, EventBus, Message, Subscription
from graam_pbx.ami.bus import NODE_HEADER, RESYNC_EVENT
from graam_pbx.cdr import backfill
from graam_pbx.cdr.agent_legs import AGENT_CALLED, AGENT_CONNECT, HOLD_SECONDS, ConnectedAgents
from graam_pbx.cdr.journal import Checkpoint, DeadLetters, Journal, JournalFull
from graam_pbx.cdr.node_logs import NodeLogs, checkpoint_dir
from graam_pbx.cdr.parse import CdrRecord, MalformedCdr, record_from_csv, record_from_event
from graam_pbx.cdr.writer import CdrTable, DatabaseUnavailable

log = logging.getLogger(__name__)

CDR_EVENT = "Cdr"
MARK_EVENT = "GraamCdrMark"  # published by the worker itself (see _advance_checkpoint)
SUBSCRIBER = "cdr"
DRAIN_TIMEOUT = 5.0
SYSTEM_NAME_TIMEOUT = 5.0
PARTITION_CHECK_INTERVAL = 6 * 3600.0
# An AMI event reaches the reader within milliseconds of the CSV row Asterisk writes for the
# same CDR; the marker that vouches for a checkpoint is published this long after it.
CHECKPOINT_MARGIN = 2.0
CHECKPOINT_NAME = "csv-checkpoint.json"  # in the state directory (other nodes': node_logs.py)

CommitHook = Callable[[Sequence[CdrRecord], float], None]
_RECEIVED_LIVE = metrics.CDR_RECEIVED.labels(source="ami")


class PipelineState(StrEnum):
    STOPPED = "stopped"
    WRITING = "writing"  # straight to Postgres
    JOURNALING = "journaling"  # Postgres unavailable: batches go to the journal
    REPLAYING = "replaying"  # Postgres back: the journal is being emptied into it
    BLOCKED = "blocked"  # the journal is full: events wait in memory, then are dropped


@dataclass(frozen=True)
class CdrSettings:
    state_dir: Path  # journal, dead letters, checkpoint
    csv_log: Path | None  # Asterisk's CSV log as this process sees it; None: no backfill
    batch_size: int = 5000
    batch_delay: float = 0.1
    journal_max_bytes: int = 1 << 30
    checkpoint_interval: float = 60.0
    retry_interval: float = 1.0
    db_timeout: float = 10.0
    max_pending: int = 50_000
    subscriber_queue: int = 100_000
    system_name: str | None = None  # Asterisk's, when there is no AMI to ask (tools, tests)


@dataclass
class _NodeBackfill:
    """Whether another node's CSV log is to be read, and not before when."""

    wanted: bool = True
    next_attempt: float = 0.0


@dataclass
class _Mark:
    """Where the CSV log ended at one housekeeping tick, and what must hold to trust it."""

    number: int
    end: Checkpoint
    resyncs: int
    dropped: int
    received: int | None = None  # live CDRs handled before the mark's marker event


class CdrWorker:
    """Owns the ``cdr`` bus subscription, the writer task and the housekeeping task."""

    def __init__(
        self,
        database_url: str,
        bus: EventBus,
        ami: AmiSupervisor | None,
        settings: CdrSettings,
        *,
        on_committed: CommitHook | None = None,
        nodes: NodeLogs | None = None,
    ) -> None:
        self._bus = bus
        self._ami = ami
        self._settings = settings
        # The other nodes' CSV logs (None: the configured Asterisk's only).
        self._nodes = nodes
        self._node_backfills: dict[str, _NodeBackfill] = {}
        self._table = CdrTable(database_url, timeout=settings.db_timeout)
        self._journal = Journal(
            settings.state_dir / "journal", max_bytes=settings.journal_max_bytes
        )
        self.dead_letters = DeadLetters(settings.state_dir / "dead-letter.jsonl")
        self.checkpoint_path = settings.state_dir / CHECKPOINT_NAME
        self._on_committed = on_committed
        self._pending: list[CdrRecord] = []
        # Agents' channels answered in queues: a leg's CDR the dialplan could not attribute
        # under load gets its agent from them (cdr/agent_legs.py).
        self._connected_agents = ConnectedAgents()
        self._oldest_at = 0.0  # monotonic arrival of the oldest pending record
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._backfill_wanted = False
        self._next_backfill_attempt = 0.0
        self._backfill_postponed = False
        self._stopping = False
        self._subscription: Subscription | None = None
        self._writer_task: asyncio.Task[None] | None = None
        self._housekeeping_task: asyncio.Task[None] | None = None
        self.state = PipelineState.STOPPED
        self.last_error: str | None = None
        self._next_db_attempt = 0.0
        # Live CDRs handled, and how many of the first of them are durable (FIFO).
        self._received = 0
        self._counted = 0  # of _received, reported to the metric
        self._durable = 0
        self._resyncs = 0
        self._dropped_seen = 0
        self._marks = 0
        self._mark: _Mark | None = None
        # Since this worker was made: rows inserted, rows already there, records journaled.
        self.written = 0
        self.duplicates = 0
        self.journaled = 0

    # ---- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        # Subscribe before anything awaits: AMI's first resync must find us listening.
        self._subscription = self._bus.subscribe(
            SUBSCRIBER,
            [CDR_EVENT, AGENT_CONNECT, AGENT_CALLED, RESYNC_EVENT, MARK_EVENT],
            self._on_event,
            maxsize=self._settings.subscriber_queue,
        )
        self._dropped_seen = 0
        # What Asterisk logged while this process was not running: read it whatever AMI does
        # (its first resync may come before this subscription, or not at all).
        self._request_backfill()
        self._request_node_backfills()
        await asyncio.to_thread(self._journal.open)
        self._update_journal_metrics()
        self._stopping = False
        self._set_state(PipelineState.WRITING if self._journal.empty else PipelineState.REPLAYING)
        self._writer_task = asyncio.create_task(self._write_loop(), name="cdr-writer")
        self._housekeeping_task = asyncio.create_task(self._housekeeping(), name="cdr-housekeeping")

    async def stop(self) -> None:
        """Take what the bus still holds, write or journal every pending CDR, then stop."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_TIMEOUT):
                    # The bus offers no drain of one subscription: poll its backlog.
                    while subscription.backlog:  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
            await self._bus.unsubscribe(subscription)
        for held in self._connected_agents.release_all():
            self._add(held)
        if self._housekeeping_task is not None:
            self._housekeeping_task.cancel()
            await asyncio.wait([self._housekeeping_task])
            self._housekeeping_task = None
        task, self._writer_task = self._writer_task, None
        if task is not None:
            self._stopping = True
            self._wake.set()
            self._room.set()
            try:
                await task
            except Exception:
                log.exception("cdr writer failed while stopping")
        await self._table.close()
        self.state = PipelineState.STOPPED
        metrics.CDR_PIPELINE_DEGRADED.set(0)

    # ---- what /readyz and tests read -------------------------------------------------------

    def check(self) -> dict[str, Any]:
        """The pipeline's health for /readyz: ok only while writing straight to Postgres."""
        journal = self._journal
        check: dict[str, Any] = {
            "ok": self.state is PipelineState.WRITING,
            "state": self.state.value,
            "pending": len(self._pending),
            "journal_bytes": journal.bytes,
            "journal_fill": round(journal.fill, 4),
            "dead_letters": self.dead_letters.count,
        }
        if self.state is not PipelineState.WRITING and self.last_error:
            check["error"] = self.last_error
        return check

    @property
    def journal(self) -> Journal:
        return self._journal

    # ---- events in --------------------------------------------------------------------------

    def _on_event(self, message: Message) -> Awaitable[None] | None:
        """Take one bus event; an awaitable only when it has to wait (see EventHandler)."""
        name = message.event
        if name == RESYNC_EVENT:
            node = message.get(NODE_HEADER)
            if self._nodes is not None and node is not None and not self._nodes.is_local(message):
                self._request_node_backfill(node)  # another node's AMI (re)connected
                return None
            self._resyncs += 1
            self._mark = None
            self._request_backfill()
            return None
        if name == MARK_EVENT:
            # Held CDRs came before the marker: handled before it, so the mark waits for them.
            for held in self._connected_agents.release_all():
                self._add(held)
            mark = self._mark
            if mark is not None and message.get("Mark") == str(mark.number):
                mark.received = self._received
            return None
        if name in (AGENT_CONNECT, AGENT_CALLED):
            released = self._connected_agents.note(message)
            if released is not None:
                self._add(released)
            return None
        try:
            parsed = record_from_event(message)
        except MalformedCdr as err:
            return self._dead_letter(err, "ami", [list(field) for field in message.fields])
        record = self._connected_agents.attribute(parsed)
        if record is None:  # held for its agent's AgentConnect
            asyncio.get_running_loop().call_later(
                HOLD_SECONDS, self._release_held, parsed.dstchannel
            )
            return None
        if len(self._pending) >= self._settings.max_pending and not self._stopping:
            return self._add_when_room(record)
        self._add(record)
        return None

    def _release_held(self, channel: str) -> None:
        record = self._connected_agents.release(channel)
        if record is not None:
            self._add(record)

    async def _add_when_room(self, record: CdrRecord) -> None:
        while len(self._pending) >= self._settings.max_pending and not self._stopping:
            # The writer is behind (the journal is full): the bus queue absorbs what comes,
            # then drops it; dropped events are backfilled from the CSV log.
            self._room.clear()
            await self._room.wait()
        self._add(record)

    def _add(self, record: CdrRecord) -> None:
        if not self._pending:
            self._oldest_at = time.monotonic()
            self._wake.set()
        self._pending.append(record)
        self._received += 1
        if len(self._pending) >= self._settings.batch_size:
            self._wake.set()

    async def _dead_letter(self, err: MalformedCdr, source: str, content: Any) -> None:
        metrics.CDR_DEAD_LETTERS.labels(reason=err.reason).inc()
        kept = await asyncio.to_thread(
            self.dead_letters.add, err.reason, err.detail, source, content
        )
        log.warning(
            "cdr refused, kept as a dead letter" if kept else "cdr refused, dead letters full",
            extra={"reason": err.reason, "detail": err.detail, "source": source},
        )

    def _request_backfill(self) -> None:
        if self._settings.csv_log is not None:
            self._backfill_wanted = True
            self._next_backfill_attempt = 0.0
            self._wake.set()

    def _request_node_backfills(self) -> None:
        if self._nodes is not None:
            for node in self._nodes.others():
                self._request_node_backfill(node)

    def _request_node_backfill(self, node: str) -> None:
        state = self._node_backfills.setdefault(node, _NodeBackfill())
        state.wanted = True
        state.next_attempt = 0.0
        self._wake.set()

    def _backfill_due(self) -> bool:
        return (
            self._backfill_wanted
            and self._journal.empty
            and time.monotonic() >= self._next_backfill_attempt
        )

    def _nodes_due(self) -> list[str]:
        """The other nodes whose CSV log is to be read now."""
        if not self._journal.empty:
            return []
        now = time.monotonic()
        return [
            node
            for node, state in self._node_backfills.items()
            if state.wanted and now >= state.next_attempt
        ]

    # ---- the writer task --------------------------------------------------------------------

    async def _write_loop(self) -> None:
        failing = False
        while True:
            try:
                done = await self._write_step()
            except Exception:
                # A bug or a broken disk must not stop the writer: CDRs keep arriving.
                if not failing:
                    log.exception("cdr writer failed; retrying every second")
                failing = True
                await self._pause()
                continue
            if failing:
                log.info("cdr writer recovered")
                failing = False
            if done:
                return

    async def _write_step(self) -> bool:
        """One turn of the writer; True once it has stopped."""
        await self._wait_for_work()
        if self._pending and not await self._flush_one():
            if self._stopping:
                log.error(
                    "cdr writer stopped with CDRs neither in Postgres nor in the journal "
                    "(journal full); Asterisk's CSV log has them: backfilled at next start",
                    extra={"records": len(self._pending)},
                )
                return True
            await self._pause()
        if self._stopping:
            return not self._pending
        if self._backfill_due():
            self._backfill_wanted = False
            await self._backfill()
        for node in self._nodes_due():
            if self._stopping:
                break
            self._node_backfills[node].wanted = False
            await self._backfill_node(node)
        if not self._journal.empty and time.monotonic() >= self._next_db_attempt:
            await self._replay()
        return False

    async def _wait_for_work(self) -> None:
        settings = self._settings
        while not self._stopping:
            now = time.monotonic()
            if self._pending and (
                len(self._pending) >= settings.batch_size
                or now - self._oldest_at >= settings.batch_delay
            ):
                return
            if self._backfill_due() or self._nodes_due():
                return
            if not self._journal.empty and now >= self._next_db_attempt:
                return
            deadlines = [self._oldest_at + settings.batch_delay] if self._pending else []
            if not self._journal.empty:
                deadlines.append(self._next_db_attempt)
            if self._backfill_wanted and self._journal.empty:
                deadlines.append(self._next_backfill_attempt)
            if self._journal.empty:
                deadlines.extend(
                    state.next_attempt for state in self._node_backfills.values() if state.wanted
                )
            timeout = min(deadlines) - now if deadlines else None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _pause(self) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._settings.retry_interval):
                await self._wake.wait()

    async def _flush_one(self) -> bool:
        """Make the oldest pending batch durable; False when neither Postgres nor the journal
        could take it (it stays pending)."""
        batch = self._pending[: self._settings.batch_size]
        del self._pending[: len(batch)]
        # Counted per batch rather than per event: a labelled counter costs more than a parse.
        _RECEIVED_LIVE.inc(self._received - self._counted)
        self._counted = self._received
        if self._pending:
            # What is left arrived before now: it is due at once, not after another delay.
            self._oldest_at = time.monotonic() - self._settings.batch_delay
        try:
            kept = await self._persist(batch, live=True)
        except BaseException:
            self._pending[:0] = batch  # never dropped from memory before it is kept elsewhere
            raise
        if not kept:
            self._pending[:0] = batch
            self._oldest_at = time.monotonic()
            return False
        self._durable += len(batch)
        if len(self._pending) < self._settings.max_pending:
            self._room.set()
        return True

    async def _persist(self, batch: list[CdrRecord], *, live: bool) -> bool:
        """Make a batch durable: Postgres when it can, else the journal; False if neither."""
        if self._journal.empty and time.monotonic() >= self._next_db_attempt:
            try:
                await self._write(batch, live=live)
            except DatabaseUnavailable as err:
                self._database_failed(err)
            else:
                return True
        return await self._journal_append(batch)

    async def _write(self, batch: Sequence[CdrRecord], *, live: bool) -> None:
        started = time.monotonic()
        result = await self._table.write(batch, expect_new=live)
        committed = time.time()
        metrics.CDR_BATCH_SECONDS.observe(time.monotonic() - started)
        metrics.CDR_WRITTEN.inc(result.inserted)
        metrics.CDR_DUPLICATES.inc(result.duplicates)
        self.written += result.inserted
        self.duplicates += result.duplicates
        for record, reason in result.rejected:
            await self._dead_letter(
                MalformedCdr("rejected-by-database", reason), record.source, _json_safe(record)
            )
        if live and batch:
            metrics.CDR_LAG_SECONDS.observe(max(0.0, committed - batch[0].ended_us / 1e6))
        if self._on_committed is not None:
            self._on_committed(batch, committed)
        if self.state is not PipelineState.WRITING and self._journal.empty:
            log.info("cdr pipeline recovered: writing to Postgres again")
            self._set_state(PipelineState.WRITING)
            self.last_error = None

    def _database_failed(self, err: DatabaseUnavailable) -> None:
        self.last_error = str(err)
        self._next_db_attempt = time.monotonic() + self._settings.retry_interval
        if self.state is PipelineState.WRITING:
            log.warning(
                "cdr pipeline degraded: Postgres unavailable, journaling batches",
                extra={"error": self.last_error},
            )
        if self.state in (PipelineState.WRITING, PipelineState.REPLAYING):
            self._set_state(PipelineState.JOURNALING)

    async def _journal_append(self, batch: list[CdrRecord]) -> bool:
        try:
            await asyncio.to_thread(self._journal.append, batch)
        except (JournalFull, OSError) as err:  # full: its bound, or the disk's
            if self.state is not PipelineState.BLOCKED:
                log.error(
                    "cdr journal full: CDRs wait in memory, then are dropped and backfilled "
                    "from Asterisk's CSV log once Postgres is back",
                    extra={"journal_bytes": self._journal.bytes},
                )
                self._set_state(PipelineState.BLOCKED)
            self.last_error = str(err)
            return False
        metrics.CDR_JOURNALED.inc(len(batch))
        self.journaled += len(batch)
        self._update_journal_metrics()
        if self.state is PipelineState.WRITING:
            self._set_state(PipelineState.JOURNALING)
        return True

    async def _replay(self) -> None:
        """Empty the journal into Postgres, oldest batch first; stop at the first failure."""
        self._journal.seal()
        for number in self._journal.segments():
            if self._stopping:
                return
            records = await asyncio.to_thread(self._journal.read, number)
            size = self._settings.batch_size
            try:
                for start in range(0, len(records), size):
                    await self._write(records[start : start + size], live=False)
                    metrics.CDR_REPLAYED.inc(len(records[start : start + size]))
                    if self.state is not PipelineState.REPLAYING:  # Postgres answers again
                        log.info("cdr journal replaying", extra={"bytes": self._journal.bytes})
                        self._set_state(PipelineState.REPLAYING)
            except DatabaseUnavailable as err:
                self._database_failed(err)
                return
            await asyncio.to_thread(self._journal.remove, number)
            self._update_journal_metrics()
            if len(self._pending) >= self._settings.batch_size:
                # Live CDRs queue behind the journal, in order, while it is replayed.
                await self._flush_one()
                self._journal.seal()
        if self._journal.empty:
            log.info("cdr journal replayed into Postgres")
            self._set_state(PipelineState.WRITING)
            self.last_error = None

    def _set_state(self, state: PipelineState) -> None:
        self.state = state
        metrics.CDR_PIPELINE_DEGRADED.set(0 if state is PipelineState.WRITING else 1)

    def _update_journal_metrics(self) -> None:
        metrics.CDR_JOURNAL_BYTES.set(self._journal.bytes)
        metrics.CDR_JOURNAL_FILL.set(self._journal.fill)

    # ---- backfill from Asterisk's CSV log ---------------------------------------------------

    async def _backfill(self) -> None:
        """Write every CDR of the CSV log after the checkpoint, moving it chunk by chunk."""
        csv_log = self._settings.csv_log
        if csv_log is None:
            return
        system_name = await self._asterisk_system_name()
        if system_name is None:
            if not self._backfill_postponed:
                # AMI is not up yet (or down, which its supervisor logs): retried every second.
                log.debug("cdr backfill postponed until AMI answers")
            self._backfill_postponed = True
            self._backfill_wanted = True
            self._next_backfill_attempt = time.monotonic() + self._settings.retry_interval
            return
        self._backfill_postponed = False
        read = await self._read_log(csv_log, self.checkpoint_path, system_name)
        if read:
            log.info("cdr backfill from Asterisk's CSV log", extra={"records": read})

    async def _backfill_node(self, node: str) -> None:
        """Write every CDR of another node's CSV log after its checkpoint (the same reading as
        the configured node's): skipped while its log directory is missing or this process
        is not connected to it (its resync asks again), retried while it does not answer."""
        nodes = self._nodes
        assert nodes is not None  # noqa: S101 - a node backfill is asked for only with nodes
        if not await asyncio.to_thread(nodes.present, node):
            return
        try:
            system_name = await nodes.system_name(node)
        except AmiError as err:
            log.debug("cdr: CoreSettings failed", extra={"node": node, "error": str(err)})
            state = self._node_backfills[node]
            state.wanted = True
            state.next_attempt = time.monotonic() + self._settings.retry_interval
            return
        if system_name is None:
            return
        read = await self._read_log(
            nodes.log_dir(node) / backfill.LOG_NAME,
            checkpoint_dir(self._settings.state_dir, node) / CHECKPOINT_NAME,
            system_name,
        )
        if read:
            log.info("cdr backfill from a node's CSV log", extra={"node": node, "records": read})

    async def _read_log(self, csv_log: Path, checkpoint_path: Path, system_name: str) -> int:
        """Write every CDR of ``csv_log`` after its checkpoint, moving it chunk by chunk; the
        number of records read."""
        checkpoint = await asyncio.to_thread(Checkpoint.load, checkpoint_path)
        parts = await asyncio.to_thread(backfill.plan, csv_log, checkpoint)
        read = 0
        for part in parts:
            offset = part.offset
            while not self._stopping:
                position = dataclasses.replace(part, offset=offset)
                chunk = await asyncio.to_thread(backfill.read_chunk, position)
                if chunk is None:
                    break
                records = await self._records_from_rows(chunk.rows, system_name)
                read += len(records)
                for start in range(0, len(records), self._settings.batch_size):
                    batch = records[start : start + self._settings.batch_size]
                    while not await self._persist(batch, live=False):
                        if self._stopping:
                            return read  # the checkpoint stays before this chunk
                        await self._pause()
                    if self._pending:
                        await self._flush_one()  # live CDRs keep flowing meanwhile
                await asyncio.to_thread(chunk.checkpoint.save, checkpoint_path)
                offset = chunk.checkpoint.offset
        return read

    async def _records_from_rows(self, rows: list[list[str]], system_name: str) -> list[CdrRecord]:
        records: list[CdrRecord] = []
        for row in rows:
            try:
                records.append(record_from_csv(row, system_name))
            except MalformedCdr as err:
                await self._dead_letter(err, "csv", row)
        metrics.CDR_RECEIVED.labels(source="csv").inc(len(records))
        return records

    async def _asterisk_system_name(self) -> str | None:
        """Asterisk's ``systemname``: every AMI event carries it, the CSV rows do not."""
        if self._ami is None:
            return self._settings.system_name
        try:
            answer = await self._ami.action("CoreSettings", timeout=SYSTEM_NAME_TIMEOUT)
        except AmiError as err:
            log.debug("cdr: CoreSettings failed", extra={"error": str(err)})
            return None
        return answer.get("SystemName", "")

    # ---- housekeeping: checkpoints, dropped events, partitions ahead ------------------------

    async def _housekeeping(self) -> None:
        next_partition_check = 0.0
        while True:
            await asyncio.sleep(self._settings.checkpoint_interval)
            try:
                next_partition_check = await self._housekeeping_step(next_partition_check)
            except Exception:
                log.exception("cdr housekeeping failed")

    async def _housekeeping_step(self, next_partition_check: float) -> float:
        self._watch_drops()
        if self._settings.csv_log is not None:
            await self._advance_checkpoint()
            await asyncio.sleep(CHECKPOINT_MARGIN)
            if self._mark is not None:
                self._bus.publish(
                    Message([("Event", MARK_EVENT), ("Mark", str(self._mark.number))])
                )
        now = time.monotonic()
        if now >= next_partition_check and self.state is PipelineState.WRITING:
            try:
                await self._table.ensure_partition(_next_month())
            except DatabaseUnavailable as err:
                log.debug("cdr: next month's partition not made", extra={"error": str(err)})
            else:
                next_partition_check = now + PARTITION_CHECK_INTERVAL
        return next_partition_check

    def _watch_drops(self) -> None:
        subscription = self._subscription
        if subscription is None or subscription.dropped == self._dropped_seen:
            return
        log.warning(
            "cdr events dropped by the bus: backfilling from Asterisk's CSV log",
            extra={"dropped": subscription.dropped - self._dropped_seen},
        )
        self._dropped_seen = subscription.dropped
        self._mark = None
        self._request_backfill()
        self._request_node_backfills()

    async def _advance_checkpoint(self) -> None:
        """Move the checkpoint to where the log ended at the previous tick, when that is safe,
        then mark where it ends now.

        A CDR in the log at the mark reached the AMI reader within milliseconds of being
        written; the marker event, published on the bus a margin later, is handled after it.
        So the mark is safe once every live CDR handled before the marker is durable, and AMI
        stayed connected (no resync) and the bus dropped nothing since.
        """
        csv_log = self._settings.csv_log
        assert csv_log is not None  # noqa: S101 - checked by the caller
        mark = self._mark
        if (
            mark is not None
            and mark.received is not None
            and mark.resyncs == self._resyncs
            and mark.dropped == self._dropped_seen
            and not self._backfill_wanted
            and self._durable >= mark.received
        ):
            await asyncio.to_thread(mark.end.save, self.checkpoint_path)
        connected = self._ami is None or self._ami.state.connected
        end = await asyncio.to_thread(backfill.end_of, csv_log)
        self._marks += 1
        self._mark = (
            _Mark(self._marks, end, self._resyncs, self._dropped_seen)
            if end is not None and connected
            else None
        )


def _next_month() -> datetime:
    first = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first + timedelta(days=32)).replace(day=1)


def _json_safe(record: CdrRecord) -> dict[str, Any]:
    return {name: str(value) for name, value in record._asdict().items()}
