"""Voicemail messages left by a real call: the API lists, serves, marks read and deletes them,
and the box's e-mail leaves through a real SMTP server (aiosmtpd) with the recording attached.

Asterisk is the judge: after "read" its own counts (``MailboxCount``, ``MessageWaiting``,
``voicemail show users``) say the message is old; after "delete" the box is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import uuid
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message as EmailMessage
from typing import Any

import httpx
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from graam_pbx.db import session_factory
from graam_pbx.voicemail.mail import SmtpRelay
from graam_pbx.voicemail.models import VoicemailNotification
from graam_pbx.voicemail.spool import VoicemailSpool
from graam_pbx.voicemail.worker import VoicemailNotifier
from tests.conftest import Asterisk, RunningApp
from tests.e2e.sipp import SippPool
from tests.e2e.test_calls import (
    CALLER,
    CARRIER_IP,
    Sessions,
    ami_events,
    created,
    leave_message,
    new_number,
    new_trunk,
    route_number,
)
from tests.factories import TenantWorld, make_world

MESSAGES = "/api/v1/voicemail-boxes/{box}/messages"


@dataclass
class Inbox:
    """What a real SMTP server received, as the test's own loop sees it."""

    mails: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.mails.append((envelope, message_from_bytes(content)))
        self.arrived.set()
        return "250 OK"

    def to(self, address: str) -> list[tuple[Envelope, EmailMessage]]:
        # Other tests' boxes have addresses too, and their messages are recent: the notifier
        # rightly mails them as well.
        return [(envelope, mail) for envelope, mail in self.mails if mail["To"] == address]

    async def wait(self, address: str, count: int = 1, timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while len(self.to(address)) < count:
                self.arrived.clear()
                await self.arrived.wait()


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def smtp_server(port: int) -> AsyncIterator[Inbox]:
    """A real SMTP server (aiosmtpd) on a loopback port, in this loop."""
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(inbox, hostname="smtp.graam.test"), "127.0.0.1", port
    )
    try:
        yield inbox
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def notifier(
    pbx: RunningApp, asterisk: Asterisk, port: int, *, scan_interval: float
) -> AsyncIterator[VoicemailNotifier]:
    """A notifier with a relay, beside the app's own (which has none)."""
    component = VoicemailNotifier(
        session_factory(pbx.runtime.engine),
        pbx.runtime.bus,
        VoicemailSpool(asterisk.sandbox.spool_dir / "voicemail"),
        SmtpRelay(host="127.0.0.1", port=port, sender="voicemail@pbx.graam.test", timeout=5),
        scan_interval=scan_interval,
        name=f"e2e-voicemail-{uuid.uuid4().hex}",
    )
    await component.start()
    try:
        yield component
    finally:
        await component.stop()


async def box_with_mail(
    client: httpx.AsyncClient, world: TenantWorld, number: str
) -> dict[str, Any]:
    body = {
        "number": number,
        "name": "After hours",
        "pin": "4711",
        "email": f"support@{world.slug}.example",
    }
    return await created(
        await client.post("/api/v1/voicemail-boxes", headers=world.admin.headers, json=body)
    )


async def routed_box(
    client: httpx.AsyncClient, world: TenantWorld, pbx: RunningApp, number: str
) -> tuple[dict[str, Any], str]:
    """A box with an address, reached by a new number from the carrier; (box, DID)."""
    box = await box_with_mail(client, world, number)
    did = await new_number(client, world)
    await route_number(client, world, did, {"type": "voicemail", "id": box["id"]})
    await new_trunk(client, world, CARRIER_IP)
    assert pbx.runtime.applier is not None
    await pbx.runtime.applier.settled()
    return box, did["e164"]


async def mailbox_count(
    pbx: RunningApp, world: TenantWorld, box: dict[str, Any]
) -> tuple[int, int]:
    """(new, old) as Asterisk counts them."""
    response = await pbx.runtime.ami.action(
        "MailboxCount", {"Mailbox": f"{box['number']}@t{world.tenant_id}"}
    )
    return int(response["NewMessages"]), int(response["OldMessages"])


async def shown_new_messages(pbx: RunningApp, world: TenantWorld, box: dict[str, Any]) -> int:
    """NewMsg of the box in ``voicemail show users for t<id>``."""
    output = await pbx.runtime.ami.command(f"voicemail show users for t{world.tenant_id}")
    (line,) = [
        line
        for line in output.splitlines()
        if line.split()[:2] == [f"t{world.tenant_id}", box["number"]]
    ]
    return int(line.split()[-1])


def wav_frames(audio: bytes) -> int:
    with wave.open(io.BytesIO(audio)) as recording:
        assert recording.getnchannels() == 1
        assert recording.getframerate() == 8000
        assert recording.getsampwidth() == 2
        return recording.getnframes()


async def test_a_message_is_mailed_listed_downloaded_marked_read_and_deleted(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    asterisk: Asterisk,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    box, did = await routed_box(client, world, pbx, "830")
    admin = world.admin.headers
    messages_url = MESSAGES.format(box=box["id"])
    port = free_loopback_port()

    # A long scan interval: the e-mail leaves because Asterisk announced the message.
    async with (
        smtp_server(port) as inbox,
        notifier(pbx, asterisk, port, scan_interval=600) as mailer,
    ):
        message_file = await leave_message(pbx, sipp, asterisk, world, box, did)
        await inbox.wait(box["email"])

        # ---- listed
        listed = await client.get(messages_url, headers=admin)
        assert listed.status_code == 200, listed.text
        (item,) = listed.json()["items"]
        assert item["folder"] == "INBOX" and item["read"] is False, item
        assert item["caller_number"] == CALLER, item
        assert item["duration"] >= 1, item
        assert item["box_id"] == box["id"]
        assert f"msg_id={item['id']}" in message_file.read_text()
        msg_url = f"{messages_url}/{item['id']}"
        one = await client.get(msg_url, headers=world.supervisor.headers)
        assert one.status_code == 200 and one.json() == item, one.text

        # ---- downloaded: a real WAV with the caller's voice in it
        download = await client.get(f"{msg_url}/audio", headers=admin)
        assert download.status_code == 200, download.text
        assert download.headers["content-type"] == "audio/wav"
        assert wav_frames(download.content) > 8000  # more than a second of 8 kHz audio

        # ---- the e-mail: one, to the box's address, with the same recording attached
        ((envelope, mail),) = inbox.to(box["email"])
        assert envelope.rcpt_tos == [box["email"]]
        assert mail["To"] == box["email"]
        assert CALLER in mail["Subject"] and "830" in mail["Subject"], mail["Subject"]
        (attachment,) = [part for part in mail.walk() if part.get_filename()]
        assert attachment.get_content_type() == "audio/wav"
        assert attachment.get_payload(decode=True) == download.content

        assert await mailbox_count(pbx, world, box) == (1, 0)
        assert await shown_new_messages(pbx, world, box) == 1

        # ---- marked read: Asterisk moves it to Old and tells the phones
        async with ami_events(pbx, "MessageWaiting") as events:
            read = await client.post(f"{msg_url}/read", headers=world.supervisor.headers)
            assert read.status_code == 200, read.text
            assert read.json()["folder"] == "Old" and read.json()["read"] is True, read.json()
            assert read.json()["id"] == item["id"]
            mwi = await events.wait_for(
                lambda e: e.get("Mailbox") == f"830@t{world.tenant_id}" and e.get("New") == "0"
            )
        assert mwi.get("Old") == "1", mwi
        folder = message_file.parent.parent
        assert not list((folder / "INBOX").glob("msg*"))
        assert f"msg_id={item['id']}" in (folder / "Old" / "msg0000.txt").read_text()
        assert await mailbox_count(pbx, world, box) == (0, 1)
        assert await shown_new_messages(pbx, world, box) == 0
        again = await client.post(f"{msg_url}/read", headers=admin)
        assert again.status_code == 200 and again.json()["folder"] == "Old"

        # No second e-mail, whatever the notifier looks at again.
        passes = mailer.passes
        mailer.request(None)
        await mailer.wait_passes(passes + 1)
        assert len(inbox.to(box["email"])) == 1

        # ---- deleted (admins only)
        refused = await client.delete(msg_url, headers=world.supervisor.headers)
        assert refused.status_code == 403, refused.text
        deleted = await client.delete(msg_url, headers=admin)
        assert deleted.status_code == 204, deleted.text
        assert (await client.get(messages_url, headers=admin)).json()["items"] == []
        assert not list((folder / "Old").glob("msg*"))
        assert await mailbox_count(pbx, world, box) == (0, 0)
        gone = await client.get(msg_url, headers=admin)
        assert gone.status_code == 404 and gone.json()["error_id"] == "not-found"


async def test_messages_are_the_tenants_own(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    asterisk: Asterisk,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    box, did = await routed_box(client, world, pbx, "831")
    await leave_message(pbx, sipp, asterisk, world, box, did)
    messages_url = MESSAGES.format(box=box["id"])
    (item,) = (await client.get(messages_url, headers=world.admin.headers)).json()["items"]
    msg_url = f"{messages_url}/{item['id']}"

    # Another tenant's admin, even its operator acting in it, never sees the box.
    for headers in (other.admin.headers, other.operator_headers):
        for response in (
            await client.get(messages_url, headers=headers),
            await client.get(msg_url, headers=headers),
            await client.get(f"{msg_url}/audio", headers=headers),
            await client.post(f"{msg_url}/read", headers=headers),
            await client.delete(msg_url, headers=headers),
        ):
            assert response.status_code == 404, response.text
    # Agents do not read the tenant's voicemail.
    agent = await client.get(messages_url, headers=world.agent.headers)
    assert agent.status_code == 403, agent.text
    # Bad input names the field.
    bad = await client.get(f"{messages_url}/not-an-id", headers=world.admin.headers)
    assert bad.status_code == 422, bad.text
    assert bad.json()["details"]["errors"][0]["field"] == "path.msg_id"
    unknown = await client.get(f"{messages_url}/1-00000000", headers=world.admin.headers)
    assert unknown.status_code == 404, unknown.text
    folder = await client.get(messages_url, params={"folder": "Trash"}, headers=world.admin.headers)
    assert folder.status_code == 422, folder.text
    cursor = await client.get(messages_url, params={"cursor": "bad"}, headers=world.admin.headers)
    assert cursor.status_code == 422, cursor.text
    # Still new: nothing another tenant did touched it.
    assert await mailbox_count(pbx, world, box) == (1, 0)


async def test_an_email_the_relay_refused_is_sent_once_when_it_is_back(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    asterisk: Asterisk,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    box, did = await routed_box(client, world, pbx, "832")
    port = free_loopback_port()  # nothing listens there yet: the relay is down

    async def notification() -> VoicemailNotification | None:
        async with pbx.app.state.sessions() as session:
            row: VoicemailNotification | None = (
                await session.execute(
                    select(VoicemailNotification).where(VoicemailNotification.box_id == box["id"])
                )
            ).scalar_one_or_none()
            return row

    async with notifier(pbx, asterisk, port, scan_interval=0.5) as mailer:
        await leave_message(pbx, sipp, asterisk, world, box, did)
        async with asyncio.timeout(30):
            while (row := await notification()) is None or row.status != "failed":
                passes = mailer.passes
                await mailer.wait_passes(passes + 1)
        assert row.attempts >= 1 and row.last_error, row

        async with smtp_server(port) as inbox:
            await inbox.wait(box["email"])
            # A few more passes over the box: still one e-mail.
            passes = mailer.passes
            await mailer.wait_passes(passes + 3)
            assert len(inbox.to(box["email"])) == 1
    sent = await notification()
    assert sent is not None and sent.status == "sent" and sent.attempts >= 2, sent
    assert sent.recipient == box["email"]
