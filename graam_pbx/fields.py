"""Validated field types every ``schemas.py`` shares: strict alphabets, never free-for-all.

Anything that can reach an Asterisk config file is either one of these strict types or a
display text that the renderer escapes for its position.
"""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from datetime import datetime
from typing import Annotated, Any

import phonenumbers
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

MAX_ID = 2**63 - 1  # ids are Postgres bigints: a larger one is refused, never sent to the server

# Strict: a JSON body's id is a number, never "1" nor true (what the schema says, and what
# a client sending anything else would want to hear).
ObjectId = Annotated[int, Field(ge=1, le=MAX_ID, strict=True, examples=[1])]
# Strict too: a JSON boolean, never 0, 1, "yes" nor "true".
Flag = Annotated[bool, Field(strict=True)]


_PLAIN_NUMBER = re.compile(r"^\s*[-+]?[0-9.]+([eE][-+]?[0-9]+)?\s*$")


def _iso_datetime_only(value: Any) -> Any:
    # pydantic also reads a number as seconds since 1970; the API documents ISO 8601 only.
    if isinstance(value, int | float) or (isinstance(value, str) and _PLAIN_NUMBER.match(value)):
        raise ValueError("write an ISO 8601 date and time, e.g. 2026-01-31T09:00:00+01:00")
    return value


# A date and time as ISO 8601 text (a time zone offset, else UTC is not assumed: naive).
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_datetime_only)]


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may not be null: leave it out to keep the current value")
    return value


# In an update, an absent field keeps its value. Mark with NotNull each optional field whose
# column is NOT NULL (``name: Annotated[ObjectName | None, NotNull] = None``): an explicit null
# is then a 422 naming the field, never a database error.
NotNull = BeforeValidator(_not_null)

# Lower-case identifiers: tenant slugs, object names, SIP user parts.
Slug = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$"),
    Field(examples=["acme"], description="a-z, 0-9 and '-', 2 to 63 characters"),
]
ObjectName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$"),
    Field(examples=["sales"], description="a-z, 0-9, '_' and '-', 1 to 64 characters"),
]
Extension = Annotated[
    str,
    StringConstraints(pattern=r"^[1-9][0-9]{1,5}$"),
    Field(examples=["201"], description="2 to 6 digits, not starting with 0"),
]
# What the phones dial after "*" for their feature codes (dialplans/tenant.conf.j2): exact
# codes, and the prefixes a code takes digits after (*47<reason>, *72<number>).
PHONE_CODES = frozenset({"45", "46", "47", "73", "78", "79"})
PHONE_CODE_PREFIXES = ("47", "72")


def _not_a_phone_code(number: str) -> str:
    if number in PHONE_CODES or number.startswith(PHONE_CODE_PREFIXES):
        raise ValueError(
            f"*{number} would be a phone's feature code (*45, *46, *47…, *72…, *73, *78, *79)"
        )
    return number


# A voicemail box's number: its owner dials *<number> to listen to it.
BoxNumber = Annotated[
    Extension,
    AfterValidator(_not_a_phone_code),
    Field(
        description="2 to 6 digits, not starting with 0 nor a phone code (45-47, 72, 73, 78, 79)"
    ),
]
Pin = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{4,12}$"),
    Field(examples=["4711"], description="4 to 12 digits"),
]
Digit = Annotated[
    str, StringConstraints(pattern=r"^[0-9*#]$"), Field(examples=["1"], description="0-9, * or #")
]
Country = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{2}$"),
    AfterValidator(lambda code: _known_region(code)),
    Field(examples=["FR"], description="ISO 3166-1 alpha-2 country code"),
]


def _known_region(code: str) -> str:
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError("not a country with a telephone numbering plan")
    return code


# Bidirectional overrides and isolates can make a name display as something else.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _display_text(text: str) -> str:
    if any(
        unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn", "Zl", "Zp") or c in _BIDI_CONTROLS
        for c in text
    ):
        raise ValueError("control characters (newlines included) are not allowed")
    if text != text.strip():
        raise ValueError("no leading or trailing spaces")
    return text


DisplayText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    AfterValidator(_display_text),
    Field(examples=["Acme Support"]),
]

NAME_MAX = 100  # the String(100) name columns: voicemail boxes, external numbers


def _name_short_enough(text: str) -> str:
    if len(text) > NAME_MAX:
        raise ValueError(f"must be at most {NAME_MAX} characters")
    return text


# A display text kept in a String(100) name column.
ShortDisplayText = Annotated[
    DisplayText,
    AfterValidator(_name_short_enough),
    Field(json_schema_extra={"maxLength": NAME_MAX}),
]

_EMAIL = re.compile(r"^[a-z0-9._%+-]{1,64}@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,63}$")


def email_address(text: str) -> str:
    """The address in its stored form (lower case), or ValueError."""
    value = text.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("not an e-mail address")
    return value


Email = Annotated[str, AfterValidator(email_address), Field(examples=["ana@acme.example"])]


def _timezone(name: str) -> str:
    if name not in zoneinfo.available_timezones():
        raise ValueError("not an IANA time zone")
    return name


Timezone = Annotated[str, AfterValidator(_timezone), Field(examples=["Europe/Paris"])]


def _e164(text: str) -> str:
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise ValueError("not a number in E.164 form (+ and country code)") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid telephone number")
    formatted = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if formatted != text:
        raise ValueError(f"write it in E.164 form: {formatted}")
    return formatted


E164 = Annotated[
    str,
    StringConstraints(max_length=16),
    AfterValidator(_e164),
    Field(examples=["+33142685300"], description="E.164: '+', country code, number"),
]


def _message_text(text: str) -> str:
    # Several lines and tabs belong to a message; other control characters do not.
    if any(
        (unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn") and c not in "\n\r\t")
        or c in _BIDI_CONTROLS
        for c in text
    ):
        raise ValueError("control characters are not allowed")
    text = text.strip()
    if not text:
        raise ValueError("may not be empty")
    return text


# A free text of several lines written by a person (a support message, a notice's body):
# shown in pages (escaped there), never written into Asterisk configuration.
MessageText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=10_000),
    AfterValidator(_message_text),
    Field(examples=["Calls to our main number ring nobody since 9:00."]),
]
