"""Voicemail messages announced to the tenants' webhooks (``voicemail.left``), once each.

Asterisk announces a box whose counts changed (AMI ``MessageWaiting``); the box's new
messages (``INBOX``, ``Urgent``) are then read from the spool and each is recorded as an event
with links to the message and its audio in the API. A message is announced once (the events
are unique per tenant and message), only to endpoints that existed when it was left (and to
streams of the tenant's events connected since before it), and only while it is recent
(``max_age``): an endpoint made later is not sent the day's old messages, and a message is
not announced again after its event was purged. Every ``scan_interval``, after every AMI
reconnect and at start, the boxes of every tenant with a subscribed endpoint (or a stream) are
looked at: a missed event is caught up there.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami import EventBus
from graam_pbx.voicemail.boxes import BoxPasses
from graam_pbx.voicemail.spool import NEW_FOLDERS, StoredMessage, VoicemailSpool

log = logging.getLogger(__name__)

_SUBSCRIBED_BOXES = text(
    """
    SELECT b.id, b.tenant_id, b.number FROM voicemail_boxes b
    WHERE EXISTS (SELECT 1 FROM webhook_endpoints p WHERE p.tenant_id = b.tenant_id
                  AND p.enabled AND 'voicemail.left' = ANY (p.events))
       OR EXISTS (SELECT 1 FROM event_streams s WHERE s.tenant_id = b.tenant_id
                  AND s.expires_at > now())
    """
)
_INSERT = text(
    """
    INSERT INTO webhook_events (tenant_id, type, ordering_key, occurred_at, payload)
    SELECT :tenant, 'voicemail.left', :key, :at, CAST(:payload AS jsonb)
    WHERE EXISTS (SELECT 1 FROM webhook_endpoints p WHERE p.tenant_id = :tenant AND p.enabled
                  AND 'voicemail.left' = ANY (p.events) AND p.created_at <= :at)
       OR EXISTS (SELECT 1 FROM event_streams s WHERE s.tenant_id = :tenant
                  AND s.expires_at > now() AND s.since <= :at)
    ON CONFLICT (tenant_id, ordering_key) WHERE type = 'voicemail.left' DO NOTHING
    """
)


def event_data(box_id: int, box_number: str, message: StoredMessage) -> dict[str, Any]:
    """A message's ``voicemail.left`` data, with its links in the API."""
    info = message.info
    link = f"/api/v1/voicemail-boxes/{box_id}/messages/{info.msg_id}"
    return {
        "box_id": box_id,
        "box_number": box_number,
        "msg_id": info.msg_id,
        "caller": {"number": info.caller_number, "name": info.caller_name},
        "duration_seconds": info.duration,
        "received_at": info.received_at.isoformat(),
        "urgent": info.urgent,
        "links": {"message": link, "audio": f"{link}/audio"},
    }


class VoicemailEvents(BoxPasses):
    """The background component that records ``voicemail.left`` events."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        spool: VoicemailSpool | None,
        *,
        scan_interval: float = 60.0,
        max_age: float = 86400.0,
        name: str = "voicemail-events",
    ) -> None:
        super().__init__(bus, name, scan_interval)
        self._sessions = sessions
        self._spool = spool
        self._max_age = timedelta(seconds=max_age)

    def _ready(self) -> bool:
        if self._spool is None:
            log.info("voicemail events: Asterisk's voicemail spool is not known here")
            return False
        return True

    async def _pass(self, woken: bool) -> None:
        wanted = self._asked(woken)
        async with self._sessions() as session:
            rows = (await session.execute(_SUBSCRIBED_BOXES)).all()
        for box_id, tenant_id, number in rows:
            if wanted is None or (tenant_id, number) in wanted:
                await self._announce(box_id, tenant_id, number)

    async def _announce(self, box_id: int, tenant_id: int, number: str) -> None:
        assert self._spool is not None  # noqa: S101 - _ready
        messages = await self._spool.messages(tenant_id, number, tuple(NEW_FOLDERS))
        oldest = datetime.now(UTC) - self._max_age
        fresh = sorted(
            (m for m in messages if m.info.received_at >= oldest),
            key=lambda m: m.info.received_at,
        )
        if not fresh:
            return
        async with self._sessions() as session, session.begin():
            for message in fresh:
                await session.execute(
                    _INSERT,
                    {
                        "tenant": tenant_id,
                        "key": f"voicemail:{box_id}:{message.msg_id}",
                        "at": message.info.received_at,
                        "payload": json.dumps(event_data(box_id, number, message)),
                    },
                )
