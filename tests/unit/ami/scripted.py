"""A scripted AMI peer: replays the bytes a test scripts and records what the client wrote."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from graam_pbx.ami.protocol import FrameDecoder, Message
from graam_pbx.metrics import REGISTRY

GREETING = b"Asterisk Call Manager/11.0.0\r\n"
AMI_USER = "graam"
AMI_SECRET = "not-a-real-secret"

Responder = Callable[["ScriptedTransport", Message], None]


def frame(fields: Iterable[tuple[str, str]] | Mapping[str, str]) -> bytes:
    """One AMI message as Asterisk writes it."""
    pairs = fields.items() if isinstance(fields, Mapping) else fields
    return "".join(f"{key}: {value}\r\n" for key, value in pairs).encode() + b"\r\n"


def reads(stream: bytes, cuts: Iterable[int]) -> Iterator[tuple[int, bytes]]:
    """The reads ``stream`` arrives in when cut at ``cuts`` (sorted): (where it ends, bytes)."""
    start = 0
    for cut in [*cuts, len(stream)]:
        yield cut, stream[start:cut]
        start = cut


def response(action: Message, status: str = "Success", **fields: str) -> bytes:
    return frame({"Response": status, "ActionID": action["ActionID"], **fields})


def event(name: str, **fields: str) -> bytes:
    return frame({"Event": name, **fields})


def fully_booted(uptime: int) -> bytes:
    return event(
        "FullyBooted",
        Privilege="system,all",
        Uptime=str(uptime),
        LastReload=str(uptime),
        Status="Fully Booted",
    )


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class ScriptedTransport:
    """``AmiTransport`` whose far end is the test (and an optional responder)."""

    def __init__(self, responder: Responder | None = None, *, greeting: bool = True) -> None:
        self._incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self._decoder = FrameDecoder()
        self._changed = asyncio.Event()
        self._responder = responder
        self.written = bytearray()
        self.actions: list[Message] = []
        self.closed = False
        if greeting:
            self.feed(GREETING)

    def feed(self, data: bytes) -> None:
        """Script bytes for the client to read, as one TCP read."""
        if data:
            self._incoming.put_nowait(data)

    def feed_split(self, data: bytes, cuts: Iterable[int]) -> None:
        """Script ``data`` as several reads, cut at the given byte offsets."""
        start = 0
        for cut in sorted(set(cuts)):
            self.feed(data[start:cut])
            start = cut
        self.feed(data[start:])

    def hang_up(self) -> None:
        """The Asterisk side closes the connection."""
        self._incoming.put_nowait(b"")

    async def read(self) -> bytes:
        if self.closed and self._incoming.empty():
            return b""
        return await self._incoming.get()

    def write(self, data: bytes) -> None:
        assert not self.closed, "write on a closed transport"
        self.written += data
        for action in self._decoder.feed(data):
            self.actions.append(action)
            self._changed.set()
            if self._responder is not None:
                self._responder(self, action)

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._incoming.put_nowait(b"")
            self._changed.set()

    async def wait_closed(self) -> None:
        return None

    def sent(self, name: str) -> list[Message]:
        return [action for action in self.actions if action.get("Action") == name]

    async def wait_for_action(self, name: str, *, count: int = 1, within: float = 2.0) -> Message:
        """The ``count``-th action named ``name`` the client wrote, waiting for it."""
        async with asyncio.timeout(within):
            while len(self.sent(name)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.sent(name)[count - 1]


Reply = Callable[[ScriptedTransport, Message], None]


def no_answer(transport: ScriptedTransport, action: Message) -> None:
    return None


def hang_up(transport: ScriptedTransport, action: Message) -> None:
    transport.hang_up()


@dataclass
class FakeAsterisk:
    """Answers the actions every connection makes the way Asterisk 22 does.

    ``started_at`` (monotonic) makes ``Uptime`` grow with time, like one real Asterisk.
    """

    uptime: int = 100
    started_at: float | None = None
    accept_login: bool = True
    send_fully_booted: bool = True
    answer_ping: bool = True
    replies: dict[str, Reply] = field(default_factory=dict)

    def __call__(self, transport: ScriptedTransport, action: Message) -> None:
        name = action["Action"]
        if name in self.replies:
            self.replies[name](transport, action)
        elif name == "Login":
            if not self.accept_login:
                transport.feed(response(action, "Error", Message="Authentication failed"))
                return
            transport.feed(response(action, Message="Authentication accepted"))
            if self.send_fully_booted:
                uptime = self.uptime
                if self.started_at is not None:
                    uptime = int(time.monotonic() - self.started_at)
                transport.feed(fully_booted(uptime))
        elif name == "Ping":
            if self.answer_ping:
                transport.feed(response(action, Ping="Pong", Timestamp="1700000000.123456"))
        elif name == "Logoff":
            transport.feed(response(action, "Goodbye", Message="Thanks for all the fish."))
            transport.hang_up()
        elif name == "CoreSettings":
            transport.feed(response(action, AsteriskVersion="22.1.0", AMIversion="11.0.0"))
        else:
            transport.feed(response(action, Message=f"{name} done"))


class TransportFactory:
    """Opens a new ``ScriptedTransport`` per connection, answering with the next responder."""

    def __init__(self, *responders: Responder) -> None:
        self._responders = responders
        self._opened = asyncio.Event()
        self.transports: list[ScriptedTransport] = []

    async def __call__(self, host: str, port: int, connect_timeout: float) -> ScriptedTransport:
        responder = self._responders[min(len(self.transports), len(self._responders) - 1)]
        transport = ScriptedTransport(responder)
        self.transports.append(transport)
        self._opened.set()
        return transport

    async def wait_opened(self, count: int, within: float = 3.0) -> ScriptedTransport:
        async with asyncio.timeout(within):
            while len(self.transports) < count:
                self._opened.clear()
                await self._opened.wait()
        return self.transports[count - 1]


class Recorder:
    """Collects messages: ``record`` is an on_event callback, calling it is a bus handler."""

    def __init__(self) -> None:
        self.received: list[Message] = []
        self._changed = asyncio.Event()

    def record(self, message: Message) -> None:
        self.received.append(message)
        self._changed.set()

    async def __call__(self, message: Message) -> None:
        self.record(message)

    def names(self) -> list[str]:
        return [message.name for message in self.received]

    async def wait_for(self, count: int, within: float = 2.0) -> list[Message]:
        async with asyncio.timeout(within):
            while len(self.received) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.received
