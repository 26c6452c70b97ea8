"""What the console's forms share: an object's id as a form field or a path gives it."""

from __future__ import annotations

from graam_pbx.fields import MAX_ID

_ID_DIGITS = len(str(MAX_ID))


def form_id(raw: str) -> int | None:
    """The id ``raw`` names (1 to ``MAX_ID``); None when it cannot be one."""
    # isdecimal: what int() reads ("²" is a digit it refuses); the length keeps int() within
    # its own limit on digits.
    if raw.isdecimal() and len(raw) <= _ID_DIGITS and 1 <= int(raw) <= MAX_ID:
        return int(raw)
    return None
