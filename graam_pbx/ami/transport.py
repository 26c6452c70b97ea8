"""The byte pipe under the AMI client, swappable the way httpx clients take a transport."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Protocol

# More than asyncio ever buffers from one socket read (256 KiB): each read takes the whole
# buffer, instead of a slice followed by moving the rest to the front.
_READ_SIZE = 1 << 20


class AmiTransport(Protocol):
    async def read(self) -> bytes:
        """Next bytes from Asterisk; ``b""`` once the connection is closed."""
        ...

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


class StreamTransport:
    """``AmiTransport`` over asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self) -> bytes:
        return await self._reader.read(_READ_SIZE)

    def write(self, data: bytes) -> None:
        self._writer.write(data)

    async def drain(self) -> None:
        await self._writer.drain()

    def close(self) -> None:
        self._writer.close()

    async def wait_closed(self) -> None:
        # The peer may already have reset the connection; closing is all that was asked.
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


async def open_tcp(host: str, port: int, timeout: float) -> AmiTransport:  # noqa: ASYNC109
    """Connect to AMI at ``host:port`` within ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        # Actions are small; Nagle would hold each one back waiting for the previous ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return StreamTransport(reader, writer)
