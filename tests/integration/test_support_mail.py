"""Support e-mails through a real SMTP server (aiosmtpd on a loopback port): the operator's
support address hears of a new request and of the client's messages, the requester of the
operator's answer; a relay that is down loses the e-mail, never the request."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.app import Endpoints
from graam_pbx.sandbox.ports import free_port
from graam_pbx.settings import Settings
from tests.conftest import Asterisk, RunningApp, start_app
from tests.factories import make_world
from tests.waiting import until

SUPPORT = "support@operator.example"
SENDER = "pbx@operator.example"
URL = "/api/v1/support-requests"


class Inbox:
    def __init__(self) -> None:
        self.received: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        mail = message_from_bytes(envelope.original_content or b"")
        self.received.append((list(envelope.rcpt_tos), mail))
        return "250 OK"

    def about(self, request_id: int) -> list[tuple[list[str], Message]]:
        return [
            (to, mail)
            for to, mail in self.received
            if mail["X-Graam-Support-Request"] == str(request_id)
        ]


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


@pytest.fixture(scope="module")
async def running_app(
    database_url: str, asterisk: Asterisk, inbox: tuple[Inbox, int]
) -> AsyncIterator[RunningApp]:
    with tempfile.TemporaryDirectory(prefix="graam-cdr-") as cdr_dir:
        settings = Settings(
            agi_port=free_port(),
            cdr_dir=Path(cdr_dir),
            queue_calls_dir=Path(cdr_dir) / "queue-calls",
            smtp_host="127.0.0.1",
            smtp_port=inbox[1],
            smtp_from=SENDER,
            smtp_timeout=5,
            support_email=SUPPORT,
        )
        endpoints = Endpoints(database_url=database_url, ami=asterisk.ami_config())
        async for running in start_app(endpoints, settings):
            yield running


async def test_the_operator_and_the_requester_are_emailed(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    inbox: tuple[Inbox, int],
) -> None:
    mails, _ = inbox
    world = await make_world(client, sessions)
    filed = await client.post(
        URL,
        headers=world.supervisor.headers,
        json={"subject": "Queue silent", "body": "Nobody hears the callers.", "priority": "high"},
    )
    assert filed.status_code == 201, filed.text
    request_id = filed.json()["id"]
    await until(lambda: _count(mails, request_id, 1), "e-mail to the operator", timeout=10)
    [(to, mail)] = mails.about(request_id)
    assert to == [SUPPORT]
    assert mail["From"] == SENDER
    assert "Queue silent" in mail["Subject"] and "[high]" in mail["Subject"]
    assert "Nobody hears the callers." in text_of(mail)

    answered = await client.post(
        f"{URL}/{request_id}/messages",
        headers=world.operator.headers,
        json={"body": "Fixed: the queue had no members."},
    )
    assert answered.status_code == 201
    await until(lambda: _count(mails, request_id, 2), "e-mail to the requester", timeout=10)
    to, mail = mails.about(request_id)[1]
    assert to == [world.supervisor.email]
    assert "Answer to your support request" in mail["Subject"]
    assert "Fixed: the queue had no members." in text_of(mail)

    followed = await client.post(
        f"{URL}/{request_id}/messages",
        headers=world.admin.headers,
        json={"body": "Still silent on queue 2."},
    )
    assert followed.status_code == 201
    await until(lambda: _count(mails, request_id, 3), "e-mail of the follow-up", timeout=10)
    to, mail = mails.about(request_id)[2]
    assert to == [SUPPORT]
    assert "Still silent on queue 2." in text_of(mail)


async def test_a_relay_that_is_down_loses_no_request(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    running_app: RunningApp,
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = await make_world(client, sessions)
    settings = running_app.runtime.settings
    running_app.runtime.settings = settings.model_copy(update={"smtp_port": free_port()})
    try:
        filed = await client.post(
            URL,
            headers=world.admin.headers,
            json={"subject": "Relay down", "body": "x", "priority": "low"},
        )
    finally:
        running_app.runtime.settings = settings
    assert filed.status_code == 201
    found = await client.get(f"{URL}/{filed.json()['id']}", headers=world.admin.headers)
    assert found.status_code == 200
    assert found.json()["subject"] == "Relay down"
    await until(
        lambda: _logged(caplog, "e-mail not sent purpose=support"), "log of the failure", 10
    )


def text_of(mail: Message) -> str:
    payload = mail.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


async def _count(inbox: Inbox, request_id: int, expected: int) -> bool:
    return len(inbox.about(request_id)) >= expected


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)
