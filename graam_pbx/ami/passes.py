"""A background component that makes passes over what Asterisk leaves behind (a spool, a
log): at start, whenever one of its AMI events or a resync wakes it, when asked, and every
scan interval at the latest.

Subclasses say when they are ready to run (``_ready``), what an event asks of them
(``_on_event``), what one pass does (``_pass``) and, if not the scan interval, how long to
wait before the next one (``_next_wait``). Passes run one at a time in the component's task;
a pass that fails is logged (``_pass_failed``) and the next one runs as usual. ``stop`` lets
the pass under way finish (within ``_stop_grace`` seconds when one is given, else cancelled).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from graam_pbx.ami.bus import RESYNC_EVENT, EventBus, Subscription
from graam_pbx.ami.protocol import Message

log = logging.getLogger(__name__)


class PassRunner:
    """Passes woken by AMI events, requests and a periodic scan; counted, one at a time."""

    def __init__(
        self, bus: EventBus, name: str, events: Sequence[str], scan_interval: float
    ) -> None:
        self._bus = bus
        self._name = name
        self._events = [*events, RESYNC_EVENT]
        self._scan_interval = scan_interval
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._passes = 0
        self._passed = asyncio.Condition()

    @property
    def passes(self) -> int:
        """Passes completed so far."""
        return self._passes

    def _ready(self) -> bool:
        """Whether the component can run here (False: it says why, and never runs)."""
        return True

    def _on_event(self, message: Message) -> None:
        """What one of its events (or a resync) asks: by default, a pass soon."""
        self._wake.set()

    async def _pass(self, woken: bool) -> None:
        """One pass; ``woken``: asked for (an event, a request, the start), not the scan."""
        raise NotImplementedError

    def _next_wait(self) -> float:
        """Seconds until the next pass unless something wakes it first."""
        return self._scan_interval

    def _pass_failed(self, error: Exception) -> None:
        log.error("%s: pass failed; tried again at the next one", self._name, exc_info=error)

    def _stop_grace(self) -> float | None:
        """How long ``stop`` lets a pass under way finish (None: as long as it takes)."""
        return None

    async def start(self) -> None:
        if not self._ready():
            return
        self._stopping = False
        self._subscription = self._bus.subscribe(self._name, self._events, self._on_event)
        self._wake.set()
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._subscription is not None:
            await self._bus.unsubscribe(self._subscription)
            self._subscription = None
        task, self._task = self._task, None
        if task is None:
            return
        done, _ = await asyncio.wait([task], timeout=self._stop_grace())
        if not done:
            task.cancel()
            await asyncio.wait([task])

    def _wake_soon(self) -> None:
        self._wake.set()

    async def wait_passes(self, count: int, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait until ``count`` passes have completed."""
        async with asyncio.timeout(timeout), self._passed:
            await self._passed.wait_for(lambda: self._passes >= count)

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._next_wait()):
                    await self._wake.wait()
            if self._stopping:
                break
            woken = self._wake.is_set()
            self._wake.clear()
            try:
                await self._pass(woken)
            except Exception as err:
                self._pass_failed(err)
            async with self._passed:
                self._passes += 1
                self._passed.notify_all()
