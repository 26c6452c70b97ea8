"""Reloads are sent again until Asterisk says they were done (the answers are Asterisk 22's,
as the sandbox gives them over AMI Command)."""

from __future__ import annotations

import pytest

from graam_pbx.asterisk.reloads import (
    RELOAD_COMMANDS,
    Backoff,
    ReloadFailed,
    ReloadOutcome,
    classify,
    reload_until_done,
)

DONE = "Module 'res_pjsip.so' reloaded successfully."
BUSY = "A module reload request is already in progress; please be patient"


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (DONE, ReloadOutcome.DONE),
        ("Module 'pbx_config.so' reloaded successfully.\n", ReloadOutcome.DONE),
        (BUSY, ReloadOutcome.IN_PROGRESS),
        ("Asterisk cannot reload a module yet; request queued", ReloadOutcome.QUEUED),
        ("The module 'app_queue.so' reported a reload failure", ReloadOutcome.FAILED),
        ("No such module 'res_pjsip.so'", ReloadOutcome.FAILED),
        ("Dialplan reloaded.", ReloadOutcome.FAILED),  # says nothing of what happened
        ("", ReloadOutcome.FAILED),
    ],
)
def test_only_reloaded_successfully_is_a_success(answer: str, outcome: ReloadOutcome) -> None:
    assert classify(answer) is outcome


def test_every_reload_is_a_module_reload() -> None:
    assert all(command.startswith("module reload ") for command in RELOAD_COMMANDS.values())


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(first=0.1, cap=1.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_backoff_stays_at_its_cap_after_any_number_of_tries() -> None:
    # A tenant that fails to render for a day is retried thousands of times.
    assert Backoff(first=5.0, cap=60.0).delay(100_000) == 60.0


class Clock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def scripted(*answers: str | Exception) -> tuple[list[str], object]:
    sent: list[str] = []
    queue = list(answers)

    async def send(command: str) -> str:
        sent.append(command)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return sent, send


async def test_in_progress_and_errors_are_retried_until_done() -> None:
    clock = Clock()
    retried: list[tuple[str, ReloadOutcome, int]] = []
    sent, send = scripted(BUSY, TimeoutError("no answer"), BUSY, DONE)
    tries = await reload_until_done(
        send,  # type: ignore[arg-type]
        "res_pjsip",
        deadline=30,
        on_retry=lambda reload, outcome, _, attempt: retried.append((reload, outcome, attempt)),
        clock=clock,
        sleep=clock.sleep,
    )
    assert tries == 4
    assert sent == ["module reload res_pjsip.so"] * 4
    assert retried == [
        ("res_pjsip", ReloadOutcome.IN_PROGRESS, 1),
        ("res_pjsip", ReloadOutcome.ERROR, 2),
        ("res_pjsip", ReloadOutcome.IN_PROGRESS, 3),
    ]
    assert clock.slept == [0.1, 0.2, 0.4]


async def test_a_first_success_sends_once_and_sleeps_never() -> None:
    clock = Clock()
    sent, send = scripted(DONE)
    assert await reload_until_done(send, "res_pjsip", deadline=1, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    assert len(sent) == 1
    assert clock.slept == []


async def test_a_reload_never_done_fails_loudly_at_its_deadline() -> None:
    clock = Clock()
    sent, send = scripted(*[BUSY] * 100)
    with pytest.raises(ReloadFailed) as failed:
        await reload_until_done(
            send,  # type: ignore[arg-type]
            "res_pjsip",
            deadline=5,
            backoff=Backoff(first=1, cap=1),
            clock=clock,
            sleep=clock.sleep,
        )
    assert failed.value.outcome is ReloadOutcome.IN_PROGRESS
    assert "already in progress" in failed.value.answer
    assert clock.now <= 5
    assert failed.value.attempts == len(sent) == 6
