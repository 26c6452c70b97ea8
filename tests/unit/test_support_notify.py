"""Support e-mails: who gets which, and a missing relay or support address said once."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest

from graam_pbx.mail import SmtpRelay
from graam_pbx.notices.service import one_month_after
from graam_pbx.settings import Settings
from graam_pbx.support import notify
from graam_pbx.support.schemas import ANSWER_WITHIN, Priority

RELAY = SmtpRelay(host="127.0.0.1", port=25, sender="pbx@operator.example")


def notification(*, to_operator: bool, filed: bool = True) -> notify.Notification:
    return notify.Notification(
        to_operator=to_operator,
        filed=filed,
        requester_email="ana@acme.example",
        tenant_name="Acme",
        request_id=12,
        subject="Queue silent",
        priority="high",
        due_at=datetime(2026, 12, 4, 9, 0, tzinfo=UTC),
        author="ana@acme.example" if to_operator else "op@operator.example",
        body="Nobody hears the callers.",
    )


def test_the_contracts_delays() -> None:
    assert {p.value: d.total_seconds() / 3600 for p, d in ANSWER_WITHIN.items()} == {
        Priority.HIGH.value: 24,
        Priority.MEDIUM.value: 48,
        Priority.LOW.value: 120,
    }


def test_a_month_of_notice_ends_on_the_same_day_or_the_months_last() -> None:
    assert one_month_after(date(2026, 12, 3)) == date(2027, 1, 3)
    assert one_month_after(date(2027, 1, 31)) == date(2027, 2, 28)
    assert one_month_after(date(2028, 1, 31)) == date(2028, 2, 29)


def test_the_operator_and_the_requester_get_their_own_mail() -> None:
    to_operator = notify.compose(RELAY, notification(to_operator=True), "support@op.example")
    assert to_operator["To"] == "support@op.example"
    assert to_operator["Subject"] == "[high] New support request #12 from Acme: Queue silent"
    assert "Nobody hears the callers." in to_operator.get_content()
    answer = notify.compose(RELAY, notification(to_operator=False), "ana@acme.example")
    assert answer["Subject"] == "Answer to your support request #12: Queue silent"
    assert answer["X-Graam-Support-Request"] == "12"


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        (Settings(), "no SMTP relay configured"),
        (Settings(smtp_host="127.0.0.1", smtp_port=9), "GRAAM_SUPPORT_EMAIL is unset"),
    ],
)
async def test_what_is_missing_is_said_once_and_nothing_is_sent(
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    said: str,
) -> None:
    monkeypatch.setattr(notify, "_said", set())
    with caplog.at_level(logging.INFO, logger="graam_pbx"):
        for _ in range(3):
            await notify.dispatch(settings, notification(to_operator=True))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines  # port 9 was never tried: nothing logged of a failure
    assert said in lines[0]
