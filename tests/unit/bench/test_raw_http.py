"""The login storm's client: the request it writes, and the answer it reads."""

from __future__ import annotations

import asyncio

import pytest

from bench import raw_http


async def serve(answer: bytes, requests: list[bytes]) -> asyncio.Server:
    """A loopback server that notes each request's head and answers ``answer``, then waits
    for the client to close (as the API sees the storm's clients do)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(answer)
        await writer.drain()
        await reader.read()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def port_of(server: asyncio.Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


async def exchange(answer: bytes, method: str) -> tuple[tuple[int, bytes], bytes]:
    requests: list[bytes] = []
    server = await serve(answer, requests)
    try:
        got = await raw_http.request("127.0.0.1", port_of(server), method, "/a/b?c=1", "tok")
    finally:
        server.close()
        await server.wait_closed()
    return got, requests[0]


async def test_a_post_is_sent_with_its_token_and_an_empty_body() -> None:
    body = b'{"id": 7}'
    answer = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n"
    answer += b"content-length: %d\r\n\r\n%s" % (len(body), body)
    (status, read), request = await exchange(answer, "POST")
    assert (status, read) == (201, body)
    lines = request.decode("ascii").split("\r\n")
    assert lines[0] == "POST /a/b?c=1 HTTP/1.1"
    assert "Authorization: Bearer tok" in lines
    assert "Content-Length: 0" in lines
    assert lines[1].startswith("Host: 127.0.0.1:")


async def test_a_get_has_no_body_length_and_an_error_status_is_returned() -> None:
    answer = b"HTTP/1.1 409 Conflict\r\nContent-Length: 2\r\n\r\n{}"
    (status, read), request = await exchange(answer, "GET")
    assert (status, read) == (409, b"{}")
    assert b"Content-Length" not in request


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "Content-Length"),
        (b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", "status line"),
    ],
)
async def test_an_answer_it_cannot_read_is_an_error(answer: bytes, reason: str) -> None:
    with pytest.raises(raw_http.HttpAnswerError, match=reason):
        await exchange(answer, "GET")
