"""Waiting for what a test expects (a row, Asterisk's state, a log line): the check is
polled until it holds, and a timeout says what never came. Never a fixed sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

POLL_SECONDS = 0.05


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30) -> None:
    """Return once ``check()`` is true; fail with "no <what> within <timeout> s" else."""
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(POLL_SECONDS)
    except TimeoutError:
        raise AssertionError(f"no {what} within {timeout:g} s") from None
