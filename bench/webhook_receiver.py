"""The webhooks bench's receiver: a process of its own serving HTTP/1.1 on loopback ports.

``python -m bench.webhooks --receive HOST PORTS`` listens on PORTS free ports of HOST (one per
endpoint, as many hosts would be), keeps every connection alive, answers every POST with 200
and notes its ``Graam-Event-Id`` and the time it arrived (``time.time()``, the clock the bench
dates its events with). It prints its ports as one JSON line, then answers commands read on
stdin, one JSON line each: ``count`` (requests so far), ``take`` (the (event id, arrival)
pairs so far, forgotten once taken). It ends when stdin closes.

A process of its own, so that it shares no event loop with the sender under test: the bench
measures the sender, not the receiver's turn on the same loop. ``Receiver`` is the bench's
side of it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.cpu import process_cpu_seconds

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
EVENT_ID = b"graam-event-id"
REPO = Path(__file__).resolve().parents[1]
LINE_LIMIT = 64 * 1024 * 1024  # a ``take`` answer is one line: every arrival of a run


class _Connection(asyncio.Protocol):
    """One keep-alive connection: requests parsed as they complete, each answered 200."""

    def __init__(self, arrivals: list[tuple[int, float]]) -> None:
        self._arrivals = arrivals
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            length = 0
            event_id = -1
            for line in bytes(self._buffer[:end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == EVENT_ID:
                    event_id = int(value)
            if len(self._buffer) < end + 4 + length:
                return  # the body is still on its way
            self._arrivals.append((event_id, time.time()))
            del self._buffer[: end + 4 + length]
            assert self._transport is not None
            self._transport.write(OK)


async def _serve(host: str, ports: int) -> None:
    loop = asyncio.get_running_loop()
    arrivals: list[tuple[int, float]] = []
    servers = [
        await loop.create_server(lambda: _Connection(arrivals), host, 0) for _ in range(ports)
    ]
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ports": [s.sockets[0].getsockname()[1] for s in servers]}), flush=True)
    while command := (await reader.readline()).strip():
        if command == b"count":
            print(json.dumps({"count": len(arrivals)}), flush=True)
        elif command == b"take":
            taken, arrivals[:] = list(arrivals), []
            print(json.dumps({"arrivals": taken}), flush=True)
    for server in servers:
        server.close()


def serve(host: str, ports: int) -> None:
    """The receiver process's body (``--receive``)."""
    asyncio.run(_serve(host, ports))


class Receiver:
    """The bench's side: starts the receiver process and reads what it received."""

    def __init__(self, host: str, ports: int) -> None:
        self.host = host
        self._count = ports
        self.ports: list[int] = []
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.webhooks",
            "--receive",
            self.host,
            str(self._count),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO,
            limit=LINE_LIMIT,
        )
        self.ports = list((await self._ask(None))["ports"])

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()

    def cpu_seconds(self) -> float:
        assert self._process is not None
        return process_cpu_seconds(self._process.pid)

    async def count(self) -> int:
        return int((await self._ask(b"count"))["count"])

    async def take(self) -> list[tuple[int, float]]:
        """Every (event id, arrival) since the last take."""
        return [(int(i), float(t)) for i, t in (await self._ask(b"take"))["arrivals"]]

    async def _ask(self, command: bytes | None) -> dict[str, Any]:
        assert self._process is not None
        assert self._process.stdin is not None and self._process.stdout is not None
        if command is not None:
            self._process.stdin.write(command + b"\n")
            await self._process.stdin.drain()
        line = await self._process.stdout.readline()
        if not line:
            raise RuntimeError("the webhook receiver ended")
        answer: dict[str, Any] = json.loads(line)
        return answer
