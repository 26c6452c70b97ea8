"""Which passwords a person may choose (NIST SP 800-63B, 3.1.1.2).

Length, then a check against what attackers try first: common passwords, dictionary words,
keyboard walks, repeats, dates and the account's own names. The estimate is zxcvbn's (the
``zxcvbn`` package, MIT licence), whose feedback is the reason given for a refusal. No
composition rules (digits, symbols), no expiry: 800-63B advises against both.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Iterable

from zxcvbn import zxcvbn

from graam_pbx.errors import Invalid

MIN_LENGTH = 12
MAX_LENGTH = 200
# zxcvbn's score: 3 is "safely unguessable" (about 10^10 guesses), what an offline attack on
# a slow hash cannot reach cheaply.
MIN_SCORE = 3
# zxcvbn's work grows with the square of the length; past this, the beginning is judged.
_JUDGED_LENGTH = 128
# Words of the product itself, which an attacker of this service tries first.
_PRODUCT_WORDS = ("graam", "graampbx", "graam-pbx", "pbx", "asterisk", "admin", "operator")
# What must remain once those words and the account's names are taken out.
_MIN_OWN_REST = 8
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")


def password_problem(password: str, *, email: str | None, names: Iterable[str] = ()) -> str | None:
    """Why ``password`` may not be chosen by the account ``email`` (None: it may)."""
    if len(password) < MIN_LENGTH:
        return f"at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"at most {MAX_LENGTH} characters"
    if not password.strip():
        return "only spaces"
    lowered = password.lower()
    own_words = _own_words(email, names)
    local_part = (email or "").partition("@")[0].lower()
    if len(local_part) >= 3 and local_part in lowered:
        return "contains the name of the account's e-mail address"
    rest = lowered
    for word in sorted(own_words, key=len, reverse=True):
        rest = rest.replace(word, "")
    if len(rest) < _MIN_OWN_REST:
        return "made mostly of the account's or the product's names"
    result = zxcvbn(password[:_JUDGED_LENGTH], user_inputs=own_words, max_length=_JUDGED_LENGTH)
    if result["score"] >= MIN_SCORE:
        return None
    feedback = result["feedback"]
    said = [feedback.get("warning") or "", *feedback.get("suggestions", [])]
    reason = " ".join(s.strip() for s in said if s.strip())
    return f"too easy to guess: {reason or 'add another word or two'}"


async def ensure_strong(
    password: str, *, email: str | None, names: Iterable[str] = (), field: str = "body.password"
) -> None:
    """Refuse a weak password with a 422 naming ``field`` and why (judged off the loop)."""
    problem = await asyncio.to_thread(password_problem, password, email=email, names=list(names))
    if problem is not None:
        raise Invalid(field, problem)


def _own_words(email: str | None, names: Iterable[str]) -> list[str]:
    words: set[str] = set(_PRODUCT_WORDS)
    for text in [email or "", *names]:
        lowered = text.lower()
        words.add(lowered)
        local, _, domain = lowered.partition("@")
        words.update({local, domain.partition(".")[0]})
        words.update(_WORD_SPLIT.split(lowered))
    return sorted(w for w in words if len(w) >= 3)


def generate(email: str | None, names: Iterable[str] = ()) -> str:
    """A random password (24 characters) this module takes for the account ``email``."""
    names = list(names)
    while True:
        password = secrets.token_urlsafe(18)
        if password_problem(password, email=email, names=names) is None:
            return password
