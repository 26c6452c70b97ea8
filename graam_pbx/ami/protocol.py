"""AMI wire format without I/O: the ``Message`` mapping, action encoding and frame decoding."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from graam_pbx.ami.errors import AmiInjectionError, AmiProtocolError

FieldValue = str | int | bool | Sequence[str]

# CLI output of a large system (task processors, endpoints) runs to megabytes; past this a
# peer is broken or hostile.
MAX_MESSAGE_BYTES = 32 << 20
GREETING_PREFIX = "Asterisk Call Manager"

_LINE_BREAKERS = ("\r", "\n", "\x00")
_CLIENT_FIELDS = frozenset({"action", "actionid"})


class Message(Mapping[str, str]):
    """One AMI message: headers in arrival order, looked up case-insensitively.

    Mapping access returns the first value of a header; ``getall`` returns every value of a
    repeated one (``ChanVariable``, ``Output``).
    """

    __slots__ = ("_fields", "_first")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields = tuple(fields)
        first: dict[str, tuple[str, str]] = {}
        for key, value in self._fields:
            first.setdefault(key.lower(), (key, value))
        self._first = first

    def __getitem__(self, key: str) -> str:
        try:
            return self._first[key.lower()][1]
        except KeyError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._first

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._first.values())

    def __len__(self) -> int:
        return len(self._first)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Message):
            return self._fields == other._fields
        return super().__eq__(other)

    def __hash__(self) -> int:
        return hash(self._fields)

    def __repr__(self) -> str:
        return f"Message({list(self._fields)!r})"

    @property
    def fields(self) -> tuple[tuple[str, str], ...]:
        """Every header in arrival order, repeated ones included."""
        return self._fields

    def getall(self, key: str) -> list[str]:
        """Every value of ``key``, in arrival order; empty when absent."""
        wanted = key.lower()
        return [value for name, value in self._fields if name.lower() == wanted]

    @property
    def is_event(self) -> bool:
        return "Event" in self

    @property
    def is_response(self) -> bool:
        return "Response" in self and "Event" not in self

    @property
    def name(self) -> str:
        """The ``Event`` value of an event, the ``Response`` value of a response."""
        return self.get("Event") or self.get("Response") or ""

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")


def _check_header(key: str, value: str) -> str:
    if not key or ":" in key or any(char in key for char in _LINE_BREAKERS):
        raise AmiInjectionError(f"AMI field name {key!r} is empty or contains ':', CR, LF or NUL")
    if not isinstance(value, str):
        raise TypeError(f"AMI field {key!r} must be str, int, bool or a sequence of str")
    # The value is never echoed: it may be a secret.
    if any(char in value for char in _LINE_BREAKERS):
        raise AmiInjectionError(f"AMI field {key!r} contains CR, LF or NUL")
    return f"{key}: {value}\r\n"


def encode_action(action: str, fields: Mapping[str, FieldValue], action_id: str) -> bytes:
    """Encode one action; raises ``AmiInjectionError`` before anything could be written."""
    if not action:
        raise AmiInjectionError("AMI action name is empty")
    lines = [_check_header("Action", action), _check_header("ActionID", action_id)]
    for key, value in fields.items():
        if key.lower() in _CLIENT_FIELDS:
            raise AmiInjectionError(f"AMI field {key!r} is set by the client")
        if isinstance(value, bool):
            lines.append(_check_header(key, "true" if value else "false"))
        elif isinstance(value, int):
            lines.append(_check_header(key, str(value)))
        elif isinstance(value, str):
            lines.append(_check_header(key, value))
        else:
            lines.extend(_check_header(key, item) for item in value)
    lines.append("\r\n")
    return "".join(lines).encode("utf-8")


class FrameDecoder:
    """Turns the AMI byte stream into messages, whatever the TCP read boundaries.

    Bytes are buffered until a line is complete and only then decoded, so a multibyte
    character split across two reads survives.
    """

    def __init__(self, *, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.greeting: str | None = None
        self._max_message_bytes = max_message_bytes
        self._buffer = bytearray()
        self._fields: list[tuple[str, str]] = []
        self._message_bytes = 0
        self._at_stream_start = True

    def feed(self, data: bytes) -> list[Message]:
        """Add bytes read from the stream; return the messages they completed."""
        self._buffer += data
        messages: list[Message] = []
        start = 0
        while (end := self._buffer.find(b"\n", start)) >= 0:
            raw = bytes(self._buffer[start:end])
            self._message_bytes += end + 1 - start
            start = end + 1
            if self._message_bytes > self._max_message_bytes:
                self._overflow()
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            message = self._take_line(raw.decode("utf-8", errors="replace"))
            if message is not None:
                messages.append(message)
        del self._buffer[:start]
        if self._message_bytes + len(self._buffer) > self._max_message_bytes:
            self._overflow()
        return messages

    def _overflow(self) -> None:
        size = self._message_bytes + len(self._buffer)
        self._buffer.clear()
        self._fields.clear()
        raise AmiProtocolError(
            f"AMI message exceeds {self._max_message_bytes} bytes ({size} buffered)"
        )

    def _take_line(self, line: str) -> Message | None:
        if self._at_stream_start:
            self._at_stream_start = False
            # The greeting is the only line of AMI that no blank line terminates.
            if line.startswith(GREETING_PREFIX):
                self.greeting = line
                self._message_bytes = 0
                return None
        if not line:
            self._message_bytes = 0
            if not self._fields:
                return None
            message = Message(self._fields)
            self._fields = []
            return message
        key, separator, value = line.partition(":")
        if not separator:
            # Asterisk before 14 answered Command with bare output lines; keep them readable.
            self._fields.append(("Output", line))
        else:
            self._fields.append((key, value.removeprefix(" ")))
        return None
