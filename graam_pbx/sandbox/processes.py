"""Ending a child process: asked first, then killed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal


async def end_process(
    process: asyncio.subprocess.Process, *, grace: float, group: bool = False
) -> None:
    """SIGTERM, then SIGKILL if ``process`` has not ended within ``grace`` seconds; waited
    for either way. ``group``: the signals go to its whole process group (a child started in
    a session of its own, with the processes it forks). Nothing when it has already ended."""
    if process.returncode is not None:
        return

    def send(signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(process.pid, signum)
            else:
                process.send_signal(signum)

    send(signal.SIGTERM)
    try:
        async with asyncio.timeout(grace):
            await process.wait()
    except TimeoutError:
        send(signal.SIGKILL)
        await process.wait()
