"""Reloading Asterisk modules over AMI until Asterisk says the reload was done.

Asterisk 22 answers ``module reload X`` (an AMI ``Command``) with one line:

- ``Module 'X' reloaded successfully.``: done;
- ``A module reload request is already in progress; please be patient``: another reload
  (ours, an operator's, a ``core reload``) holds the loader's lock and nothing was done;
- ``Asterisk cannot reload a module yet; request queued``: not fully booted yet;
- ``The module 'X' reported a reload failure``, ``No such module 'X'`` and the like.

Only the first is a success; everything else (an AMI error or time-out included) is tried
again after a short back-off. The dialplan is reloaded as ``module reload pbx_config.so``
rather than ``dialplan reload``: the latter answers "Dialplan reloaded." whatever happened.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

# What each reload is, as an Asterisk CLI command (sent over AMI).
RELOAD_COMMANDS = {
    "res_pjsip": "module reload res_pjsip.so",
    "dialplan": "module reload pbx_config.so",
    "app_queue": "module reload app_queue.so",
    "app_voicemail": "module reload app_voicemail.so",
    "res_musiconhold": "module reload res_musiconhold.so",
    # Asterisk's realtime connection (res_pgsql.conf): reconnects to the database named.
    "res_config_pgsql": "module reload res_config_pgsql.so",
}

IN_PROGRESS_ANSWER = "A module reload request is already in progress"


class ReloadOutcome(enum.Enum):
    DONE = "done"
    IN_PROGRESS = "in-progress"  # the loader was busy: nothing was reloaded
    QUEUED = "queued"  # Asterisk is still booting: it will, later
    FAILED = "failed"  # the module refused, or any other answer
    ERROR = "error"  # no answer: AMI error, time-out, not connected


def classify(output: str) -> ReloadOutcome:
    """What one answer to ``module reload X`` means."""
    text = output.strip()
    if "reloaded successfully" in text:
        return ReloadOutcome.DONE
    if IN_PROGRESS_ANSWER in text:
        return ReloadOutcome.IN_PROGRESS
    if "request queued" in text:
        return ReloadOutcome.QUEUED
    return ReloadOutcome.FAILED


@dataclass(frozen=True)
class Backoff:
    """Delays between tries: ``first``, doubled each time, at most ``cap``."""

    first: float = 0.1
    cap: float = 2.0

    def delay(self, attempt: int) -> float:
        """The wait after the ``attempt``-th failed try (1-based)."""
        # The exponent is bounded: a tenant failing for a day counts thousands of tries, and
        # 2**1024 no longer converts to a float (the applier's loop would die of it).
        return float(min(self.cap, self.first * 2 ** min(max(0, attempt - 1), 64)))


class ReloadFailed(Exception):
    """A reload did not succeed before its deadline; ``answer`` is Asterisk's last word."""

    def __init__(self, reload: str, outcome: ReloadOutcome, answer: str, attempts: int) -> None:
        # No count in the message: a failure retried in a loop is logged once, by its text.
        super().__init__(f"reload {reload} not done: {answer}")
        self.reload = reload
        self.outcome = outcome
        self.answer = answer
        self.attempts = attempts


Send = Callable[[str], Awaitable[str]]  # runs one CLI command, returns its output
OnRetry = Callable[[str, ReloadOutcome, str, int], None]  # reload, outcome, answer, attempt


async def reload_until_done(
    send: Send,
    reload: str,
    *,
    deadline: float,
    backoff: Backoff = Backoff(),
    on_retry: OnRetry | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> int:
    """Send ``reload`` until Asterisk says it is done; the number of tries it took.

    Raises ReloadFailed once ``deadline`` seconds have passed without success (the caller
    keeps the reload owed and tries again later). ``send`` raising is an ERROR outcome.
    """
    now = clock or asyncio.get_running_loop().time
    give_up = now() + deadline
    command = RELOAD_COMMANDS[reload]
    attempt = 0
    while True:
        attempt += 1
        try:
            answer = (await send(command)).strip()
            outcome = classify(answer)
        except Exception as err:
            answer, outcome = f"{type(err).__name__}: {err}", ReloadOutcome.ERROR
        if outcome is ReloadOutcome.DONE:
            return attempt
        if on_retry is not None:
            on_retry(reload, outcome, answer, attempt)
        pause = backoff.delay(attempt)
        if now() + pause > give_up:
            raise ReloadFailed(reload, outcome, answer or "(no answer)", attempt)
        await sleep(pause)
