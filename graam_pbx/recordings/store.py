"""Where recordings are kept once registered: a store of files by key.

``RecordingStore`` is what the rest of the code uses: put a file, read a byte range, know its
size, delete it. ``LocalStore`` keeps them in a directory (``GRAAM_RECORDINGS_DIR``, by default
``<data dir>/recordings``), readable by the control plane's user only; an object store is
another implementation of the same four calls. Blocking calls: run them in a thread.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol

_KEY = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


class RecordingStore(Protocol):
    def put(self, key: str, data: bytes) -> None:
        """Keep ``data`` under ``key`` durably (on disk before it returns), replacing any."""

    def size(self, key: str) -> int | None:
        """The stored file's size; None when there is none."""

    def read(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes from ``start`` (fewer at the end)."""

    def delete(self, key: str) -> None:
        """Forget ``key``; nothing happens when it is already gone."""


def checked_key(key: str) -> str:
    """A key that stays inside the store: plain names joined by '/', no '..'."""
    if not _KEY.fullmatch(key) or any(part in {".", ".."} for part in key.split("/")):
        raise ValueError(f"not a storage key: {key!r}")
    return key


class LocalStore:
    """Recordings in a directory of the control plane's host."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / checked_key(key)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def read(self, key: str, start: int, length: int) -> bytes:
        with self._path(key).open("rb") as file:
            file.seek(start)
            return file.read(length)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
