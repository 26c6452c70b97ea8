"""The e-mails of support requests: to the operator's support address when a client files
or writes, to the requester when the operator answers.

Sent after the commit (the routes hand ``dispatch`` to the response's background): a relay
that is down loses an e-mail, logged, never the request nor the message it announces.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from graam_pbx.mail import SmtpRelay, deliver
from graam_pbx.settings import Settings

log = logging.getLogger(__name__)

_said: set[str] = set()  # what was already logged once in this process


@dataclass(frozen=True)
class Notification:
    """Who is told of one message of a request, and what."""

    to_operator: bool  # else to the requester
    filed: bool  # the request's first message
    requester_email: str
    tenant_name: str
    request_id: int
    subject: str
    priority: str
    due_at: datetime
    author: str
    body: str


def _once(key: str, message: str) -> None:
    if key not in _said:
        _said.add(key)
        log.warning(message)


def compose(relay: SmtpRelay, notification: Notification, recipient: str) -> EmailMessage:
    """The e-mail of one notification (plain text; the console link is relative)."""
    n = notification
    mail = EmailMessage()
    mail["From"] = relay.sender
    mail["To"] = recipient
    if n.to_operator:
        what = "New support request" if n.filed else "New message on support request"
        mail["Subject"] = f"[{n.priority}] {what} #{n.request_id} from {n.tenant_name}: {n.subject}"
        intro = (
            f"{n.author} ({n.tenant_name}) "
            + ("filed a support request" if n.filed else "wrote on a support request")
            + f" of {n.priority} priority, due {n.due_at.isoformat(timespec='minutes')}."
        )
        link = f"/operator/support/{n.request_id}"
    else:
        mail["Subject"] = f"Answer to your support request #{n.request_id}: {n.subject}"
        intro = f"The operator's support answered your request #{n.request_id}."
        link = f"/support/{n.request_id}"
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = make_msgid(domain=relay.sender.rpartition("@")[2] or "graam-pbx")
    mail["X-Graam-Support-Request"] = str(n.request_id)
    mail.set_content(f"{intro}\n\n{n.body}\n\nIn the console: {link}\n")
    return mail


async def dispatch(settings: Settings, notification: Notification) -> None:
    """Send the notification's e-mail if a relay and a recipient are configured; never raises."""
    relay = SmtpRelay.from_settings(settings)
    if relay is None:
        _once("relay", "support e-mail: no SMTP relay configured (set GRAAM_SMTP_HOST); none sent")
        return
    if notification.to_operator:
        recipient = settings.support_email
        if not recipient:
            _once(
                "support-address",
                "support e-mail: GRAAM_SUPPORT_EMAIL is unset; the operator is not e-mailed "
                "of new requests and messages (they are in the console's support queue)",
            )
            return
    else:
        recipient = notification.requester_email
    await deliver(relay, [compose(relay, notification, recipient)], purpose="support")
