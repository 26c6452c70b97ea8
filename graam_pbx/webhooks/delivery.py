"""Delivers pending webhook deliveries: signed POSTs, at least once, in order per call.

A pass claims the deliveries that are due (``next_attempt_at`` passed) and first of their
ordering key for their endpoint (no earlier delivery of the same call, or agent, is still
pending to it), moving each one's next attempt a lease ahead: a worker that dies mid-delivery
leaves it to be sent again once the lease is over (at least once). Each is POSTed to the
address its endpoint's host resolved to, checked (``addresses``), with the event as JSON and
its signature (``signing``). A 2xx answer delivers it; anything else (another status, no
answer within ``timeout``, a refused address) is retried after ``retry_base`` seconds,
doubled each time up to an hour, until ``retry_for`` seconds after the event: then it is
dead, shown to the tenant with its last error. An endpoint that nothing reached for
``retry_for`` seconds is disabled (its pending deliveries die with it) and the tenant's
admins are e-mailed.

Each origin (scheme, address checked, port and host name) has a connection pool of its own,
closed once unused for ``IDLE_POOL`` seconds; ``concurrency`` bounds the requests in flight
over all of them. One pool for every endpoint would cost CPU on every request: httpx's pool
looks at each of its connections when a request starts and ends, and with the connections
of a hundred requests in flight that was most of a delivery's cost (bench/webhooks.py).
A TLS connection is never reused for another host name that resolved to the same address.

Passes run when woken (``request``: a new event's notification, a retry made due by hand),
when the next retry is due, and every ``POLL`` seconds at the latest.

Every ``PURGE_INTERVAL`` (and once started) it purges the events older than ``retention``
(7 days) none of whose deliveries is pending or recently dead, with their deliveries, and the
streams' leases that ran out. A dead delivery is kept ``DEAD_RETENTION`` (30 days) from the
start of its last retry period (the event, or a retry by hand), the admins' time to see it
and retry it; then it goes with its event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.mail import SmtpRelay, deliver
from graam_pbx.webhooks import addresses, signing
from graam_pbx.webhooks.payloads import envelope

log = logging.getLogger(__name__)

CHANNEL = "graam_webhooks"  # the migration's triggers notify it
POLL = 5.0  # seconds between passes at most
MAX_BACKOFF = 3600.0
ERROR_CHARS = 500  # of an error kept with its delivery
USER_AGENT = "graam-pbx-webhooks/1"
RETENTION = 7 * 86400.0  # seconds an event is kept (unless a delivery of it waits)
DEAD_RETENTION = 30 * 86400.0  # seconds a dead delivery is kept, from its last retry period
PURGE_INTERVAL = 3600.0
PURGE_BATCH = 5000
IDLE_POOL = 300.0  # seconds an origin's pool is kept unused before it is closed

# (scheme, address, port, host name): the requests one pool may share connections for
Origin = tuple[str, str, int, str]

_CLAIM = text(
    """
    WITH due AS (
        SELECT d.id FROM webhook_deliveries d
        WHERE d.state = 'pending' AND d.next_attempt_at <= now()
          AND NOT EXISTS (
              SELECT 1 FROM webhook_deliveries e
              WHERE e.endpoint_id = d.endpoint_id AND e.ordering_key = d.ordering_key
                AND e.state = 'pending' AND e.id < d.id)
        ORDER BY d.next_attempt_at, d.id
        LIMIT :limit
        FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE webhook_deliveries d
    SET next_attempt_at = now() + make_interval(secs => :lease), attempts = d.attempts + 1
    FROM due, webhook_events ev, webhook_endpoints p
    WHERE d.id = due.id AND ev.id = d.event_id AND p.id = d.endpoint_id
    RETURNING d.id, d.attempts, coalesce(d.retry_from, ev.created_at), ev.id, ev.type,
              ev.occurred_at, ev.tenant_id, ev.payload::text, p.id, p.url, p.secret, p.enabled
    """
)
_DELIVERED = text(
    """
    WITH done AS (
        UPDATE webhook_deliveries d
        SET state = 'delivered', delivered_at = now(), last_status = v.status, last_error = NULL
        FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS int[])) AS v(id, status)
        WHERE d.id = v.id
        RETURNING d.endpoint_id
    )
    UPDATE webhook_endpoints SET failing_since = NULL
    WHERE id IN (SELECT endpoint_id FROM done) AND failing_since IS NOT NULL
    """
)
_FAILED = text(
    """
    WITH failed AS (
        UPDATE webhook_deliveries d
        SET last_status = v.status, last_error = v.error,
            state = CASE WHEN v.dead THEN 'dead' ELSE 'pending' END,
            next_attempt_at = now() + make_interval(secs => v.delay)
        FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS int[]), CAST(:errors AS text[]),
                    CAST(:deads AS boolean[]), CAST(:delays AS float8[]))
             AS v(id, status, error, dead, delay)
        WHERE d.id = v.id
        RETURNING d.endpoint_id
    )
    UPDATE webhook_endpoints SET failing_since = now()
    WHERE id IN (SELECT endpoint_id FROM failed) AND failing_since IS NULL
    """
)
# Endpoints nothing reached for the retry period: disabled, their pending deliveries dead.
_DISABLE = text(
    """
    WITH disabled AS (
        UPDATE webhook_endpoints
        SET enabled = false, version = version + 1, updated_at = now(),
            disabled_reason = 'every delivery failed since '
                || to_char(failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'
        WHERE enabled AND failing_since <= now() - make_interval(secs => :period)
        RETURNING id, tenant_id, url
    ), dead AS (
        UPDATE webhook_deliveries d SET state = 'dead',
            last_error = coalesce(d.last_error, 'endpoint disabled')
        FROM disabled WHERE d.endpoint_id = disabled.id AND d.state = 'pending'
    )
    SELECT disabled.id, disabled.tenant_id, disabled.url,
           array_remove(array_agg(u.email), NULL)
    FROM disabled
    LEFT JOIN users u ON u.tenant_id = disabled.tenant_id AND u.role = 'admin' AND NOT u.disabled
    GROUP BY disabled.id, disabled.tenant_id, disabled.url
    """
)
# The first event young enough to keep: the purge looks below it only.
_PURGE_BOUND = text(
    """
    SELECT now() - make_interval(secs => :retention),
           now() - make_interval(secs => :dead_retention),
           (SELECT id FROM webhook_events
            WHERE created_at >= now() - make_interval(secs => :retention)
            ORDER BY id LIMIT 1)
    """
)
_PURGE_EVENTS = text(
    """
    WITH batch AS (
        SELECT id FROM webhook_events
        WHERE id > :after AND (CAST(:bound AS bigint) IS NULL OR id < :bound)
        ORDER BY id LIMIT :limit
    ), gone AS (
        DELETE FROM webhook_events e USING batch
        WHERE e.id = batch.id AND e.created_at < :cutoff
          AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                          WHERE d.event_id = e.id
                            AND (d.state = 'pending'
                                 OR (d.state = 'dead'
                                     AND coalesce(d.retry_from, d.created_at) >= :dead_cutoff)))
        RETURNING e.id
    )
    SELECT (SELECT max(id) FROM batch), (SELECT count(*) FROM gone)
    """
)
_PURGE_LEASES = text("DELETE FROM event_streams WHERE expires_at < now()")
_NEXT_DUE = text(
    "SELECT extract(epoch FROM min(next_attempt_at) - now()) FROM webhook_deliveries "
    "WHERE state = 'pending'"
)


def backoff(attempts: int, base: float) -> float:
    """Seconds before the next try after ``attempts`` failed ones: ``base``, doubled each
    time, at most an hour."""
    return float(min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF))


@dataclass(frozen=True)
class Claimed:
    """A delivery to attempt now."""

    id: int
    attempts: int
    retry_from: datetime  # the retry period runs from then: the event, or a retry by hand
    event_id: int
    type: str
    occurred_at: datetime
    tenant_id: int
    payload: str  # the event's data, JSON
    endpoint_id: int
    url: str
    secret: str
    enabled: bool

    def body(self) -> bytes:
        """The request's body: the envelope, around the data as stored."""
        return envelope(self.event_id, self.type, self.occurred_at, self.tenant_id, self.payload)


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    status: int | None  # the endpoint's HTTP status; None: no answer
    error: str | None  # None: delivered


class WebhookDeliverer:
    """The background component that sends pending deliveries."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        allowed: Sequence[addresses.Network] = (),
        retry_base: float = 10.0,
        retry_for: float = 86400.0,
        timeout: float = 10.0,
        concurrency: int = 100,
        relay: SmtpRelay | None = None,
        retention: float = RETENTION,
        dead_retention: float = DEAD_RETENTION,
        name: str = "webhook-deliveries",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._sessions = sessions
        self._allowed = list(allowed)
        self._retry_base = retry_base
        self._retry_for = retry_for
        self._timeout = timeout
        self._concurrency = concurrency
        self._relay = relay
        self._retention = retention
        self._dead_retention = dead_retention
        self._purge_at = 0.0  # monotonic time of the next purge
        self._name = name
        self._transport = transport
        self._pools: dict[Origin, httpx.AsyncClient] = {}
        self._used: dict[Origin, float] = {}  # monotonic time each pool was last used
        self._tls: ssl.SSLContext | None = None  # every pool's: loading the CAs takes long
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.delivered = 0
        self.failed = 0

    async def start(self) -> None:
        self._stopping = False
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        self._wake.set()
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Finish the deliveries under way (bounded by the timeout), then stop."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            done, _ = await asyncio.wait([task], timeout=self._timeout + 5)
            if not done:
                task.cancel()
                await asyncio.wait([task])
        pools, self._pools = self._pools, {}
        self._used.clear()
        for pool in pools.values():
            await pool.aclose()

    def _pool(self, origin: Origin) -> httpx.AsyncClient:
        """The origin's pool (one for all with a transport given: it pools itself)."""
        if self._transport is not None:
            origin = ("", "", 0, "")
        self._used[origin] = time.monotonic()
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = httpx.AsyncClient(
                timeout=self._timeout,
                follow_redirects=False,
                limits=httpx.Limits(max_connections=self._concurrency),
                verify=self._tls if self._tls is not None else True,
                transport=self._transport,
                headers={"User-Agent": USER_AGENT},
            )
        return pool

    async def _close_idle_pools(self) -> None:
        horizon = time.monotonic() - IDLE_POOL
        for origin in [origin for origin, used in self._used.items() if used < horizon]:
            del self._used[origin]
            await self._pools.pop(origin).aclose()

    def request(self) -> None:
        """Look for due deliveries now (a new event, a retry asked for)."""
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                sent = await self.deliver_due()
                if sent:
                    continue  # more may be due: the batch was full, or their turn came
                await self._disable_failing()
                await self._close_idle_pools()
                if time.monotonic() >= self._purge_at:
                    self._purge_at = time.monotonic() + PURGE_INTERVAL
                    await self.purge()
                wait = await self._next_due()
            except Exception:
                log.exception("webhooks: pass failed; tried again shortly")
                wait = POLL
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def purge(self) -> int:
        """Purge the events past retention that no pending or recently dead delivery needs
        (their other deliveries go with them), and the leases of streams gone: how many
        events."""
        async with self._sessions() as session:
            cutoff, dead_cutoff, bound = (
                await session.execute(
                    _PURGE_BOUND,
                    {"retention": self._retention, "dead_retention": self._dead_retention},
                )
            ).one()
        after, purged = 0, 0
        while True:
            async with self._sessions() as session, session.begin():
                last, gone = (
                    await session.execute(
                        _PURGE_EVENTS,
                        {
                            "after": after,
                            "bound": bound,
                            "cutoff": cutoff,
                            "dead_cutoff": dead_cutoff,
                            "limit": PURGE_BATCH,
                        },
                    )
                ).one()
            purged += int(gone)
            if last is None:
                break
            after = last
        async with self._sessions() as session, session.begin():
            await session.execute(_PURGE_LEASES)
        if purged:
            log.info("webhooks: %d events past retention purged", purged)
        return purged

    async def _next_due(self) -> float:
        async with self._sessions() as session:
            due = await session.scalar(_NEXT_DUE)
        if due is None:
            return POLL
        return min(max(float(due), 0.0), POLL)

    async def deliver_due(self) -> int:
        """Claim the due deliveries and attempt them: how many were attempted."""
        lease = self._timeout + 30
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(_CLAIM, {"limit": self._concurrency * 2, "lease": lease})
            ).all()
        if not rows:
            return 0
        claimed = [Claimed(*row) for row in rows]
        gate = asyncio.Semaphore(self._concurrency)

        async def attempt(delivery: Claimed) -> Outcome:
            async with gate:
                return await self._attempt(delivery)

        outcomes = await asyncio.gather(*(attempt(delivery) for delivery in claimed))
        await self._record(claimed, outcomes)
        return len(claimed)

    async def _attempt(self, delivery: Claimed) -> Outcome:
        if not delivery.enabled:
            return Outcome(delivery.id, None, "endpoint disabled")
        body = delivery.body()
        timestamp = int(time.time())
        try:
            target = addresses.parse(delivery.url)
            address = await addresses.resolve(target, self._allowed)
        except addresses.Refused as err:
            return Outcome(delivery.id, None, f"refused: {err}"[:ERROR_CHARS])
        host = f"[{address}]" if address.version == 6 else str(address)
        url = f"{target.scheme}://{host}:{target.port}{target.path}"
        default_port = 443 if target.scheme == "https" else 80
        headers = {
            "Host": target.host if target.port == default_port else f"{target.host}:{target.port}",
            "Content-Type": "application/json",
            signing.TIMESTAMP_HEADER: str(timestamp),
            signing.SIGNATURE_HEADER: signing.signature(delivery.secret, timestamp, body),
            signing.EVENT_ID_HEADER: str(delivery.event_id),
            signing.EVENT_TYPE_HEADER: delivery.type,
            signing.DELIVERY_ID_HEADER: str(delivery.id),
        }
        extensions: dict[str, Any] = {"sni_hostname": target.host}
        try:
            pool = self._pool((target.scheme, str(address), target.port, target.host))
            response = await pool.post(url, content=body, headers=headers, extensions=extensions)
        except httpx.HTTPError as err:
            return Outcome(delivery.id, None, f"{type(err).__name__}: {err}"[:ERROR_CHARS])
        if 200 <= response.status_code < 300:
            return Outcome(delivery.id, response.status_code, None)
        return Outcome(
            delivery.id,
            response.status_code,
            f"HTTP {response.status_code}: {response.text[:200]}"[:ERROR_CHARS],
        )

    async def _record(self, claimed: list[Claimed], outcomes: Sequence[Outcome]) -> None:
        by_id = {delivery.id: delivery for delivery in claimed}
        done = [outcome for outcome in outcomes if outcome.error is None]
        failed = [outcome for outcome in outcomes if outcome.error is not None]
        async with self._sessions() as session, session.begin():
            now = await session.scalar(text("SELECT now()"))
            assert now is not None  # noqa: S101
            if done:
                await session.execute(
                    _DELIVERED,
                    {
                        "ids": [o.delivery_id for o in done],
                        "statuses": [o.status for o in done],
                    },
                )
            if failed:
                horizon = timedelta(seconds=self._retry_for)
                await session.execute(
                    _FAILED,
                    {
                        "ids": [o.delivery_id for o in failed],
                        "statuses": [o.status for o in failed],
                        "errors": [o.error for o in failed],
                        "deads": [
                            not by_id[o.delivery_id].enabled
                            or now - by_id[o.delivery_id].retry_from >= horizon
                            for o in failed
                        ],
                        "delays": [
                            backoff(by_id[o.delivery_id].attempts, self._retry_base) for o in failed
                        ],
                    },
                )
        self.delivered += len(done)
        self.failed += len(failed)

    async def _disable_failing(self) -> None:
        async with self._sessions() as session, session.begin():
            rows = (await session.execute(_DISABLE, {"period": self._retry_for})).all()
        for endpoint_id, tenant_id, url, admins in rows:
            log.warning(
                "webhook endpoint disabled tenant=%d endpoint=%d url=%s",
                tenant_id,
                endpoint_id,
                url,
            )
            if self._relay is not None and admins:
                await deliver(
                    self._relay,
                    [self._disabled_mail(admin, endpoint_id, url) for admin in admins],
                    purpose="webhook-disabled",
                )

    def _disabled_mail(self, to: str, endpoint_id: int, url: str) -> EmailMessage:
        assert self._relay is not None  # noqa: S101
        hours = round(self._retry_for / 3600, 1)
        mail = EmailMessage()
        mail["From"] = self._relay.sender
        mail["To"] = to
        mail["Subject"] = f"Webhook endpoint {endpoint_id} disabled"
        mail.set_content(
            f"Every delivery to your webhook endpoint {endpoint_id} ({url}) failed for "
            f"{hours} hours: it is disabled, and its pending events are kept as dead "
            "deliveries with their last error (GET /api/v1/webhooks/"
            f"{endpoint_id}/deliveries?state=dead).\n\n"
            "Once the endpoint answers again, enable it (PATCH /api/v1/webhooks/"
            f'{endpoint_id} with {{"enabled": true}}) and retry the dead deliveries you need.\n'
        )
        return mail
