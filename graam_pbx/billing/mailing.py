"""Invoice e-mails: each invoice and credit note sent once to its client's billing address,
the Factur-X PDF attached (and the CSV of its calls), through the control plane's relay.

``emailed_at`` is set in the invoice's own transaction only once the relay has accepted the
message: a relay that is down leaves it NULL, and the next pass sends it.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx import mail
from graam_pbx.billing import documents
from graam_pbx.billing.models import BillingAccount, Invoice
from graam_pbx.mail import SmtpRelay
from graam_pbx.settings import Settings

log = logging.getLogger(__name__)

# What became of one invoice's e-mail; only "relay_down" holds back the rest of a pass.
Outcome = Literal["sent", "skipped", "refused", "relay_down"]


class _Health:
    """Log once when no relay is configured, once when sending breaks and once when it heals."""

    no_relay_said = False
    failing = False


def invoice_mail(
    view: documents.InvoiceView,
    *,
    sender: str,
    to: str,
    locale: str,
    pdf: bytes,
    calls_csv: bytes | None,
    now: datetime,
) -> EmailMessage:
    """The e-mail that sends one invoice: its text in ``locale``, its PDF (and CSV) attached."""
    subject, body = documents.render_mail(view, locale)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["X-Graam-Invoice"] = view.number
    message.set_content(body)
    message.add_attachment(
        pdf, maintype="application", subtype="pdf", filename=f"{view.number}.pdf"
    )
    if calls_csv is not None:
        message.add_attachment(
            calls_csv, maintype="text", subtype="csv", filename=f"{view.number}-calls.csv"
        )
    return message


async def _send_one(
    session: AsyncSession, relay: SmtpRelay, invoice_id: int, now: datetime
) -> Outcome:
    """Send one invoice if still unsent (its row locked meanwhile); "sent" once accepted."""
    invoice = await session.scalar(
        select(Invoice)
        .where(Invoice.id == invoice_id, Invoice.emailed_at.is_(None))
        .with_for_update(skip_locked=True)
    )
    if invoice is None:  # sent meanwhile, or another pass is sending it
        return "skipped"
    account = await session.get(BillingAccount, invoice.tenant_id)
    # The address and language of the account today (the client may have changed them
    # since), the invoice's snapshot when the account is gone.
    to = account.billing_email if account else str(invoice.buyer.get("billing_email") or "")
    locale = account.locale if account else invoice.locale
    if not to:
        log.warning("invoice not e-mailed: no billing address invoice=%s", invoice.number)
        return "skipped"
    view = await documents.invoice_view(session, invoice.id)
    pdf = await documents.stored_document(session, invoice.id, "pdf")
    calls = (
        await documents.stored_document(session, invoice.id, "csv")
        if invoice.kind == "invoice"
        else None
    )
    message = invoice_mail(
        view, sender=relay.sender, to=to, locale=locale, pdf=pdf, calls_csv=calls, now=now
    )
    try:
        await asyncio.to_thread(mail.send, relay, message)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError) as err:
        # This message refused (its address, its size): the others may still go.
        log.warning(
            "invoice e-mail refused relay=%s invoice=%s to=%s error=%s",
            relay.describe(),
            invoice.number,
            to,
            err,
        )
        return "refused"
    except (OSError, smtplib.SMTPException) as err:
        if not _Health.failing:
            log.warning(
                "invoice e-mails failing relay=%s invoice=%s error=%s",
                relay.describe(),
                invoice.number,
                err,
            )
        _Health.failing = True
        return "relay_down"  # the stored documents are kept; emailed_at stays NULL: next pass
    if _Health.failing:
        log.info("invoice e-mails sent again relay=%s", relay.describe())
        _Health.failing = False
    invoice.emailed_at = now
    await session.flush()
    log.info("invoice e-mailed tenant=%s invoice=%s to=%s", invoice.tenant_id, invoice.number, to)
    return "sent"


async def send_pending(
    session_factory: async_sessionmaker[AsyncSession],
    relay: SmtpRelay | None,
    settings: Settings,
    now: datetime,
) -> int:
    """E-mail every invoice and credit note not yet sent; how many the relay accepted."""
    if relay is None:
        if not _Health.no_relay_said:
            log.warning("invoice e-mails not sent: no SMTP relay configured (GRAAM_SMTP_HOST)")
            _Health.no_relay_said = True
        return 0
    async with session_factory() as session:
        pending = (
            await session.scalars(
                select(Invoice.id).where(Invoice.emailed_at.is_(None)).order_by(Invoice.id)
            )
        ).all()
    sent = 0
    for invoice_id in pending:
        # Each invoice its own transaction: one that fails never holds back the others.
        try:
            async with session_factory() as session, session.begin():
                outcome = await _send_one(session, relay, invoice_id, now)
        except Exception:
            # A document that cannot be made is a bug to fix: it never holds back the others.
            log.exception("invoice e-mail not made invoice_id=%s", invoice_id)
            continue
        if outcome == "sent":
            sent += 1
        elif outcome == "relay_down":
            # Only an outage in this pass stops it (not one refused message while the relay
            # is still marked failing from an earlier pass): the rest wait for the next pass.
            break
    return sent
