"""A real HTTP server on loopback that receives webhooks: it keeps every request and answers
each with the next status of its script (then 200), over keep-alive connections as a real
receiver would."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from graam_pbx.webhooks import signing

_REASONS = {200: "OK", 204: "No Content", 500: "Internal Server Error", 503: "Unavailable"}


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value

    def signed_by(self, secret: str, now: float) -> bool:
        return signing.verify(
            secret,
            self.headers.get(signing.TIMESTAMP_HEADER.lower(), ""),
            self.body,
            self.headers.get(signing.SIGNATURE_HEADER.lower(), ""),
            now=now,
        )


@dataclass
class Receiver:
    host: str
    port: int = 0
    script: list[int] = field(default_factory=list)  # statuses to answer first, in order
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    connections: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hooks"

    async def count(self, n: int, timeout: float = 30.0) -> list[Received]:
        """Wait until ``n`` requests arrived; every request so far."""
        async with asyncio.timeout(timeout), self.arrived:
            await self.arrived.wait_for(lambda: len(self.received) >= n)
        return list(self.received)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.add(writer)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                _, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status = self.script.pop(0) if self.script else 200
                async with self.arrived:
                    self.received.append(Received(path, headers, body))
                    self.arrived.notify_all()
                reason = _REASONS.get(status, "Status")
                writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self.connections.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def receiver(host: str, script: list[int] | None = None) -> AsyncIterator[Receiver]:
    """A receiver listening on ``host`` (a loopback address) and a free port."""
    made = Receiver(host, script=list(script or []))
    server = await asyncio.start_server(made._serve, host, 0)
    made.port = server.sockets[0].getsockname()[1]
    try:
        yield made
    finally:
        server.close()
        for writer in list(made.connections):  # the sender's keep-alive connections
            writer.close()
        await server.wait_closed()
