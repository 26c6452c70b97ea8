"""SIP over WebSocket (RFC 7118) as a browser speaks it, for REGISTER: what the tests use to
reach Asterisk's WebSocket transport without a browser.

One request per frame, the ``sip`` subprotocol, a Via of transport WS with an invalid host
name (a browser has no address to give), a contact on that name with ``transport=ws``: what
JsSIP sends.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

import websockets

# Asterisk's HTTP server path of the PJSIP WebSocket transport.
WS_PATH = "/ws"
_CHALLENGE_FIELD = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]+))')


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names; the last of each

    @classmethod
    def parse(cls, frame: str) -> Response:
        head = frame.split("\r\n\r\n", 1)[0].split("\r\n")
        _, status, reason = head[0].split(" ", 2)
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return cls(int(status), reason, headers)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - SIP digest is MD5


def digest(challenge: str, username: str, password: str, method: str, uri: str) -> str:
    """The Authorization header answering a ``WWW-Authenticate: Digest …`` challenge."""
    fields = {
        m.group(1).lower(): m.group(2) or m.group(3) for m in _CHALLENGE_FIELD.finditer(challenge)
    }
    realm, nonce = fields["realm"], fields["nonce"]
    ha1 = _md5(f"{username}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    parts = [
        f'username="{username}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
        "algorithm=MD5",
    ]
    if "auth" in fields.get("qop", "").split(","):
        cnonce, nc = secrets.token_hex(8), "00000001"
        response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        parts += [f'cnonce="{cnonce}"', f"nc={nc}", "qop=auth"]
    else:
        response = _md5(f"{ha1}:{nonce}:{ha2}")
    parts.append(f'response="{response}"')
    if "opaque" in fields:
        parts.append(f'opaque="{fields["opaque"]}"')
    return "Digest " + ", ".join(parts)


class WsPhone:
    """A phone on one WebSocket connection to Asterisk: ``register`` and nothing more."""

    def __init__(self, url: str, username: str, domain: str = "graam") -> None:
        self.url = url
        self.username = username
        self.domain = domain
        self.host = f"{secrets.token_hex(6)}.invalid"
        self._call_id = f"{secrets.token_hex(12)}@{self.host}"
        self._tag = secrets.token_hex(6)
        self._cseq = 0
        self._socket: websockets.ClientConnection | None = None

    async def __aenter__(self) -> WsPhone:
        self._socket = await websockets.connect(
            self.url, subprotocols=[websockets.Subprotocol("sip")]
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._socket is not None:
            await self._socket.close()

    @property
    def contact(self) -> str:
        return f"<sip:{self.username}@{self.host};transport=ws>"

    def _register(self, expires: int, authorization: str | None) -> str:
        self._cseq += 1
        uri = f"sip:{self.domain}"
        lines = [
            f"REGISTER {uri} SIP/2.0",
            f"Via: SIP/2.0/WS {self.host};branch=z9hG4bK{secrets.token_hex(8)}",
            "Max-Forwards: 70",
            f"To: <sip:{self.username}@{self.domain}>",
            f"From: <sip:{self.username}@{self.domain}>;tag={self._tag}",
            f"Call-ID: {self._call_id}",
            f"CSeq: {self._cseq} REGISTER",
            f"Contact: {self.contact};expires={expires}",
            f"Expires: {expires}",
            "User-Agent: graam-pbx tests (SIP over WebSocket)",
        ]
        if authorization is not None:
            lines.append(f"Authorization: {authorization}")
        lines.append("Content-Length: 0")
        return "\r\n".join(lines) + "\r\n\r\n"

    async def _ask(self, request: str) -> Response:
        assert self._socket is not None, "use as an async context manager"
        await self._socket.send(request)
        while True:
            frame = await self._socket.recv()
            text = frame.decode() if isinstance(frame, bytes) else frame
            if text.startswith("SIP/2.0 "):
                response = Response.parse(text)
                if response.status >= 200:
                    return response

    async def register(self, password: str, expires: int = 300) -> Response:
        """REGISTER, answering the digest challenge with ``password``: the final response."""
        first = await self._ask(self._register(expires, None))
        if first.status != 401:
            return first
        challenge = first.headers["www-authenticate"]
        uri = f"sip:{self.domain}"
        answer = digest(challenge, self.username, password, "REGISTER", uri)
        return await self._ask(self._register(expires, answer))
