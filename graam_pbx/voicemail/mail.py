"""The e-mail of a new voicemail message, with its WAV, sent through the configured relay.

The control plane sends it rather than Asterisk (``mailcmd``): Asterisk's host needs no mail
transfer agent, a relay that is down is retried, and what was sent is remembered in Postgres.
The stdlib's blocking ``smtplib`` runs in a thread: one short conversation per message needs
no asynchronous client.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime

from graam_pbx.settings import Settings
from graam_pbx.voicemail.spool import MessageInfo


@dataclass(frozen=True)
class SmtpRelay:
    """Where and how voicemail e-mails leave."""

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


@dataclass(frozen=True)
class BoxAddress:
    """The box a message was left in, as the e-mail names it."""

    tenant_id: int
    box_id: int
    number: str
    name: str
    email: str


def compose(relay: SmtpRelay, box: BoxAddress, message: MessageInfo, audio: bytes) -> EmailMessage:
    """One e-mail for one message: who called, when, how long, and the recording."""
    caller = message.caller_number or message.caller_name or "an unknown caller"
    if message.caller_name and message.caller_number:
        caller = f"{message.caller_name} ({message.caller_number})"
    mail = EmailMessage()
    mail["From"] = relay.sender
    mail["To"] = box.email
    mail["Subject"] = f"New voicemail from {caller} in box {box.number} ({box.name})"
    mail["Date"] = format_datetime(message.received_at)
    # Stable per message: a receiving system can recognise a repeat after a lost answer.
    domain = relay.sender.rpartition("@")[2] or "graam-pbx"
    mail["Message-ID"] = f"<vm.t{box.tenant_id}.b{box.box_id}.{message.msg_id}@{domain}>"
    mail["X-Graam-Voicemail-Id"] = message.msg_id
    minutes, seconds = divmod(message.duration, 60)
    mail.set_content(
        f"Box {box.number} ({box.name}) has a new message.\n\n"
        f"From:     {caller}\n"
        f"Received: {message.received_at.isoformat()}\n"
        f"Length:   {minutes}:{seconds:02d}\n\n"
        "The recording is attached.\n"
    )
    stamp = message.received_at.strftime("%Y%m%d-%H%M%S")
    mail.add_attachment(
        audio, maintype="audio", subtype="wav", filename=f"voicemail-{box.number}-{stamp}.wav"
    )
    return mail


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
