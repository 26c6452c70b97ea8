"""HTTP byte ranges (RFC 9110 §14) of a stored recording: one range per request, which is
what audio players ask for when they seek."""

from __future__ import annotations

import re

_RANGE = re.compile(r"^bytes=(?P<start>[0-9]{0,18})-(?P<end>[0-9]{0,18})$")


class Unsatisfiable(ValueError):
    """A range that starts past the end (answered 416)."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte, inclusive, of a ``Range`` header for a file of ``size`` bytes;
    None when the whole file is to be sent (no header, several ranges, or one this parser
    does not know: a server may always answer such a request with the whole file)."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or (not match["start"] and not match["end"]):
        return None
    if not match["start"]:  # the last N bytes
        suffix = int(match["end"])
        if suffix == 0:
            raise Unsatisfiable(header)
        return max(0, size - suffix), size - 1
    first = int(match["start"])
    last = int(match["end"]) if match["end"] else size - 1
    if first >= size or last < first:
        raise Unsatisfiable(header)
    return first, min(last, size - 1)
