"""The voicemail e-mail against a real SMTP server (aiosmtpd on a loopback port): the relay's
login is used, and a refusal raises (the notifier then records the failure and retries)."""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
from collections.abc import AsyncIterator
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from graam_pbx.voicemail.mail import BoxAddress, SmtpRelay, compose, send
from graam_pbx.voicemail.spool import parse_message_info
from tests.unit.voicemail.test_spool import MESSAGE_TXT

USER, PASSWORD = "pbx", "relay-password"
# The test relay listens on loopback only, without TLS.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


class Relay:
    def __init__(self) -> None:
        self.received: list[tuple[Any, Envelope]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append((session.auth_data, envelope))
        return "250 OK"


def authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False, auth_data=data.login if ok else None)


@contextlib.asynccontextmanager
async def relay_server() -> AsyncIterator[tuple[Relay, int]]:
    relay = Relay()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(
            relay,
            hostname="smtp.graam.test",
            authenticator=authenticate,
            auth_required=True,
            auth_require_tls=False,  # loopback only, in a test
        ),
        "127.0.0.1",
        0,
    )
    port: int = server.sockets[0].getsockname()[1]
    try:
        yield relay, port
    finally:
        server.close()
        await server.wait_closed()


def mail_for(relay: SmtpRelay) -> Any:
    box = BoxAddress(tenant_id=1, box_id=2, number="800", name="Sales", email="s@acme.example")
    return compose(relay, box, parse_message_info(MESSAGE_TXT), b"RIFF....WAVE")


async def test_the_relay_login_is_used() -> None:
    async with relay_server() as (server, port):
        relay = SmtpRelay(
            host="127.0.0.1", port=port, sender="pbx@acme.example", username=USER, password=PASSWORD
        )
        await asyncio.to_thread(send, relay, mail_for(relay))
    ((login, envelope),) = server.received
    assert login == USER.encode()
    assert envelope.mail_from == "pbx@acme.example"
    assert envelope.rcpt_tos == ["s@acme.example"]
    mail = message_from_bytes(envelope.original_content or b"")
    assert [part.get_content_type() for part in mail.walk() if part.get_filename()] == ["audio/wav"]


@pytest.mark.parametrize("password", [None, "wrong"])
async def test_a_refused_login_raises(password: str | None) -> None:
    async with relay_server() as (server, port):
        relay = SmtpRelay(
            host="127.0.0.1",
            port=port,
            sender="pbx@acme.example",
            username=USER if password else None,
            password=password,
        )
        with pytest.raises(smtplib.SMTPException):
            await asyncio.to_thread(send, relay, mail_for(relay))
    assert server.received == []
