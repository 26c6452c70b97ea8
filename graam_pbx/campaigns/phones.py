"""Contact numbers to E.164, with the region and the time zones they ring in."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import timezone as number_time_zones

# The regions of the French national numbering plan: a national number (0…) written in any
# of them reaches the same line, wherever it is.
FRENCH_PLAN_REGIONS = frozenset({"FR", "RE", "YT", "GP", "MQ", "GF", "BL", "MF"})

# National prefixes the French plan gives the overseas departments (fixed and mobile), and
# the region to read them in. phonenumbers reads 0262… in a French list as a metropolitan
# +33 2 62… (invalid) and 0596… as a valid metropolitan number: a Martinique contact would
# be called on Paris time.
_OVERSEAS_NATIONAL_PREFIXES = {
    "0262": "RE",
    "0263": "RE",
    "0692": "RE",
    "0693": "RE",
    "0269": "YT",
    "0639": "YT",
    "0590": "GP",
    "0690": "GP",
    "0691": "GP",
    "0594": "GF",
    "0694": "GF",
    "0596": "MQ",
    "0696": "MQ",
    "0697": "MQ",
}

# Time zones of French regions, exactly: phonenumbers gives the Réunion mobiles (+262 692)
# Mayotte's zone too, one hour apart, and no zone at all for some Martinique numbers.
REGION_TIME_ZONES: dict[str, tuple[str, ...]] = {
    "FR": ("Europe/Paris",),
    "RE": ("Indian/Reunion",),
    "YT": ("Indian/Mayotte",),
    "GP": ("America/Guadeloupe",),
    "MQ": ("America/Martinique",),
    "GF": ("America/Cayenne",),
    "BL": ("America/St_Barthelemy",),
    "MF": ("America/Marigot",),
    "PM": ("America/Miquelon",),
    "WF": ("Pacific/Wallis",),
    "NC": ("Pacific/Noumea",),
    "TF": ("Indian/Kerguelen",),
    # French Polynesia spans three zones and its numbers do not tell which.
    "PF": ("Pacific/Tahiti", "Pacific/Marquesas", "Pacific/Gambier"),
}

_UNKNOWN_ZONE = "Etc/Unknown"
_SEPARATORS = re.compile(r"[\s.\-/()]")
_MAX_RAW_LENGTH = 40
_E164_MAX_LENGTH = 16  # "+" and 15 digits


@dataclass(frozen=True, slots=True)
class ContactNumber:
    """A number in E.164, its region (ISO 3166, "RE" for Réunion) and its candidate zones."""

    number: str
    region: str
    time_zones: tuple[str, ...]


class InvalidNumber(ValueError):
    """A number that cannot be called; its str is the reason."""


def _parse_region(digits: str, default_region: str) -> str:
    # A 10-digit national number of the French plan: its prefix tells where it rings,
    # whichever French region the list is in.
    if default_region in FRENCH_PLAN_REGIONS and re.fullmatch(r"0[1-9][0-9]{8}", digits):
        return _OVERSEAS_NATIONAL_PREFIXES.get(digits[:4], "FR")
    return default_region


def _time_zones(number: phonenumbers.PhoneNumber, region: str) -> tuple[str, ...]:
    if region in REGION_TIME_ZONES:
        return REGION_TIME_ZONES[region]
    zones = tuple(
        zone for zone in number_time_zones.time_zones_for_number(number) if zone != _UNKNOWN_ZONE
    )
    if zones:
        return zones
    return tuple(
        zone
        for zone in number_time_zones._country_level_time_zones_for_number(number)
        if zone != _UNKNOWN_ZONE
    )


def parse_contact_number(raw: str, default_region: str) -> ContactNumber:
    """``raw`` as a callable number; national formats are read as ``default_region``'s."""
    text = raw.strip()
    if not text:
        raise InvalidNumber("the number is empty")
    if len(text) > _MAX_RAW_LENGTH:
        raise InvalidNumber(f"longer than {_MAX_RAW_LENGTH} characters")
    digits = _SEPARATORS.sub("", text)
    region_hint: str | None = default_region.strip().upper()
    if region_hint not in phonenumbers.SUPPORTED_REGIONS:
        if not digits.startswith("+"):
            raise InvalidNumber(f"unknown default region {default_region!r}")
        region_hint = None  # an international number needs none
    try:
        parsed = phonenumbers.parse(
            digits, None if region_hint is None else _parse_region(digits, region_hint)
        )
    except phonenumbers.NumberParseException as err:
        raise InvalidNumber("not a phone number") from err
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber("not a valid number of its country")
    region = phonenumbers.region_code_for_number(parsed)
    if region is None or region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidNumber("not a number of a country")
    zones = _time_zones(parsed, region)
    if not zones:
        # Without a time zone the legal calling hours cannot be checked.
        raise InvalidNumber("no time zone is known for this number")
    number = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if len(number) > _E164_MAX_LENGTH:
        # phonenumbers accepts some German numbers longer than E.164's 15 digits.
        raise InvalidNumber("longer than the 15 digits of an international number")
    return ContactNumber(number, region, zones)
