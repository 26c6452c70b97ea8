"""The billing scheduler: the background component that runs billing's passes.

Each pass, in this order: rate new billable calls; make the month-end invoices that are due
(a catch-up: the first pass after a start makes any a stopped control plane missed at
midnight); e-mail the invoices not yet sent; dun unpaid invoices (overdue, suspension,
reactivation); finish terminations whose last day has passed; once a day, archive old CDR
months and purge what is past retention. Every pass is idempotent: running one twice, or
two at once, makes nothing twice (each part locks and checks in the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.billing import dunning, invoicing, mailing, rating, retention, termination
from graam_pbx.mail import SmtpRelay
from graam_pbx.settings import Settings

log = logging.getLogger(__name__)

RETENTION_EVERY = timedelta(days=1)


class BillingScheduler:
    """Runs billing's passes every ``billing_interval`` seconds, and at once when asked."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        relay: SmtpRelay | None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._relay = relay
        self._zone = ZoneInfo(settings.billing_timezone)
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._failing: set[str] = set()
        self._retention_at: datetime | None = None
        self._passes = 0
        self._passed = asyncio.Condition()

    @property
    def passes(self) -> int:
        """Passes completed so far."""
        return self._passes

    async def start(self) -> None:
        self._stopping = False
        self._wake.set()  # the first pass at once: the catch-up of a stopped control plane
        self._task = asyncio.create_task(self._run(), name="billing-scheduler")

    async def stop(self) -> None:
        """Let the running part finish (each part commits per tenant), then stop."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        done, _ = await asyncio.wait([task], timeout=30)
        if not done:
            task.cancel()
            await asyncio.wait([task])

    def request(self) -> None:
        """Run a pass as soon as possible."""
        self._wake.set()

    async def wait_passes(self, count: int, timeout: int = 60) -> None:  # noqa: ASYNC109
        """Wait until ``count`` passes have completed."""
        async with asyncio.timeout(timeout), self._passed:
            await self._passed.wait_for(lambda: self._passes >= count)

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.billing_interval):
                    await self._wake.wait()
            if self._stopping:
                break
            self._wake.clear()
            await self.run_pass(self._clock())
            async with self._passed:
                self._passes += 1
                self._passed.notify_all()

    async def run_pass(self, now: datetime) -> None:
        """One pass of every part; a part that fails is logged and the others still run."""
        sessions, settings, relay = self._sessions, self._settings, self._relay
        parts: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("rating", lambda: rating.rate_pending(sessions, self._zone, now)),
            ("invoicing", lambda: invoicing.invoice_due(sessions, settings, now)),
            ("mailing", lambda: mailing.send_pending(sessions, relay, settings, now)),
            ("dunning", lambda: dunning.run_dunning(sessions, relay, settings, now)),
            ("termination", lambda: termination.finish_terminations(sessions, settings, now)),
        ]
        if self._retention_at is None or now - self._retention_at >= RETENTION_EVERY:
            parts.append(("retention", lambda: retention.run_retention(sessions, settings, now)))
        for name, part in parts:
            if self._stopping:
                return
            try:
                await part()
            except Exception:
                if name not in self._failing:
                    log.exception("billing pass failed part=%s", name)
                    self._failing.add(name)
                continue
            if name in self._failing:
                log.info("billing pass recovered part=%s", name)
                self._failing.discard(name)
            if name == "retention":
                self._retention_at = now
