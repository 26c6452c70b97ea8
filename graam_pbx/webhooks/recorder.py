"""Call events that Asterisk announces on AMI, recorded as webhook events.

Queue events name the tenant and the queue in the queue's name (``t<tenant>-q<queue>``) and
the agent in the member's name (``agent-<user id>``):

- ``AgentCalled``: ``call.ringing``, an agent's phone rings with a queue call;
- ``AgentConnect``: ``call.answered``;
- ``AgentRingNoAnswer``: ``call.missed``, the agent's phone rang out unanswered;
- ``QueueCallerAbandon``: ``call.abandoned``, the caller hung up while waiting.

Each event's call is its ``Linkedid``: the key of the call's CDRs (``call.ended``, made by
Postgres when they are written), and the key that orders an endpoint's deliveries. Events are
written in Asterisk's order, in batches (one statement per batch), and only for tenants with
an enabled endpoint subscribed to the type, or whose events are streamed (the statement
filters: nothing is stored for others). Only the active worker hears AMI: what happens while
no worker listens is not announced live; the CDRs written after are.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami import EventBus, Message, Subscription
from graam_pbx.ami.protocol import event_time
from graam_pbx.webhooks.models import EventType

log = logging.getLogger(__name__)

_QUEUE = re.compile(r"^t(\d{1,18})-q(\d{1,18})$")
_MEMBER = re.compile(r"^agent-(\d{1,18})$")
TYPES = {
    "AgentCalled": EventType.CALL_RINGING,
    "AgentConnect": EventType.CALL_ANSWERED,
    "AgentRingNoAnswer": EventType.CALL_MISSED,
    "QueueCallerAbandon": EventType.CALL_ABANDONED,
}
BATCH = 500  # events per statement at most
QUEUED = 20_000  # events waiting at most (then dropped, logged)
_INSERT = text(
    """
    INSERT INTO webhook_events (tenant_id, type, ordering_key, occurred_at, payload)
    SELECT v.tenant_id, v.type, v.ordering_key, v.occurred_at, v.payload
    FROM unnest(CAST(:tenants AS bigint[]), CAST(:types AS text[]), CAST(:keys AS text[]),
                CAST(:times AS timestamptz[]), CAST(:payloads AS jsonb[]))
         WITH ORDINALITY AS v(tenant_id, type, ordering_key, occurred_at, payload, n)
    WHERE EXISTS (SELECT 1 FROM webhook_endpoints p WHERE p.tenant_id = v.tenant_id
                  AND p.enabled AND v.type = ANY (p.events))
       OR EXISTS (SELECT 1 FROM event_streams s WHERE s.tenant_id = v.tenant_id
                  AND s.expires_at > now())
    ORDER BY v.n
    """
)


class Recorded(NamedTuple):
    tenant_id: int
    type: EventType
    ordering_key: str
    occurred_at: datetime
    payload: dict[str, Any]


def _int(text_value: str) -> int | None:
    return int(text_value) if text_value.isdigit() else None


def _seconds(message: Mapping[str, str], header: str) -> int | None:
    return _int(message.get(header, ""))


def recorded(message: Message, received: datetime) -> Recorded | None:
    """The webhook event an AMI event makes; None for one of no tenant's queue."""
    kind = TYPES.get(message.event or "")
    queue = _QUEUE.match(message.get("Queue", ""))
    linkedid = message.get("Linkedid", "")
    if kind is None or queue is None or not linkedid:
        return None
    data: dict[str, Any] = {
        "call_id": linkedid,
        "channel_id": message.get("Uniqueid", ""),
        "queue_id": int(queue.group(2)),
        "caller": {
            "number": message.get("CallerIDNum", ""),
            "name": message.get("CallerIDName", ""),
        },
    }
    if kind is EventType.CALL_ABANDONED:
        data["position"] = _seconds(message, "Position")
        data["hold_seconds"] = _seconds(message, "HoldTime")
    else:
        member = _MEMBER.match(message.get("MemberName", ""))
        data["agent_user_id"] = int(member.group(1)) if member else None
        data["agent_channel_id"] = message.get("DestUniqueid", "")
        if kind is EventType.CALL_ANSWERED:
            data["hold_seconds"] = _seconds(message, "HoldTime")
            data["ring_seconds"] = _seconds(message, "RingTime")
        elif kind is EventType.CALL_MISSED:
            data["ring_seconds"] = _seconds(message, "RingTime")
    return Recorded(
        int(queue.group(1)), kind, f"call:{linkedid}", event_time(message, received), data
    )


class WebhookRecorder:
    """Hears the queue events on the bus and writes the webhook events they make."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        *,
        name: str = "webhook-events",
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self._name = name
        self._pending: list[Recorded] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._dropped = 0

    async def start(self) -> None:
        self._stopping = False
        self._subscription = self._bus.subscribe(self._name, list(TYPES), self._on_event)
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Write what was heard, then stop."""
        if self._subscription is not None:
            await self._bus.unsubscribe(self._subscription)
            self._subscription = None
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            await asyncio.wait([task])

    async def written(self) -> None:
        """Wait until every event heard so far is written (or given up)."""
        await self._idle.wait()

    def _on_event(self, message: Message) -> None:
        event = recorded(message, datetime.now(UTC))
        if event is None:
            return
        if len(self._pending) >= QUEUED:
            self._dropped += 1
            if self._dropped == 1:
                log.error("webhook events: %d waiting, dropping new ones", QUEUED)
            return
        self._pending.append(event)
        self._idle.clear()
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
                await self._write(batch)
            self._idle.set()
            if self._stopping:
                return

    async def _write(self, batch: list[Recorded]) -> None:
        values = {
            "tenants": [event.tenant_id for event in batch],
            "types": [event.type.value for event in batch],
            "keys": [event.ordering_key for event in batch],
            "times": [event.occurred_at for event in batch],
            "payloads": [json.dumps(event.payload) for event in batch],
        }
        for attempt in range(3):
            try:
                async with self._sessions() as session, session.begin():
                    await session.execute(_INSERT, values)
                return
            except Exception as err:
                log.warning("webhook events not written (try %d): %s", attempt + 1, err)
                await asyncio.sleep(0.5 * (attempt + 1))
        log.error("webhook events: a batch of %d given up", len(batch))
