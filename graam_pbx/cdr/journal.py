"""The CDR worker's local, durable files: the journal, the dead letters and the CSV checkpoint.

The journal holds batches Postgres could not take, until they are replayed in order. It is a
directory of append-only segments (``<number>.jsonl``); each line is one batch, written with
one ``write`` and one ``fsync``, as ``<crc32 hex> <json list of records>``. A line without
its newline or whose checksum does not match was being written when the process died: it was
never acknowledged, and it is dropped when the journal is opened.

Every method here blocks (file I/O, fsync): the worker calls them in a thread.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graam_pbx.cdr.parse import CdrRecord, record_from_json, record_to_json

log = logging.getLogger(__name__)

SEGMENT_SUFFIX = ".jsonl"
SEGMENT_BYTES = 16 << 20
DEAD_LETTER_MAX_BYTES = 256 << 20


class JournalFull(Exception):
    """The journal reached its bound; the batch was not written."""


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _frame(payload: bytes) -> bytes:
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def _unframe(line: bytes) -> bytes | None:
    """The payload of a whole, intact line; None for a torn or corrupt one."""
    if not line.endswith(b"\n") or len(line) < 10 or line[8:9] != b" ":
        return None
    payload = line[9:-1]
    try:
        expected = int(line[:8], 16)
    except ValueError:
        return None
    return payload if zlib.crc32(payload) == expected else None


class Journal:
    """Append-only segments of batches, replayed oldest first, bounded by ``max_bytes``."""

    def __init__(self, directory: Path, *, max_bytes: int, segment_bytes: int = SEGMENT_BYTES):
        self.directory = directory
        self.max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._sizes: dict[int, int] = {}
        self._open_number: int | None = None  # the segment appends go to

    # ---- state ------------------------------------------------------------------------------

    @property
    def bytes(self) -> int:
        return sum(self._sizes.values())

    @property
    def empty(self) -> bool:
        return not any(self._sizes.values())

    @property
    def fill(self) -> float:
        return min(1.0, self.bytes / self.max_bytes) if self.max_bytes else 1.0

    def open(self) -> None:
        """Find the segments left by a previous run and cut off a torn last line."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.directory.glob(f"*{SEGMENT_SUFFIX}")):
            stem = path.name.removesuffix(SEGMENT_SUFFIX)
            if not stem.isdigit():
                continue
            self._sizes[int(stem)] = self._repair(path)
        self._open_number = None

    def _repair(self, path: Path) -> int:
        data = path.read_bytes()
        good = 0
        for line in data.splitlines(keepends=True):
            if _unframe(line) is None:
                break
            good += len(line)
        if good != len(data):
            log.warning(
                "cdr journal: dropping a torn batch at the end of a segment",
                extra={"segment": path.name, "bytes": len(data) - good},
            )
            with path.open("r+b") as segment:
                segment.truncate(good)
                os.fsync(segment.fileno())
        return good

    # ---- writing ----------------------------------------------------------------------------

    def append(self, records: Sequence[CdrRecord]) -> int:
        """Write one batch durably (fsync'd before returning); its size in bytes."""
        payload = json.dumps(
            [record_to_json(record) for record in records], separators=(",", ":")
        ).encode()
        line = _frame(payload)
        if self.bytes + len(line) > self.max_bytes:
            raise JournalFull(f"the CDR journal is full ({self.bytes} of {self.max_bytes} bytes)")
        number = self._open_number
        if number is None or self._sizes.get(number, 0) >= self._segment_bytes:
            number = max(self._sizes, default=0) + 1
            self._open_number = number
            self._sizes[number] = 0
            created = True
        else:
            created = False
        path = self._path(number)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_directory(self.directory)
        self._sizes[number] += len(line)
        return len(line)

    def seal(self) -> None:
        """Send further appends to a new segment, so the current one can be replayed whole."""
        self._open_number = None

    # ---- replaying --------------------------------------------------------------------------

    def segments(self) -> list[int]:
        """Segments holding batches, oldest first."""
        return sorted(number for number, size in self._sizes.items() if size)

    def read(self, number: int) -> list[CdrRecord]:
        """Every record of a segment, in the order they were written."""
        records: list[CdrRecord] = []
        with self._path(number).open("rb") as segment:
            for line in segment:
                payload = _unframe(line)
                if payload is None:
                    break
                records.extend(record_from_json(item) for item in json.loads(payload))
        return records

    def remove(self, number: int) -> None:
        """Forget a segment whose records are all in Postgres."""
        self._path(number).unlink(missing_ok=True)
        self._sizes.pop(number, None)
        if self._open_number == number:
            self._open_number = None

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:012d}{SEGMENT_SUFFIX}"


class DeadLetters:
    """CDRs that cannot be written, each kept with its reason, one JSON object per line."""

    def __init__(self, path: Path, *, max_bytes: int = DEAD_LETTER_MAX_BYTES) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self.count = 0

    def add(self, reason: str, detail: str, source: str, content: Any) -> bool:
        """Keep one refused CDR (fsync'd); False when the file is at its bound."""
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="microseconds"),
            "reason": reason,
            "detail": detail,
            "source": source,
            "content": content,
        }
        line = json.dumps(entry, ensure_ascii=False).encode("utf-8", "backslashreplace") + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            if os.fstat(fd).st_size + len(line) > self._max_bytes:
                return False
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.count += 1
        return True

    def entries(self) -> list[dict[str, Any]]:
        """Every dead letter kept so far (for operators and tests)."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]


@dataclass(frozen=True)
class Checkpoint:
    """How far Asterisk's CSV log is known to be durable here (Postgres or the journal).

    The file is known by its device and inode, and by a digest of its first line: a file
    made after two rotations may get the inode of one since deleted.
    """

    device: int
    inode: int
    offset: int
    head: str = ""  # sha256 of the first line; "" when the file had none yet

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        try:
            data = json.loads(path.read_text())
            return cls(
                int(data["device"]),
                int(data["inode"]),
                int(data["offset"]),
                str(data.get("head", "")),
            )
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            log.warning(
                "cdr checkpoint unreadable, reading the CSV log again", extra={"path": path}
            )
            return None

    def save(self, path: Path) -> None:
        """Replace the checkpoint atomically (write, fsync, rename, fsync the directory)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(
                fd,
                json.dumps(
                    {
                        "device": self.device,
                        "inode": self.inode,
                        "offset": self.offset,
                        "head": self.head,
                    }
                ).encode(),
            )
            os.fsync(fd)
        finally:
            os.close(fd)
        temporary.replace(path)
        _fsync_directory(path.parent)
