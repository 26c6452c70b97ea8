"""Without an SMTP relay the notifier says so once, at start, and then stays quiet."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from graam_pbx.ami import EventBus, Message
from graam_pbx.metrics import REGISTRY
from graam_pbx.settings import Settings
from graam_pbx.voicemail.mail import SmtpRelay
from graam_pbx.voicemail.spool import VoicemailSpool
from graam_pbx.voicemail.worker import NO_RELAY_LOG, VoicemailNotifier


async def test_no_relay_is_said_once_at_start(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    relay = SmtpRelay.from_settings(Settings())
    assert relay is None
    bus = EventBus()
    await bus.start()
    notifier = VoicemailNotifier(
        async_sessionmaker(), bus, VoicemailSpool(tmp_path), relay, scan_interval=0.01
    )
    with caplog.at_level(logging.INFO, logger="graam_pbx.voicemail"):
        await notifier.start()
        for _ in range(3):
            bus.publish(Message([("Event", "MessageWaiting"), ("Mailbox", "820@t12")]))
        bus.publish_resync(restarted=False)
        await notifier.stop()
        await bus.stop()

    said = [record for record in caplog.records if record.getMessage() == NO_RELAY_LOG]
    assert len(said) == 1
    assert said[0].levelno == logging.WARNING
    assert notifier.passes == 0
    assert REGISTRY.get_sample_value("graam_voicemail_relay_configured") == 0


def test_a_relay_comes_from_the_smtp_settings() -> None:
    relay = SmtpRelay.from_settings(
        Settings(
            smtp_host="127.0.0.1",
            smtp_port=2525,
            smtp_username="pbx",
            smtp_password="s3cret",
            smtp_starttls=True,
            smtp_from="voicemail@acme.example",
        )
    )
    assert relay == SmtpRelay(
        host="127.0.0.1",
        port=2525,
        sender="voicemail@acme.example",
        username="pbx",
        password="s3cret",
        starttls=True,
        timeout=30.0,
    )
    assert "s3cret" not in repr(relay)  # the relay may be logged, its password never
