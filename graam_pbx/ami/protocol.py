"""AMI wire format without I/O: the ``Message`` mapping, action encoding and frame decoding."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import contains, itemgetter
from typing import TypeVar, overload

from graam_pbx.ami.errors import AmiInjectionError, AmiProtocolError

FieldValue = str | int | bool | Sequence[str]
_T = TypeVar("_T")

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

    A message framed from the stream keeps its text (``block``) and splits it into headers
    only when one is first looked up: a busy Asterisk sends thousands of events a second, and
    most of them are only routed by name (read from the first line) or parsed by their
    consumer straight from the text (the CDR pipeline).
    """

    __slots__ = ("_first", "_first_line", "_parsed", "block")

    block: str | None
    _first_line: str | None
    _parsed: tuple[tuple[str, str], ...] | None
    _first: dict[str, int] | None

    def __init__(self, source: Iterable[tuple[str, str]] | str = ()) -> None:
        """From (name, value) headers, or from a whole message's text as Asterisk writes it:
        non-empty "Key: value" lines joined by CRLF (what the framing hands over)."""
        if isinstance(source, str):
            self.block = source
            self._parsed = None
            # The event name, when the text starts with "Event: " (always, from Asterisk).
            first_line = source.partition("\r\n")[0]
            self._first_line = first_line[7:] if first_line.startswith("Event: ") else None
        else:
            self.block = None
            self._parsed = tuple(source)
            self._first_line = None
        self._first = None

    @property
    def _fields(self) -> tuple[tuple[str, str], ...]:
        parsed = self._parsed
        if parsed is None:
            parsed = self._parsed = _split_block(self.block or "")
        return parsed

    @property
    def _index(self) -> dict[str, int]:
        first = self._first
        if first is None:
            # Lower-case name -> position of its first occurrence. Built from the last header
            # to the first, so the first occurrence wins; iterations stay in C.
            fields = self._fields
            count = len(fields)
            names = map(str.lower, map(itemgetter(0), reversed(fields)))
            first = self._first = dict(zip(names, range(count - 1, -1, -1), strict=True))
        return first

    def __getitem__(self, key: str) -> str:
        try:
            return self._fields[self._index[key.lower()]][1]
        except KeyError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._index

    @overload
    def get(self, key: str, /) -> str | None: ...

    @overload
    def get(self, key: str, /, default: str | _T) -> str | _T: ...

    def get(self, key: str, /, default: object = None) -> object:
        # Mapping.get goes through a KeyError for every absent header (ActionID of an event).
        position = self._index.get(key.lower())
        return default if position is None else self._fields[position][1]

    def __iter__(self) -> Iterator[str]:
        first = self._index
        return (
            key for position, (key, _) in enumerate(self._fields) if first[key.lower()] == position
        )

    def __len__(self) -> int:
        return len(self._index)

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
    def event(self) -> str | None:
        """The ``Event`` header: None for a response."""
        first_line = self._first_line
        return first_line if first_line is not None else self.get("Event")

    @property
    def is_event(self) -> bool:
        return self.event is not None

    @property
    def is_response(self) -> bool:
        return self.event is None and "Response" in self

    @property
    def name(self) -> str:
        """The ``Event`` value of an event, the ``Response`` value of a response."""
        return self.event or self.get("Response") or ""

    @property
    def action_id(self) -> str | None:
        block = self.block
        if block is not None and self._parsed is None and "actionid" not in block.lower():
            return None  # most events: no need to split the text to know
        return self.get("ActionID")


def _split_block(block: str) -> tuple[tuple[str, str], ...]:
    """A message's lines as headers: "Key: value" splits in C; anything else by the rules."""
    lines = block.split("\r\n")
    pairs = list(map(str.split, lines, repeat(": "), repeat(1)))
    if min(map(len, pairs)) == 2 and not any(map(contains, map(itemgetter(0), pairs), repeat(":"))):
        return tuple(map(tuple, pairs))  # type: ignore[arg-type]
    return tuple(_header(line) for line in lines)


def _header(line: str) -> tuple[str, str]:
    key, separator, value = line.partition(":")
    if not separator:
        # Asterisk before 14 answered Command with bare output lines; keep them readable.
        return ("Output", line)
    return (key, value.removeprefix(" "))


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
        self._rest = b""  # the bytes after the last whole line (or message) so far
        self._fields: list[tuple[str, str]] = []
        self._message_bytes = 0
        self._at_stream_start = True

    def feed(self, data: bytes) -> list[Message]:
        """Add bytes read from the stream; return the messages they completed."""
        if self._rest:
            data = self._rest + data
        # Up to the end of the last whole message, so that the next read starts with a whole
        # one (taken as text, like the others); else, or when a message ends later in another
        # form (bare LF), up to the last whole line.
        end = data.rfind(b"\r\n\r\n") + 4
        if end < 4 or data.find(b"\n\n", end) >= 0 or data.find(b"\n\r\n", end) >= 0:
            end = data.rfind(b"\n") + 1
        if end == 0:
            self._rest = data
            if self._message_bytes + len(data) > self._max_message_bytes:
                self._overflow()
            return []
        chunk = data[:end] if end < len(data) else data
        self._rest = data[end:]
        messages: list[Message] = []
        if self._at_stream_start:
            # The greeting is the only line of AMI that no blank line terminates.
            first = chunk.find(b"\n") + 1
            self._take_raw_lines(chunk[:first], messages)
            chunk = chunk[first:]
        # Whole lines at once: one decode and one split per read instead of per line (a busy
        # Asterisk sends thousands of events a second). Only plain CRLF ASCII takes this path.
        if chunk.isascii() and chunk.count(b"\n") == chunk.count(b"\r\n"):
            self._take_crlf_text(chunk.decode("ascii"), messages)
        else:
            self._take_raw_lines(chunk, messages)
        if self._message_bytes + len(self._rest) > self._max_message_bytes:
            self._overflow()
        return messages

    def _take_crlf_text(self, text: str, messages: list[Message]) -> None:
        # A message ends at a blank line: split there first, then each message into lines.
        blocks = text.split("\r\n\r\n")
        tail = blocks.pop()  # "", or the lines of a message still arriving (each with CRLF)
        if blocks and self._fields:
            # The end of the message the last read left unfinished.
            self._take_block(blocks.pop(0), messages, complete=True)
        if (
            blocks
            and all(blocks)
            and not any(map(str.startswith, blocks, repeat("\r\n")))
            and max(map(len, blocks)) + 4 <= self._max_message_bytes
        ):
            # The common case: whole messages only, without stray blank lines. Each keeps its
            # text and is split into headers only when one is looked up (loops in C: hundreds
            # per read).
            messages.extend(map(Message, blocks))
        else:
            for block in blocks:
                self._take_block(block, messages, complete=True)
        if tail:
            self._take_block(tail[:-2], messages, complete=False)

    def _take_block(self, block: str, messages: list[Message], *, complete: bool) -> None:
        size = self._message_bytes + len(block) + (4 if complete else 2)
        if size > self._max_message_bytes:
            self._message_bytes = size
            self._overflow()
        lines = block.split("\r\n")
        if "" in lines:
            # Blank lines inside: stray ones, or the end of the message the last read left.
            for line in lines:
                self._message_bytes += len(line) + 2
                message = self._take_line(line)
                if message is not None:
                    messages.append(message)
        else:
            self._fields.extend(_split_block(block))
            self._message_bytes = size
        if complete:
            message = self._take_line("")
            if message is not None:
                messages.append(message)

    def _take_raw_lines(self, chunk: bytes, messages: list[Message]) -> None:
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            raw = chunk[start:end]
            self._message_bytes += end + 1 - start
            start = end + 1
            if self._message_bytes > self._max_message_bytes:
                self._overflow()
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            message = self._take_line(raw.decode("utf-8", errors="replace"))
            if message is not None:
                messages.append(message)

    def _overflow(self) -> None:
        size = self._message_bytes + len(self._rest)
        self._rest = b""
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
        self._fields.append(_header(line))
        return None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def event_time(message: Mapping[str, str], received: datetime) -> datetime:
    """When Asterisk published an event: its ``Timestamp`` header (manager.conf
    ``timestampevents = yes``: seconds since the epoch, a dot, microseconds), else
    ``received`` (an Asterisk configured without it, or a header that is not such a time)."""
    text = message.get("Timestamp")
    if text is None:
        return received
    whole, dot, fraction = text.partition(".")
    if not (whole.isdigit() and whole.isascii() and len(whole) <= 12):
        return received
    if dot and not (fraction.isdigit() and fraction.isascii() and len(fraction) <= 6):
        return received
    micros = int(fraction.ljust(6, "0")) if dot else 0
    return _EPOCH + timedelta(seconds=int(whole), microseconds=micros)
