"""Invoice e-mails through a real SMTP server (aiosmtpd on a loopback port): the month's
invoice arrives at the client's billing address with its Factur-X PDF (and the CSV of its
calls) attached; a relay that is down leaves it unsent until the next pass."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message

import facturx
import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.auth.principal import Principal, Role
from graam_pbx.billing import invoicing, mailing
from graam_pbx.billing.models import BillingAccount, Invoice, InvoiceDocument
from graam_pbx.billing.periods import previous_month
from graam_pbx.mail import SmtpRelay
from graam_pbx.sandbox.ports import free_port
from graam_pbx.settings import Settings
from tests.factories import make_operator, make_world
from tests.waiting import until

SENDER = "billing@operator.example"


class Inbox:
    def __init__(self) -> None:
        self.received: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(
            (list(envelope.rcpt_tos), message_from_bytes(envelope.original_content or b""))
        )
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("refused@"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def about(self, number: str) -> list[tuple[list[str], Message]]:
        return [(to, mail) for to, mail in self.received if mail["X-Graam-Invoice"] == number]


@pytest.fixture(scope="module")
async def inbox() -> AsyncIterator[tuple[Inbox, int]]:
    inbox = Inbox()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(inbox, hostname="smtp.graam.test"), "127.0.0.1", 0
    )
    port: int = server.sockets[0].getsockname()[1]
    yield inbox, port
    server.close()
    await server.wait_closed()


async def invoiced_tenant(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    *,
    locale: str,
    email: str,
) -> Invoice:
    """A new tenant with a billing account since last month, and last month's invoice."""
    world = await make_world(client, sessions)
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        session.add(
            BillingAccount(
                tenant_id=world.tenant_id,
                legal_name=f"Client {world.slug} SAS",
                address="5 quai des Tests\n69002 Lyon",
                country="FR",
                siren="552100554",
                vat_number="FR66552100554",
                tax_status="fr",
                billing_email=email,
                locale=locale,
                subscribed_on=previous_month(now.date()),
            )
        )
    await invoicing.invoice_due(sessions, Settings(), now, tenant_ids=[world.tenant_id])
    async with sessions() as session:
        invoice = await session.scalar(select(Invoice).where(Invoice.tenant_id == world.tenant_id))
    assert invoice is not None
    return invoice


async def emailed_at(
    sessions: async_sessionmaker[AsyncSession], invoice_id: int
) -> datetime | None:
    async with sessions() as session:
        return await session.scalar(select(Invoice.emailed_at).where(Invoice.id == invoice_id))


async def test_the_invoice_arrives_with_its_factur_x_pdf(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    inbox: tuple[Inbox, int],
) -> None:
    mails, port = inbox
    invoice = await invoiced_tenant(client, sessions, locale="fr", email="compta@lyon.example")
    relay = SmtpRelay("127.0.0.1", port, SENDER, timeout=10)
    now = datetime.now(UTC)

    sent = await mailing.send_pending(sessions, relay, Settings(), now)
    assert sent >= 1
    await until(lambda: _arrived(mails, invoice.number), "invoice e-mail", timeout=10)
    [(to, mail)] = mails.about(invoice.number)
    assert to == ["compta@lyon.example"]
    assert mail["From"] == SENDER
    assert mail["Subject"] == f"Votre facture {invoice.number}"
    body = mail.get_payload()[0].get_payload(decode=True).decode()  # type: ignore[index,union-attr]
    assert invoice.number in body and "Paiement à 30 jours date de facture" in body

    attachments = {part.get_filename(): part for part in mail.walk() if part.get_filename()}
    assert set(attachments) == {f"{invoice.number}.pdf", f"{invoice.number}-calls.csv"}
    pdf = attachments[f"{invoice.number}.pdf"].get_payload(decode=True)
    assert isinstance(pdf, bytes) and pdf.startswith(b"%PDF")
    name, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    assert name == "factur-x.xml"
    assert f"<ram:ID>{invoice.number}</ram:ID>".encode() in xml
    csv = attachments[f"{invoice.number}-calls.csv"].get_payload(decode=True)
    assert isinstance(csv, bytes) and csv.startswith(b"cdr_id,started_at,to_number")

    assert await emailed_at(sessions, invoice.id) == now
    async with sessions() as session:
        stored = await session.scalar(
            select(InvoiceDocument.content).where(
                InvoiceDocument.invoice_id == invoice.id, InvoiceDocument.format == "pdf"
            )
        )
    assert stored == pdf  # what was sent is what is kept

    # Sent once: the next pass sends nothing more for it.
    await mailing.send_pending(sessions, relay, Settings(), datetime.now(UTC))
    assert len(mails.about(invoice.number)) == 1


async def test_english_account_gets_an_english_mail(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    inbox: tuple[Inbox, int],
) -> None:
    mails, port = inbox
    invoice = await invoiced_tenant(client, sessions, locale="en", email="ap@client.example")
    relay = SmtpRelay("127.0.0.1", port, SENDER, timeout=10)
    await mailing.send_pending(sessions, relay, Settings(), datetime.now(UTC))
    await until(lambda: _arrived(mails, invoice.number), "invoice e-mail", timeout=10)
    [(to, mail)] = mails.about(invoice.number)
    assert to == ["ap@client.example"]
    assert mail["Subject"] == f"Your invoice {invoice.number}"


async def test_a_relay_that_is_down_leaves_the_invoice_unsent_until_the_next_pass(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    inbox: tuple[Inbox, int],
) -> None:
    mails, port = inbox
    invoice = await invoiced_tenant(client, sessions, locale="fr", email="down@client.example")

    # No relay configured: nothing sent, nothing marked.
    assert await mailing.send_pending(sessions, None, Settings(), datetime.now(UTC)) == 0
    assert await emailed_at(sessions, invoice.id) is None

    # Nothing listens on this port: the relay is down.
    down = SmtpRelay("127.0.0.1", free_port(), SENDER, timeout=5)
    assert await mailing.send_pending(sessions, down, Settings(), datetime.now(UTC)) == 0
    assert await emailed_at(sessions, invoice.id) is None
    assert mails.about(invoice.number) == []

    relay = SmtpRelay("127.0.0.1", port, SENDER, timeout=10)
    await mailing.send_pending(sessions, relay, Settings(), datetime.now(UTC))
    await until(lambda: _arrived(mails, invoice.number), "invoice e-mail", timeout=10)
    assert await emailed_at(sessions, invoice.id) is not None


async def _arrived(mails: Inbox, number: str) -> bool:
    return bool(mails.about(number))


async def test_a_credit_note_is_mailed_naming_the_invoice_it_credits(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    inbox: tuple[Inbox, int],
) -> None:
    mails, port = inbox
    invoice = await invoiced_tenant(client, sessions, locale="en", email="credit@client.example")
    operator = await make_operator(client, sessions)
    principal = Principal(operator.user_id, Role.OPERATOR, None, operator.email)
    async with sessions() as session, session.begin():
        note = await invoicing.credit_invoice(session, principal, invoice.id, "Wrong plan")
    relay = SmtpRelay("127.0.0.1", port, SENDER, timeout=10)
    await mailing.send_pending(sessions, relay, Settings(), datetime.now(UTC))
    await until(lambda: _arrived(mails, note.number), "credit note e-mail", timeout=10)
    [(to, mail)] = mails.about(note.number)
    assert to == ["credit@client.example"]
    assert mail["Subject"] == f"Your credit note {note.number}"
    attachments = {part.get_filename(): part for part in mail.walk() if part.get_filename()}
    assert set(attachments) == {f"{note.number}.pdf"}
    pdf = attachments[f"{note.number}.pdf"].get_payload(decode=True)
    assert isinstance(pdf, bytes)
    _, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    assert b"<ram:TypeCode>381</ram:TypeCode>" in xml
    assert f"<ram:IssuerAssignedID>{invoice.number}</ram:IssuerAssignedID>".encode() in xml


async def test_a_refused_address_after_an_outage_holds_back_no_other_invoice(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    inbox: tuple[Inbox, int],
) -> None:
    mails, port = inbox
    refused = await invoiced_tenant(client, sessions, locale="fr", email="refused@client.example")
    invoice = await invoiced_tenant(client, sessions, locale="fr", email="after@client.example")
    assert refused.id < invoice.id  # the refused one comes first in every pass

    down = SmtpRelay("127.0.0.1", free_port(), SENDER, timeout=5)
    assert await mailing.send_pending(sessions, down, Settings(), datetime.now(UTC)) == 0

    # The relay is back; it refuses the first address: the next invoice still goes.
    relay = SmtpRelay("127.0.0.1", port, SENDER, timeout=10)
    assert await mailing.send_pending(sessions, relay, Settings(), datetime.now(UTC)) >= 1
    await until(lambda: _arrived(mails, invoice.number), "invoice e-mail", timeout=10)
    assert await emailed_at(sessions, invoice.id) is not None
    assert await emailed_at(sessions, refused.id) is None  # retried at the next pass
    assert mails.about(refused.number) == []
