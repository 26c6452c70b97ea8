"""The e-mail of a new voicemail message, with its WAV, sent through the configured relay.

The control plane sends it rather than Asterisk (``mailcmd``): Asterisk's host needs no mail
transfer agent, a relay that is down is retried, and what was sent is remembered in Postgres.
The relay and how a message is handed to it are the control plane's one way to send mail
(``graam_pbx.mail``); this module only writes the voicemail e-mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime

from graam_pbx.mail import SmtpRelay, send
from graam_pbx.voicemail.spool import MessageInfo

# The relay's names, where the voicemail code and its tests have always found them.
__all__ = ["BoxAddress", "SmtpRelay", "compose", "send"]


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
