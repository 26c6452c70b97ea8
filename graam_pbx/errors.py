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


class Unauthorized(GraamError):
    status_code = 401
    error_id = "unauthorized"


class Forbidden(GraamError):
    status_code = 403
    error_id = "forbidden"


class PreconditionFailed(GraamError):
    """The object changed since the client read it (If-Match does not match its ETag)."""

    status_code = 412
    error_id = "precondition-failed"


class Invalid(GraamError):
    """Input that parses but is not acceptable; ``details.errors`` names each field."""

    status_code = 422
    error_id = "validation-failed"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", errors=[{"field": field, "reason": reason}])


class Throttled(GraamError):
    status_code = 429
    error_id = "throttled"


class Unavailable(GraamError):
    """Cannot be served now (overloaded): ``details.retry_after`` says in how many seconds."""

    status_code = 503
    error_id = "unavailable"


class DatabaseBusy(Unavailable):
    """No pooled database connection came free in time: the process is overloaded."""

    error_id = "database-busy"
