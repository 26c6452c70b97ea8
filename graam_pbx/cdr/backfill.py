"""Reading Asterisk's own CSV log of CDRs from where this process left it, across a rotation.

Asterisk writes every CDR to ``graam-cdr.csv`` (``asterisk_conf/cdr_custom.conf``) whether
or not the control plane listens. The checkpoint says how far the log is known to be durable
here; a backfill reads from there to the end. When the file was rotated (renamed to
``graam-cdr.csv.1``, README) since the checkpoint, the rest of the rotated file is read first,
then the new file from its start. Blocking file I/O: called in a thread.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from graam_pbx.cdr.journal import Checkpoint

log = logging.getLogger(__name__)

LOG_NAME = "graam-cdr.csv"  # asterisk_conf/cdr_custom.conf writes /var/log/asterisk/graam-cdr.csv
ASTERISK_LOG = Path("/var/log/asterisk") / LOG_NAME
CHUNK_BYTES = 4 << 20
ROTATED_SUFFIX = ".1"
HEAD_MAX_BYTES = 64 << 10


@dataclass(frozen=True)
class LogPart:
    """One file to read from ``offset`` on, known by device, inode and first-line digest."""

    path: Path
    device: int
    inode: int
    offset: int
    head: str

    def is_file_of(self, checkpoint: Checkpoint) -> bool:
        return (self.device, self.inode) == (checkpoint.device, checkpoint.inode) and (
            not checkpoint.head or checkpoint.head == self.head
        )


@dataclass(frozen=True)
class LogChunk:
    """Rows read from one part, and the checkpoint once they are durable."""

    rows: list[list[str]]
    checkpoint: Checkpoint


def plan(log_path: Path, checkpoint: Checkpoint | None) -> list[LogPart]:
    """The parts to read, oldest first, to see every row written after ``checkpoint``."""
    current = _part(log_path)
    if checkpoint is None:
        return [current] if current else []
    if current is not None and current.is_file_of(checkpoint):
        if log_path.stat().st_size < checkpoint.offset:
            log.warning(
                "cdr log shorter than the checkpoint (truncated?): reading it from the start",
                extra={"path": str(log_path)},
            )
            return [current]
        return [dataclasses.replace(current, offset=checkpoint.offset)]
    parts: list[LogPart] = []
    rotated = _part(log_path.with_name(log_path.name + ROTATED_SUFFIX))
    if rotated is not None and rotated.is_file_of(checkpoint):
        parts.append(dataclasses.replace(rotated, offset=checkpoint.offset))
    else:
        log.warning(
            "cdr log rotated past the checkpoint and its rotated file is gone: CDRs written "
            "before the rotation and never seen are not backfilled",
            extra={"path": str(log_path)},
        )
    if current is not None:
        parts.append(current)
    return parts


def read_chunk(part: LogPart, *, max_bytes: int = CHUNK_BYTES) -> LogChunk | None:
    """Whole rows from ``part.offset`` on (at most about ``max_bytes``); None at the end."""
    try:
        with part.path.open("rb") as log_file:
            log_file.seek(part.offset)
            data = log_file.read(max_bytes)
    except FileNotFoundError:
        return None
    end = data.rfind(b"\n") + 1
    if end == 0:
        return None  # nothing, or a row Asterisk is still writing
    text = data[:end].decode("utf-8", errors="replace")
    head = part.head or _head(part.path)
    return LogChunk(
        rows=_rows(text),
        checkpoint=Checkpoint(part.device, part.inode, part.offset + end, head),
    )


def end_of(log_path: Path) -> Checkpoint | None:
    """A checkpoint at the current end of the log (None when there is no log)."""
    part = _part(log_path)
    if part is None:
        return None
    try:
        size = os.stat(log_path).st_size
    except FileNotFoundError:
        return None
    return Checkpoint(part.device, part.inode, size, part.head)


def _rows(text: str) -> list[list[str]]:
    try:
        return [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error:
        # One broken line must not hide the others: parse line by line (no field of ours
        # holds a newline).
        rows: list[list[str]] = []
        for line in text.splitlines():
            try:
                rows.extend(row for row in csv.reader([line]) if row)
            except csv.Error:
                rows.append([line])  # refused by the layout check, kept as a dead letter
        return rows


def _part(path: Path) -> LogPart | None:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return LogPart(path, status.st_dev, status.st_ino, 0, _head(path))


def _head(path: Path) -> str:
    """Digest of the file's first line ("" while it has none): rows are unique (uniqueid)."""
    try:
        with path.open("rb") as log_file:
            first = log_file.readline(HEAD_MAX_BYTES)
    except FileNotFoundError:
        return ""
    if not first.endswith(b"\n"):
        return ""
    return hashlib.sha256(first).hexdigest()
