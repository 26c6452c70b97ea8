"""One HTTP/1.1 request on a connection of its own, written and read straight on a socket.

The storms' load generator: the bench's client processes share the machine's cores with the
stack they measure, so what a request costs them is taken from the API, Postgres and
Asterisk. A general client (connection pool, header models, URL parsing, events) spends
about 1.3 ms of CPU per request here; this one writes the request's bytes and reads the
status line, the headers and a ``Content-Length`` body, and closes, as that client did with
no keep-alive: the server sees the same request and the same close.
"""

from __future__ import annotations

import asyncio

HEADERS_END = b"\r\n\r\n"


class HttpAnswerError(Exception):
    """An answer this client cannot read: no ``Content-Length`` or a malformed status line."""


async def request(host: str, port: int, method: str, path: str, token: str) -> tuple[int, bytes]:
    """Send ``method path`` with a bearer ``token`` and no body; return the status and body."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        body_length = "Content-Length: 0\r\n" if method in {"POST", "PUT", "PATCH"} else ""
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\n{body_length}\r\n".encode("ascii")
        )
        head = await reader.readuntil(HEADERS_END)
        status_line, *header_lines = head[: -len(HEADERS_END)].split(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise HttpAnswerError(f"not an HTTP/1 status line: {status_line!r}")
        length: int | None = None
        for line in header_lines:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise HttpAnswerError(f"an answer without Content-Length to {method} {path}")
        return int(parts[1]), await reader.readexactly(length)
    finally:
        writer.close()
