"""The queue-call writer: AMI queue events to rows in Postgres, queue_log as the backfill.

- Live: queue events from the bus feed a ``Tracker``; each finished row is written within
  ``flush_delay`` (insert, nothing done on a key already there).
- Asterisk's ``queue_log`` is the durable record: after every start, every AMI (re)connection,
  events dropped by the bus, a failed write, the end of a call whose entry was not seen live
  (it entered before this process listened), and every ``backfill_interval``, the log is read
  from the checkpoint and every finished row in it is written too. The checkpoint moves only
  to the entry line of the oldest call still open in what was read, so a row is rebuilt
  whole; the key makes every repeat harmless. Postgres down or this process killed: the rows
  are in the log, and written at the next backfill that succeeds.
- Every other node's ``queue_log`` too (``NodeLogs``, graam_pbx/cdr/node_logs.py): each
  backfill reads each node's log from a checkpoint of its own, by the same rule (a node
  whose log directory is missing is skipped, with one warning). Queue calls of different
  nodes never share a key: a caller's uniqueid starts with its node's systemname.
- The two run as two tasks: a backfill (a read of the log and its writes) never holds the live
  rows back. The keys written in the last ``WRITTEN_KEPT_SECONDS`` are remembered, and a
  backfill writes only the rows not among them: under load, what it re-reads was mostly
  written live already.
- Gauges: every ``metrics_interval`` seconds, ``QueueStatus`` gives each queue's waiting
  callers, longest wait and available/paused members.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx import metrics
from graam_pbx.ami import AmiError, AmiSupervisor, EventBus, Message, Subscription, event_time
from graam_pbx.ami.actions import queue_status
from graam_pbx.ami.bus import RESYNC_EVENT
from graam_pbx.cdr.node_logs import NodeLogs, checkpoint_dir
from graam_pbx.queue_calls.store import write_rows
from graam_pbx.queue_calls.tracker import (
    AMI_EVENTS,
    Kind,
    QueueCallRow,
    Tracker,
    ami_fields,
    event_from_ami,
    event_from_log,
    queue_ids,
)

log = logging.getLogger(__name__)

SUBSCRIBER = "queue-calls"
QUEUE_LOG = Path("/var/log/asterisk/queue_log")
LOG_NAME = QUEUE_LOG.name  # in another node's log directory (node_logs.py)
CHECKPOINT_NAME = "queue-log-checkpoint.json"  # in the state directory (other nodes': theirs)
READ_CHUNK = 1 << 20
# Entry ordinals kept in the checkpoint for callers seen this recently (a caller re-entering
# the same queue after the checkpoint is numbered on from them).
ORDINALS_KEPT_SECONDS = 6 * 3600
STALE_OPEN_CALL = timedelta(hours=12)
# After the end of a call whose entry was never seen live, queue_log is read this much later.
UNSEEN_END_DELAY = 0.5
RESTART_LINE = "|NONE|NONE|NONE|QUEUESTART|"
# A row the live tracker still has open when the log already has its end is left to the live
# writer (its times to the millisecond, the log's to the second) for this long after its end.
LIVE_FIRST = timedelta(seconds=30)
# Keys written (live or backfilled) remembered this long, at most this many.
WRITTEN_KEPT_SECONDS = 600.0
WRITTEN_KEPT_MAX = 500_000

RowKey = tuple[int, str, str, int]  # the table's unique key: tenant, caller, queue, entry


def row_key(row: QueueCallRow) -> RowKey:
    return (row.tenant_id, row.caller_uniqueid, row.queue_name, row.entry)


@dataclass(frozen=True)
class QueueCallSettings:
    queue_log: Path | None  # Asterisk's queue_log as this process sees it; None: no backfill
    state_dir: Path
    flush_delay: float = 0.1  # as the CDRs' batch delay: both facts of a call together
    backfill_interval: float = 60.0
    retry_interval: float = 1.0
    max_pending: int = 100_000
    metrics_interval: float = 5.0
    metrics_per_queue: bool = True


@dataclass
class Checkpoint:
    """Where the next backfill starts in the log, and the entry ordinals before it."""

    inode: int = 0
    offset: int = 0
    ordinals: dict[str, list[float]] = field(default_factory=dict)  # "uid|queue" -> [n, epoch]

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        try:
            data = json.loads(path.read_text())
            return cls(int(data["inode"]), int(data["offset"]), dict(data.get("ordinals", {})))
        except (OSError, ValueError, KeyError, TypeError):
            return cls()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        with temporary.open("w") as file:
            json.dump({"inode": self.inode, "offset": self.offset, "ordinals": self.ordinals}, file)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(path)


@dataclass
class BackfillResult:
    rows: list[QueueCallRow]
    checkpoint: Checkpoint


def read_log(
    queue_log: Path,
    checkpoint: Checkpoint,
    defer: Callable[[QueueCallRow], bool] | None = None,
    now: float | None = None,
) -> BackfillResult:
    """Every row finished in the log after ``checkpoint``, and the checkpoint to keep next.

    A log rotated or truncated since (another inode, or shorter) is read from its start. A
    finished row ``defer`` says to leave is not returned, and is kept ahead of the checkpoint
    like a call still open (a later read returns it). ``now`` (epoch seconds, default the
    clock's) dates the entry ordinals kept.
    """
    try:
        stat = queue_log.stat()
    except FileNotFoundError:
        return BackfillResult([], checkpoint)
    start = checkpoint.offset
    ordinals = dict(checkpoint.ordinals)
    if stat.st_ino != checkpoint.inode or stat.st_size < start:
        start = 0
    tracker = Tracker()
    now = time.time() if now is None else now
    for key, (count, epoch) in ordinals.items():
        uniqueid, _, queue = key.partition("|")
        tracker.seed(uniqueid, queue, int(count), datetime.fromtimestamp(epoch, UTC))
    joins: dict[tuple[str, str], list[int]] = {}  # offsets of entry lines read
    deferred: list[int] = []  # offsets of the entry lines of rows deferred
    rows: list[QueueCallRow] = []
    offset = start
    last_at: datetime | None = None
    with queue_log.open("rb") as file:
        file.seek(start)
        for raw in file:
            if not raw.endswith(b"\n"):
                break  # being written: read next time
            line_offset = offset
            offset += len(raw)
            text = raw.decode("utf-8", "replace")
            if RESTART_LINE in text:
                tracker.forget_open()  # Asterisk (re)started: no call from before goes on
                continue
            event = event_from_log(text)
            if event is None:
                continue
            last_at = event.at if last_at is None else max(last_at, event.at)
            call = (event.uniqueid, event.queue)
            entered = joins.get(call, [])
            if event.kind is Kind.JOIN:
                joins[call] = [*entered, line_offset]
            for row in tracker.feed(event):
                if defer is None or not defer(row):
                    rows.append(row)
                    continue
                # Its entry line: the latest read for its key (the one before, when this
                # very line is its re-entry), else this line (a status that never joined).
                at = entered if (row.caller_uniqueid, row.queue_name) == call else None
                at = at if at is not None else joins.get((row.caller_uniqueid, row.queue_name))
                deferred.append(at[-1] if at else line_offset)
    # A call open for longer than any call lasts (its end never logged) holds nothing back.
    horizon = last_at - STALE_OPEN_CALL if last_at is not None else None
    open_joins = [
        joins[key][-1]
        for key, row in tracker.open.items()
        if joins.get(key) and (horizon is None or row.entered_at >= horizon)
    ]
    keep = min(open_joins + deferred, default=offset)
    # Ordinals of entries before the new checkpoint: re-read lines are counted again.
    counts: dict[str, list[float]] = {}
    for (uniqueid, queue), (count, seen) in tracker.entries.items():
        after = sum(1 for at in joins.get((uniqueid, queue), []) if at >= keep)
        if count - after > 0 and now - seen.timestamp() < ORDINALS_KEPT_SECONDS:
            counts[f"{uniqueid}|{queue}"] = [count - after, seen.timestamp()]
    return BackfillResult(rows, Checkpoint(stat.st_ino, keep, counts))


class QueueCallWorker:
    """Owns the ``queue-calls`` bus subscription, the writer task and the gauge poller."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        ami: AmiSupervisor | None,
        settings: QueueCallSettings,
        *,
        nodes: NodeLogs | None = None,
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self._ami = ami
        self._settings = settings
        self._nodes = nodes  # the other nodes' queue_logs (None: the configured one's only)
        self.checkpoint_path = settings.state_dir / CHECKPOINT_NAME
        self.tracker = Tracker()
        self._pending: list[QueueCallRow] = []
        self._writing: list[QueueCallRow] = []  # the live batch being written
        self._wake = asyncio.Event()
        self._backfill_wake = asyncio.Event()
        self._subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._live_failing = False
        self._backfill_failing = False
        # Key -> when written (monotonic), oldest first. An OrderedDict: a dict trimmed from its
        # front costs a scan of the slots already deleted at every look at its first key.
        self._written: OrderedDict[RowKey, float] = OrderedDict()
        self._dropped_seen = 0
        self._gauged: set[tuple[str, str]] = set()
        self.backfills = 0
        # Who hears the tenants whose queue calls were just committed (the live wallboards'
        # figures); each must return at once.
        self.listeners: list[Callable[[set[int]], None]] = []

    async def start(self) -> None:
        self._subscription = self._bus.subscribe(
            SUBSCRIBER, [*AMI_EVENTS, RESYNC_EVENT], self._on_event, maxsize=100_000
        )
        self._backfill_wake.set()
        self._tasks = [
            asyncio.create_task(self._write_loop(), name="queue-calls-writer"),
            asyncio.create_task(self._backfill_loop(), name="queue-calls-backfill"),
        ]
        if self._ami is not None:
            self._tasks.append(asyncio.create_task(self._gauge_loop(), name="queue-gauges"))

    async def stop(self) -> None:
        """Write what is pending (what cannot be is in queue_log, for the next start)."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    while subscription.backlog:  # noqa: ASYNC110 - the bus has no drain
                        await asyncio.sleep(0.01)
            await self._bus.unsubscribe(subscription)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        self._tasks = []
        if self._pending:
            try:
                await self._write(self._pending, "ami")
            except Exception as err:
                log.warning(
                    "queue calls not written at stop (queue_log has them)",
                    extra={"rows": len(self._pending), "error": str(err)},
                )

    # ---- events in --------------------------------------------------------------------------

    def _on_event(self, message: Message) -> Awaitable[None] | None:
        if message.event == RESYNC_EVENT:
            if message.get("Restarted") == "yes":
                self.tracker.forget_open()  # the queue_log has what was finished before
            self.request_backfill()
            return None
        fields = ami_fields(message.fields)
        event = event_from_ami(fields, event_time(message, datetime.now(UTC)))
        if event is None:
            return None
        unseen = self.tracker.unseen_ends
        done = self.tracker.feed(event)
        if self.tracker.unseen_ends != unseen:
            # A call that entered before this process listened ended: only queue_log has it.
            # Read it shortly, once Asterisk has logged the end (it logs after the event).
            asyncio.get_running_loop().call_later(UNSEEN_END_DELAY, self.request_backfill)
        if done:
            if len(self._pending) < self._settings.max_pending:
                self._pending.extend(done)
                self._wake.set()
            else:
                self.request_backfill()  # the log has them
        return None

    @property
    def failing(self) -> bool:
        """True while writes to Postgres fail (the rows wait in memory and in queue_log)."""
        return self._live_failing or self._backfill_failing

    def request_backfill(self) -> None:
        self._backfill_wake.set()

    # ---- writer -----------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        """The live rows: written ``flush_delay`` after the first one is pending."""
        while True:
            self._wake.clear()
            if not self._pending:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._settings.flush_delay * 10):
                        await self._wake.wait()
            await asyncio.sleep(self._settings.flush_delay if self._pending else 0)
            try:
                self._watch_drops()
                self._pending.extend(self.tracker.expire(datetime.now(UTC)))
                if self._pending:
                    batch, self._pending = self._pending, []
                    self._writing = batch
                    try:
                        await self._write(batch, "ami")
                    except BaseException:
                        self._pending[:0] = batch
                        raise
                    finally:
                        self._writing = []
            except asyncio.CancelledError:
                raise
            except Exception as err:
                if not self._live_failing:
                    log.warning("queue calls not written; retrying", extra={"error": str(err)})
                self._live_failing = True
                self.request_backfill()  # once Postgres is back, the log has them too
                await asyncio.sleep(self._settings.retry_interval)
                continue
            if self._live_failing:
                log.info("queue calls written again")
                self._live_failing = False

    async def _backfill_loop(self) -> None:
        """A backfill when asked for, else every ``backfill_interval``; retried until it
        succeeds."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.backfill_interval):
                    await self._backfill_wake.wait()
            self._backfill_wake.clear()
            try:
                await self._backfill()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                if not self._backfill_failing:
                    log.warning("queue calls not backfilled; retrying", extra={"error": str(err)})
                self._backfill_failing = True
                self._backfill_wake.set()
                await asyncio.sleep(self._settings.retry_interval)
                continue
            if self._backfill_failing:
                log.info("queue calls backfilled again")
                self._backfill_failing = False

    async def _write(self, rows: list[QueueCallRow], source: str) -> None:
        async with self._sessions() as session, session.begin():
            await write_rows(session, rows, source)
        metrics.QUEUE_CALLS_WRITTEN.labels(source=source).inc(len(rows))
        if rows and self.listeners:
            tenants = {row.tenant_id for row in rows}
            for listener in self.listeners:
                try:
                    listener(tenants)
                except Exception:
                    log.exception("a listener of queue calls failed")
        now = time.monotonic()
        written = self._written
        for row in rows:
            key = row_key(row)
            written[key] = now
            written.move_to_end(key)  # the front is the oldest
        while written and (
            len(written) > WRITTEN_KEPT_MAX
            or now - next(iter(written.values())) > WRITTEN_KEPT_SECONDS
        ):
            written.popitem(last=False)

    async def _backfill(self) -> None:
        """The configured node's queue_log, then every other node's (each from its own
        checkpoint)."""
        queue_log = self._settings.queue_log
        if queue_log is not None:
            await self._backfill_log(queue_log, self.checkpoint_path)
        nodes = self._nodes
        if nodes is not None:
            for node in nodes.others():
                if await asyncio.to_thread(nodes.present, node):
                    await self._backfill_log(
                        nodes.log_dir(node) / LOG_NAME,
                        checkpoint_dir(self._settings.state_dir, node) / CHECKPOINT_NAME,
                    )
        self.backfills += 1

    async def _backfill_log(self, queue_log: Path, checkpoint_path: Path) -> None:
        checkpoint = await asyncio.to_thread(Checkpoint.load, checkpoint_path)
        result = await asyncio.to_thread(read_log, queue_log, checkpoint, self._live_first())
        missing = [row for row in result.rows if row_key(row) not in self._written]
        for start in range(0, len(missing), 5000):
            await self._write(missing[start : start + 5000], "queue_log")
        await asyncio.to_thread(result.checkpoint.save, checkpoint_path)

    def _live_first(self) -> Callable[[QueueCallRow], bool]:
        """Which rows a backfill leaves to the live writer: those it is writing or will write
        (pending), and those the live tracker still has open that ended less than
        ``LIVE_FIRST`` ago (their end is on its way). A snapshot: the log is read in a thread.
        Written live, the next backfill finds them written; else it writes them."""
        live = {row_key(row) for row in (*self._pending, *self._writing)}
        live.update(row_key(row) for row in self.tracker.open.values())
        horizon = datetime.now(UTC) - LIVE_FIRST

        def defer(row: QueueCallRow) -> bool:
            return row_key(row) in live and (row.ended_at is None or row.ended_at > horizon)

        return defer

    def _watch_drops(self) -> None:
        subscription = self._subscription
        if subscription is not None and subscription.dropped != self._dropped_seen:
            self._dropped_seen = subscription.dropped
            self.request_backfill()

    # ---- gauges -----------------------------------------------------------------------------

    async def _gauge_loop(self) -> None:
        assert self._ami is not None  # noqa: S101 - started only with AMI
        while True:
            try:
                async with asyncio.timeout(self._settings.metrics_interval * 2):
                    messages = await queue_status(self._ami)
            except (AmiError, TimeoutError):
                messages = None
            if messages is not None:
                self._set_gauges(messages)
            await asyncio.sleep(self._settings.metrics_interval)

    def _set_gauges(self, messages: list[Message]) -> None:
        """Per queue (tenant and queue ids as labels) or, turned off, summed over all."""
        waiting: dict[tuple[str, str], float] = {}
        longest: dict[tuple[str, str], float] = {}
        available: dict[tuple[str, str], float] = {}
        paused: dict[tuple[str, str], float] = {}
        for message in messages:
            queue = message.get("Queue", "")
            ids = queue_ids(queue)
            if ids is None:
                continue
            labels: tuple[str, str] = (
                (str(ids[0]), str(ids[1])) if self._settings.metrics_per_queue else ("all", "all")
            )
            for table in (waiting, longest, available, paused):
                table.setdefault(labels, 0.0)
            if message.event == "QueueEntry":
                waiting[labels] += 1
                longest[labels] = max(longest[labels], float(message.get("Wait", "0") or 0))
            elif message.event == "QueueMember":
                if message.get("Paused") == "1":
                    paused[labels] += 1
                elif message.get("Status") == "1" and message.get("InCall", "0") == "0":
                    available[labels] += 1  # AST_DEVICE_NOT_INUSE
        for gone in self._gauged - waiting.keys():
            for gauge in _GAUGES:
                with contextlib.suppress(KeyError):
                    gauge.remove(*gone)
        self._gauged = set(waiting)
        for labels in waiting:
            metrics.QUEUE_WAITING.labels(*labels).set(waiting[labels])
            metrics.QUEUE_LONGEST_WAIT.labels(*labels).set(longest[labels])
            metrics.QUEUE_AGENTS_AVAILABLE.labels(*labels).set(available[labels])
            metrics.QUEUE_AGENTS_PAUSED.labels(*labels).set(paused[labels])


_GAUGES = (
    metrics.QUEUE_WAITING,
    metrics.QUEUE_LONGEST_WAIT,
    metrics.QUEUE_AGENTS_AVAILABLE,
    metrics.QUEUE_AGENTS_PAUSED,
)
