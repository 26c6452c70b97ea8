"""A running command whose console lines a test waits on."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys


async def start_command(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    """``python -m graam_pbx ARGS`` with its console (stdout and stderr) on one pipe."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "graam_pbx",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def finished_output(process: asyncio.subprocess.Process, timeout: float = 60) -> str:
    """Everything the command printed until it exited."""
    async with asyncio.timeout(timeout):
        output, _ = await process.communicate()
    return output.decode(errors="replace")


class Console:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    def text(self) -> str:
        return "\n".join(self.lines)

    async def wait_for_line(self, prefix: str, timeout: float) -> str:
        """Read the console until a line starts with ``prefix``; fail on an error line or exit."""
        assert self.process.stdout is not None
        for line in self.lines:
            if line.startswith(prefix):
                return line
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.process.stdout.readline()
                if not raw:
                    raise AssertionError(f"exited before {prefix!r}:\n{self.text()}")
                line = raw.decode(errors="replace").rstrip("\n")
                self.lines.append(line)
                if "error:" in line and line.startswith("["):
                    raise AssertionError(f"error before {prefix!r}:\n{self.text()}")
                if line.startswith(prefix):
                    return line

    async def terminate(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGINT)
            try:
                async with asyncio.timeout(60):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
