"""The base of every domain error: an HTTP status and a stable ``error_id`` (API contract)."""

from __future__ import annotations

from typing import Any, ClassVar


class GraamError(Exception):
    """A domain error; services raise it, ``app.py`` maps it to one JSON shape."""

    status_code: ClassVar[int] = 400
    error_id: ClassVar[str] = "bad-request"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(GraamError):
    status_code = 404
    error_id = "not-found"


class Conflict(GraamError):
    status_code = 409
    error_id = "conflict"
