"""E-mails every new voicemail message, with its recording, to its box's address.

Asterisk announces a box whose counts changed with an AMI ``MessageWaiting`` event (``Mailbox:
820@t12``); the notifier then reads that box's folders in the spool and mails each message it
has not sent yet. Every ``voicemail_scan_interval``, after every AMI reconnect and at start it
looks at every box with an address: a missed event or a failed send is caught up there, as
long as the message is younger than ``voicemail_mail_max_age``. Postgres remembers each
message sent (``voicemail_notifications``); the row is locked while its e-mail is sent, so two
processes never send the same message, and a retry never sends a message twice.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami import EventBus
from graam_pbx.mail import SmtpRelay, send
from graam_pbx.metrics import VOICEMAIL_EMAILS, VOICEMAIL_RELAY_CONFIGURED
from graam_pbx.voicemail.boxes import BoxKey, BoxPasses
from graam_pbx.voicemail.mail import BoxAddress, compose
from graam_pbx.voicemail.models import VoicemailBox, VoicemailNotification
from graam_pbx.voicemail.spool import StoredMessage, VoicemailSpool

log = logging.getLogger(__name__)

NO_RELAY_LOG = (
    "voicemail e-mail: no SMTP relay configured (set GRAAM_SMTP_HOST); "
    "messages stay in their boxes (API) and are not e-mailed"
)


class VoicemailNotifier(BoxPasses):
    """The background component that mails new voicemail messages through the SMTP relay."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        spool: VoicemailSpool | None,
        relay: SmtpRelay | None,
        *,
        scan_interval: float = 60.0,
        max_age: float = 86400.0,
        name: str = "voicemail-notifier",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(bus, name, scan_interval)
        self._sessions = sessions
        self._spool = spool
        self._relay = relay
        self._max_age = max_age
        self._clock = clock
        self._failing = False

    def _ready(self) -> bool:
        VOICEMAIL_RELAY_CONFIGURED.set(0 if self._relay is None else 1)
        if self._relay is None:
            log.warning(NO_RELAY_LOG)
            return False
        if self._spool is None:
            log.warning(
                "voicemail e-mail: Asterisk's voicemail spool is not known here "
                "(set GRAAM_VOICEMAIL_SPOOL_DIR); messages are not e-mailed"
            )
            return False
        log.info(
            "voicemail e-mail: sending through %s from %s (spool %s)",
            self._relay.describe(),
            self._relay.sender,
            self._spool.root,
        )
        return True

    def _stop_grace(self) -> float:
        """The e-mail being sent finishes (bounded by the relay's timeout)."""
        return (self._relay.timeout if self._relay else 0) + 5

    async def _pass(self, woken: bool) -> None:
        # What this pass wanted and failed is looked at again at the next scan.
        await self._pass_boxes(self._asked(woken))

    def _pass_failed(self, error: Exception) -> None:
        self._broken(f"{type(error).__name__}: {error}")

    async def _pass_boxes(self, boxes: set[BoxKey] | None) -> None:
        assert self._spool is not None  # noqa: S101 - start() runs no pass without one
        statement = select(
            VoicemailBox.id,
            VoicemailBox.tenant_id,
            VoicemailBox.number,
            VoicemailBox.name,
            VoicemailBox.email,
        ).where(VoicemailBox.email.is_not(None))
        if boxes is not None:
            if not boxes:
                return
            statement = statement.where(
                tuple_(VoicemailBox.tenant_id, VoicemailBox.number).in_(list(boxes))
            )
        async with self._sessions() as session:
            rows = (await session.execute(statement)).all()
        cutoff = self._clock() - self._max_age
        for box_id, tenant_id, number, name, email in rows:
            if self._stopping:
                return
            if not email:
                continue
            box = BoxAddress(
                tenant_id=tenant_id, box_id=box_id, number=number, name=name, email=email
            )
            messages = [
                message
                for message in await self._spool.messages(tenant_id, number)
                if message.info.received_at.timestamp() >= cutoff
            ]
            if not messages:
                continue
            sent = await self._already_sent(box_id, [m.msg_id for m in messages])
            for message in messages:
                if message.msg_id not in sent and not self._stopping:
                    await self._deliver(box, message)

    async def _already_sent(self, box_id: int, msg_ids: list[str]) -> set[str]:
        async with self._sessions() as session:
            result = await session.execute(
                select(VoicemailNotification.msg_id).where(
                    VoicemailNotification.box_id == box_id,
                    VoicemailNotification.msg_id.in_(msg_ids),
                    VoicemailNotification.status == "sent",
                )
            )
            return set(result.scalars())

    async def _deliver(self, box: BoxAddress, message: StoredMessage) -> None:
        assert self._relay is not None and self._spool is not None  # noqa: S101
        async with self._sessions() as session, session.begin():
            await session.execute(
                insert(VoicemailNotification)
                .values(
                    tenant_id=box.tenant_id,
                    box_id=box.box_id,
                    msg_id=message.msg_id,
                    recipient=box.email,
                    status="pending",
                    attempts=0,
                )
                .on_conflict_do_nothing(index_elements=["box_id", "msg_id"])
            )
            # Locked while the e-mail is sent: another process skips it, and a crash before
            # the commit leaves it unsent (retried) rather than marked sent.
            row = (
                await session.execute(
                    select(VoicemailNotification)
                    .where(
                        VoicemailNotification.box_id == box.box_id,
                        VoicemailNotification.msg_id == message.msg_id,
                        VoicemailNotification.status != "sent",
                    )
                    .with_for_update(skip_locked=True)
                )
            ).scalar_one_or_none()
            if row is None:
                return  # sent meanwhile, or being sent by another process
            audio = await self._spool.audio(message)
            if audio is None:
                return  # removed or renumbered since the listing: the next pass sees it
            row.attempts += 1
            row.recipient = box.email
            try:
                await asyncio.to_thread(
                    send, self._relay, compose(self._relay, box, message.info, audio)
                )
            except (OSError, smtplib.SMTPException) as err:
                row.status = "failed"
                row.last_error = f"{type(err).__name__}: {err}"[:500]
                VOICEMAIL_EMAILS.labels(outcome="failed").inc()
                self._broken(row.last_error)
                return
            row.status = "sent"
            row.last_error = None
            row.sent_at = datetime.now(UTC)
        VOICEMAIL_EMAILS.labels(outcome="sent").inc()
        log.info(
            "voicemail e-mail sent tenant=%s box=%s msg_id=%s",
            box.tenant_id,
            box.number,
            message.msg_id,
        )
        if self._failing:
            self._failing = False
            log.info("voicemail e-mail: the relay %s accepts e-mails again", self._relay.describe())

    def _broken(self, reason: str) -> None:
        # Logged once when sending breaks, and once when it recovers, not at every retry.
        if not self._failing:
            self._failing = True
            log.warning(
                "voicemail e-mail failed, retried every %gs: %s", self._scan_interval, reason
            )
