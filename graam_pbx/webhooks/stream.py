"""The tenants' event streams (``GET /api/v1/events/stream``) of one API process.

Events are stored only for tenants someone listens to (``models``): a stream keeps its
tenant's ``event_streams`` lease (``LEASE`` seconds) renewed while it is connected, every
``RENEW`` seconds, so its tenant's events are stored, every type, exactly as for a
subscribed endpoint. A stream sends the events stored after it opened, or after the id its
client last received (``Last-Event-ID``), in id order.

One LISTEN on ``graam_webhooks`` (the triggers notify it when a statement stored events)
wakes the process; one observation then moves the process's ``Watermark`` (how far the stored
ids are final), and asks which tenants have events in what it passed: only those tenants'
streams wake, each reading its own new rows by id (its tenant's, its types) up to the
watermark. Nothing is read for nobody: without streams the process observes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.errors import Unavailable
from graam_pbx.webhooks.payloads import envelope
from graam_pbx.webhooks.watermark import HOLD, SETTLE, Snapshot, Watermark

log = logging.getLogger(__name__)

LEASE = 120.0  # seconds a tenant's events stay stored after its last stream's last renewal
RENEW = 30.0  # seconds between renewals of the leases of connected streams
POLL = 5.0  # seconds between observations at most while streams are connected
RECHECK = 0.2  # seconds between observations while a gap is waited for
IDS = 5000  # visible ids read per observation at most
BATCH = 500  # events read per query of a stream
_NONE = 2**62  # "after" when only the highest visible id is wanted

_RENEW = text(
    """
    INSERT INTO event_streams AS s (tenant_id, since, expires_at)
    SELECT t, now(), now() + make_interval(secs => :lease)
    FROM unnest(CAST(:tenants AS bigint[])) AS t
    ON CONFLICT (tenant_id) DO UPDATE
    SET since = CASE WHEN s.expires_at > now() THEN s.since ELSE now() END,
        expires_at = greatest(s.expires_at, excluded.expires_at)
    """
)
_NEWEST = text("SELECT coalesce(max(id), 0) FROM webhook_events")
_OBSERVE = text(
    """
    SELECT pg_current_snapshot()::text,
           (SELECT coalesce(max(id), 0) FROM webhook_events),
           ARRAY(SELECT id FROM webhook_events WHERE id > :after ORDER BY id LIMIT :limit)
    """
)
_TENANTS = text("SELECT DISTINCT tenant_id FROM webhook_events WHERE id > :after AND id <= :upto")
_READ = text(
    """
    SELECT id, type, occurred_at, payload::text FROM webhook_events
    WHERE tenant_id = :tenant AND id > :after AND id <= :upto
      AND (CAST(:types AS text[]) IS NULL OR type = ANY (CAST(:types AS text[])))
    ORDER BY id
    LIMIT :limit
    """
)


@dataclass(frozen=True)
class Event:
    """One stored event, as a stream sends it."""

    id: int
    type: str
    occurred_at: datetime
    tenant_id: int
    payload: str  # its data, JSON

    def frame(self) -> bytes:
        """The Server-Sent Event: its id, its type, and a delivery's body as its data."""
        body = envelope(self.id, self.type, self.occurred_at, self.tenant_id, self.payload)
        return b"id: %d\nevent: %s\ndata: %s\n\n" % (self.id, self.type.encode(), body)


class Stream:
    """One connected client: its tenant, its types, and the last id it was sent."""

    def __init__(self, tenant_id: int, types: Collection[str] | None, position: int) -> None:
        self.tenant_id = tenant_id
        self.types = sorted(types) if types else None
        self.position = position
        self.closed = False
        self._ready = asyncio.Event()
        self._ready.set()  # a first read: what was stored after its position

    def wake(self) -> None:
        self._ready.set()

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    async def wait(self) -> None:
        """Until woken (closed included)."""
        await self._ready.wait()
        self._ready.clear()


class EventStreams:
    """The process's streams, their leases, and the watermark they read up to."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        lease: float = LEASE,
        renew: float = RENEW,
        settle: float = SETTLE,
        hold: float = HOLD,
    ) -> None:
        self._sessions = sessions
        self._lease = lease
        self._renew = renew
        self._watermark = Watermark(settle=settle, hold=hold)
        self._streams: dict[int, set[Stream]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.observations = 0

    @property
    def final(self) -> int | None:
        """Every event id up to it is final (``Watermark``)."""
        return self._watermark.final

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="event-streams")

    def close_streams(self) -> None:
        """End every open stream and refuse new ones (the process is stopping)."""
        self._closing = True
        for streams in self._streams.values():
            for stream in streams:
                stream.close()

    async def stop(self) -> None:
        self.close_streams()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    def heard(self, _: str = "") -> None:
        """Events were stored (``graam_webhooks``), or the LISTEN connected again."""
        self._wake.set()

    # ---- streams --------------------------------------------------------------------------

    async def open(
        self, tenant_id: int, types: Collection[str] | None, after: int | None
    ) -> Stream:
        """A stream of the tenant's events stored after the id ``after`` (None: from now on).
        Its tenant's events are stored from the moment it returns."""
        if self._closing:
            raise Unavailable("the control plane is stopping", retry_after=1)
        async with self._sessions() as session, session.begin():
            await session.execute(_RENEW, {"tenants": [tenant_id], "lease": self._lease})
        if after is None:
            async with self._sessions() as session:
                after = int(await session.scalar(_NEWEST) or 0)
        if self._closing:
            raise Unavailable("the control plane is stopping", retry_after=1)
        stream = Stream(tenant_id, types, after)
        self._streams.setdefault(tenant_id, set()).add(stream)
        self._wake.set()
        return stream

    def leave(self, stream: Stream) -> None:
        """A stream ended (its lease runs out by itself if it was its tenant's last)."""
        streams = self._streams.get(stream.tenant_id)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self._streams[stream.tenant_id]

    def streams(self, tenant_id: int) -> int:
        return len(self._streams.get(tenant_id, ()))

    async def read(self, stream: Stream) -> list[Event]:
        """The stream's next events up to the watermark, its position moved past them."""
        upto = self._watermark.final
        if upto is None or upto <= stream.position:
            return []
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    _READ,
                    {
                        "tenant": stream.tenant_id,
                        "after": stream.position,
                        "upto": upto,
                        "types": stream.types,
                        "limit": BATCH,
                    },
                )
            ).all()
        events = [Event(row[0], row[1], row[2], stream.tenant_id, row[3]) for row in rows]
        if len(events) == BATCH:
            stream.position = events[-1].id
            stream.wake()  # more to read
        else:
            stream.position = upto
        return events

    # ---- the process's observations -------------------------------------------------------

    async def _run(self) -> None:
        renewed = time.monotonic()
        while True:
            wait = RECHECK if self._watermark.waiting else POLL
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()
            if not self._streams:
                self._watermark.reset()  # nothing observed while nobody reads
                continue
            try:
                if time.monotonic() - renewed >= self._renew:
                    await self._renew_leases(list(self._streams))
                    renewed = time.monotonic()
                while await self._observe():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event streams: observation failed; tried again shortly")

    async def _renew_leases(self, tenant_ids: list[int]) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(_RENEW, {"tenants": tenant_ids, "lease": self._lease})

    async def _observe(self) -> bool:
        """One observation; wakes the streams of the tenants it passed events of. Whether
        the watermark moved (another may move it further)."""
        before = self._watermark.final
        async with self._sessions() as session:
            snapshot, top, ids = (
                await session.execute(
                    _OBSERVE, {"after": _NONE if before is None else before, "limit": IDS}
                )
            ).one()
            self.observations += 1
            final = self._watermark.observe(Snapshot.parse(snapshot), top, ids, time.monotonic())
            if final is None or final == before:
                return False
            if before is None:
                tenants: Iterable[int] = list(self._streams)
            else:
                tenants = await session.scalars(_TENANTS, {"after": before, "upto": final})
        for tenant_id in tenants:
            for stream in self._streams.get(tenant_id, ()):
                stream.wake()
        return True
