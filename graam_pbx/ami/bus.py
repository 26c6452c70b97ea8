"""Fan-out of AMI events to subscribers, each behind its own bounded queue and worker task.

``publish`` never blocks: the AMI reader calls it, and a reader that waits is a connection
that Asterisk drops. A slow subscriber loses events (counted per subscriber) instead.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from typing import Literal

from graam_pbx.ami.protocol import Message
from graam_pbx.metrics import AMI_HANDLER_ERRORS, AMI_SUBSCRIBER_BACKLOG, AMI_SUBSCRIBER_DROPPED

logger = logging.getLogger(__name__)

RESYNC_EVENT = "GraamResync"
_EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")  # what an AMI Filter may name
ALL_EVENTS = "*"
YIELD_EVERY = 100  # events a subscriber handles before letting the other tasks run
# Added last to every event of a node's supervisor (graam_pbx/cluster/supervisors.py): the
# name of the node that sent it.
NODE_HEADER = "GraamNode"

# None once the event is handled, or an awaitable when handling it has to wait: the usual
# event then costs no coroutine (a busy Asterisk sends thousands of events a second).
EventHandler = Callable[[Message], Awaitable[None] | None]


def sent_by(message: Message, node: str) -> bool:
    """Whether ``message`` came from the node named ``node``. An untagged event (a process
    with one Asterisk and no node table) is every node's."""
    sender = message.get(NODE_HEADER)
    return sender is None or sender == node


class Subscription:
    """One subscriber: its event names, its bounded queue and its single worker.

    The queue is a plain deque with two events rather than an ``asyncio.Queue``: publishing
    is an append, and the worker takes what is queued without a round through the loop per
    event (a busy Asterisk sends thousands of events a second).
    """

    def __init__(
        self, name: str, events: frozenset[str] | None, handler: EventHandler, maxsize: int
    ) -> None:
        self.name = name
        self.events = events
        self.handler = handler
        self.maxsize = maxsize
        self.dropped = 0
        self._queue: deque[Message] = deque()
        self._queued = asyncio.Event()  # set while the queue holds anything
        self._idle = asyncio.Event()  # set once everything queued has been handled
        self._idle.set()
        self._dropping = False
        self._worker: asyncio.Task[None] | None = None
        # Read when scraped: setting it on every event would cost more than the event.
        AMI_SUBSCRIBER_BACKLOG.labels(subscriber=name).set_function(self._queue.__len__)

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def _offer(self, message: Message) -> None:
        queue = self._queue
        if len(queue) >= self.maxsize:
            self.dropped += 1
            AMI_SUBSCRIBER_DROPPED.labels(subscriber=self.name).inc()
            if not self._dropping:
                self._dropping = True
                logger.warning(
                    "ami subscriber full, dropping events subscriber=%s maxsize=%d",
                    self.name,
                    self.maxsize,
                )
            return
        queue.append(message)
        if len(queue) == 1:
            self._queued.set()
            self._idle.clear()

    def _start(self) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name=f"ami-subscriber-{self.name}")

    async def _drain(self) -> None:
        if self._worker is not None and not self._worker.done():
            await self._idle.wait()

    async def _stop(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            await asyncio.wait([self._worker])
        self._worker = None

    async def _run(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                self._idle.set()
                self._queued.clear()
                await self._queued.wait()
                continue
            # At most YIELD_EVERY events, then the other tasks run: a handler that never waits
            # would otherwise hold the loop for the whole backlog, and the tasks it feeds (the
            # CDR writer's COPY) would wait for it.
            count = min(len(queue), YIELD_EVERY)
            for _ in range(count):
                message = queue.popleft()
                try:
                    waiting = self.handler(message)
                    if waiting is not None:
                        await waiting
                except Exception:
                    AMI_HANDLER_ERRORS.labels(subscriber=self.name).inc()
                    logger.exception(
                        "ami subscriber failed subscriber=%s event=%s", self.name, message.name
                    )
            if self._dropping and not queue:
                self._dropping = False
                logger.info(
                    "ami subscriber caught up subscriber=%s dropped_total=%d",
                    self.name,
                    self.dropped,
                )
            if count == YIELD_EVERY:
                await asyncio.sleep(0)


class EventBus:
    """Routes published AMI events to the subscribers of their name (or of ``"*"``).

    ``only``: the events this process's subscribers may ever want (None: any). Its AMI
    connections then ask Asterisk for those alone (graam_pbx/ami/supervisor.py installs them
    as the connection's filters), so an API process no longer reads and parses every event of
    a busy switch; a subscription to anything else is refused, never silently starved.
    """

    def __init__(self, *, drain_timeout: float = 5.0, only: Collection[str] | None = None) -> None:
        self._drain_timeout = drain_timeout
        self.only: frozenset[str] | None = None if only is None else frozenset(only)
        for event in self.only or ():
            if _EVENT_NAME.fullmatch(event) is None:
                raise ValueError(f"not an AMI event name: {event!r}")
        # What a subscription may name (case-blind, as Asterisk's names): the events asked
        # for and the bus's own resync.
        self._asked: frozenset[str] | None = (
            None
            if self.only is None
            else frozenset({event.lower() for event in self.only} | {RESYNC_EVENT.lower()})
        )
        self._subscriptions: dict[str, Subscription] = {}
        self._by_event: dict[str, list[Subscription]] = {}
        self._wildcard: list[Subscription] = []
        self._running = False

    def subscribe(
        self,
        name: str,
        events: Collection[str] | Literal["*"],
        handler: EventHandler,
        *,
        maxsize: int = 10_000,
    ) -> Subscription:
        """Register ``handler`` under ``name`` (the metrics label) for ``events``."""
        if name in self._subscriptions:
            raise ValueError(f"an AMI subscriber named {name!r} already exists")
        unasked = self._unasked(events)
        if unasked:
            raise ValueError(
                f"AMI subscriber {name!r} wants events this process never asks Asterisk for: "
                + ", ".join(sorted(unasked))
            )
        if events == ALL_EVENTS:
            wanted = None
        elif isinstance(events, str):
            wanted = frozenset({events.lower()})
        else:
            wanted = frozenset(event.lower() for event in events)
        subscription = Subscription(name, wanted, handler, maxsize)
        self._subscriptions[name] = subscription
        if wanted is None:
            self._wildcard.append(subscription)
        else:
            for event in wanted:
                self._by_event.setdefault(event, []).append(subscription)
        if self._running:
            subscription._start()
        return subscription

    def _unasked(self, events: Collection[str] | Literal["*"]) -> set[str]:
        asked = self._asked
        if asked is None:
            return set()
        if events == ALL_EVENTS:
            return {ALL_EVENTS}
        named = {events} if isinstance(events, str) else set(events)
        return {event for event in named if event.lower() not in asked}

    async def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering to ``subscription``; what it has queued is discarded."""
        if self._subscriptions.get(subscription.name) is not subscription:
            return
        del self._subscriptions[subscription.name]
        if subscription.events is None:
            self._wildcard.remove(subscription)
        else:
            for event in subscription.events:
                self._by_event[event].remove(subscription)
        await subscription._stop()

    def publish(self, message: Message) -> None:
        """Queue ``message`` for every matching subscriber; never blocks, never raises."""
        event = message.event
        if event is None:
            return
        for subscription in self._by_event.get(event.lower(), ()):
            subscription._offer(message)
        for subscription in self._wildcard:
            subscription._offer(message)

    def publish_resync(self, restarted: bool) -> None:
        """Tell subscribers to re-read Asterisk's state: events may have been missed."""
        restarted_value = "yes" if restarted else "no"
        self.publish(Message([("Event", RESYNC_EVENT), ("Restarted", restarted_value)]))

    async def start(self) -> None:
        self._running = True
        for subscription in self._subscriptions.values():
            subscription._start()

    async def stop(self) -> None:
        """Let workers finish what is queued (bounded by ``drain_timeout``), then cancel them."""
        self._running = False
        subscriptions = list(self._subscriptions.values())
        drains = {
            asyncio.create_task(subscription._drain()): subscription.name
            for subscription in subscriptions
        }
        if drains:
            _, undrained = await asyncio.wait(drains, timeout=self._drain_timeout)
            if undrained:
                logger.warning(
                    "ami bus stopped before subscribers drained subscribers=%s",
                    ",".join(sorted(drains[task] for task in undrained)),
                )
            for task in undrained:
                task.cancel()
        await asyncio.gather(*(subscription._stop() for subscription in subscriptions))
