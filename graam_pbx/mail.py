"""The SMTP relay every e-mail of the control plane leaves through (voicemail, support).

One relay, configured by ``GRAAM_SMTP_*``, and one way to hand it a message: ``send``. The
stdlib's blocking ``smtplib`` runs in a thread (``deliver``): one short conversation per
message needs no asynchronous client.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage

from graam_pbx.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpRelay:
    """Where and how the control plane's e-mails leave."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log line
    starttls: bool = False
    timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpRelay | None:
        """The configured relay, or None when ``GRAAM_SMTP_HOST`` is unset."""
        if not settings.smtp_host:
            return None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls,
            timeout=settings.smtp_timeout,
        )

    def describe(self) -> str:
        return f"{self.host}:{self.port}{' (STARTTLS)' if self.starttls else ''}"


def send(relay: SmtpRelay, mail: EmailMessage) -> None:
    """Hand ``mail`` to the relay (blocking: run it in a thread); raises on any refusal."""
    with smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout) as smtp:
        smtp.ehlo()
        if relay.starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if relay.username:
            smtp.login(relay.username, relay.password or "")
        refused = smtp.send_message(mail)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)


async def deliver(relay: SmtpRelay, mails: list[EmailMessage], *, purpose: str) -> int:
    """Send each of ``mails`` (in a thread), logging, never raising, a failure; how many left.

    For notifications whose cause is already committed: a relay that is down loses the
    e-mail, never the change that it announces.
    """
    sent = 0
    for mail in mails:
        try:
            await asyncio.to_thread(send, relay, mail)
            sent += 1
        except (OSError, smtplib.SMTPException) as err:
            log.warning(
                "e-mail not sent purpose=%s relay=%s to=%s subject=%r error=%s",
                purpose,
                relay.describe(),
                mail["To"],
                mail["Subject"],
                err,
            )
    return sent
