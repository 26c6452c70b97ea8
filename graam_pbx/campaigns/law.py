"""The law of calling, as data: when, how often and whom a campaign may call, per country.

France first (Code de la consommation L223-1 s., décret 2022-1313, loi 2025-594); another
country is added as one more ``CallingLaw`` in ``LAWS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

import holidays

# The rule ids recorded with every refusal to call (CallRefusal.rule, CampaignContact.last_rule).
RULE_CALLING_HOURS = "calling-hours"
RULE_PUBLIC_HOLIDAY = "public-holiday"
RULE_CAMPAIGN_HOURS = "campaign-hours"
RULE_MAX_ATTEMPTS = "max-attempts"
RULE_REFUSED_RECENTLY = "refused-recently"
RULE_DO_NOT_CALL = "do-not-call"
RULE_OPPOSITION_LIST = "opposition-list"
RULE_OPPOSITION_LIST_STALE = "opposition-list-stale"
RULE_CONSENT_MISSING = "consent-missing"
RULE_TENANT_SUSPENDED = "tenant-suspended"
RULE_DESTINATION_NOT_ALLOWED = "destination-not-allowed"


@dataclass(frozen=True, slots=True)
class Window:
    """A stretch of a weekday (0 Monday … 6 Sunday) when calls are allowed, local time.

    ``start`` is included and ``end`` is not: a window 10:00-13:00 allows 12:59:59, not 13:00.
    """

    weekday: int
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class CallingLaw:
    country: str  # ISO 3166 alpha-2 of the law
    windows: tuple[Window, ...]
    max_attempts: int  # per number, per tenant, across its campaigns, in attempts_period
    attempts_period: timedelta  # rolling
    refusal_block: timedelta  # no call for this long after the person refused
    max_abandon_rate: Decimal  # over both abandon periods, per campaign
    abandon_periods: tuple[timedelta, ...]
    abandon_delay_seconds: int  # answered with no agent within this: abandoned
    min_ring_seconds: int  # an unanswered call rings at least this long
    opposition_max_age: timedelta  # the opposition list must be checked this recently
    consent_required_from: date | None  # consumer calls need recorded consent from then
    # E.164 prefixes of the numbers reserved for automated calling systems (ARCEP).
    automated_caller_prefixes: tuple[str, ...]
    # E.164 country codes of the numbering plan the reserved ranges belong to.
    calling_codes: tuple[str, ...] = ()
    # The reserved ranges as people write them, for the reason given when a number is refused.
    automated_caller_ranges: str = ""


def _weekdays(start: time, end: time, days: range = range(5)) -> tuple[Window, ...]:
    return tuple(Window(day, start, end) for day in days)


# The overseas departments (and Saint-Barthélemy, Saint-Martin) share the French national
# numbering plan (0262… from Paris reaches Réunion) under their own E.164 country codes.
_FRENCH_PLAN_CODES = ("+33", "+262", "+590", "+594", "+596")
# ARCEP decision 2022-1583: the only numbers an automated calling system may present.
_METROPOLITAN_AUTOMATED = ("162", "163", "270", "271", "377", "378", "424", "425", "568", "569")
_METROPOLITAN_AUTOMATED_NON_GEOGRAPHIC = ("948", "949")
_OVERSEAS_AUTOMATED = ("9475", "9476", "9477", "9478", "9479")

FRANCE = CallingLaw(
    country="FR",
    # Décret 2022-1313 (Code de la consommation D223-8): Monday to Friday, 10:00-13:00 and
    # 14:00-20:00, never on a public holiday.
    windows=(_weekdays(time(10, 0), time(13, 0)) + _weekdays(time(14, 0), time(20, 0))),
    # Décret 2022-1313 (D223-9): at most 4 solicitations of one person in 30 days, none
    # for 60 days after the person refused.
    max_attempts=4,
    attempts_period=timedelta(days=30),
    refusal_block=timedelta(days=60),
    max_abandon_rate=Decimal("0.03"),
    abandon_periods=(timedelta(hours=24), timedelta(days=30)),
    abandon_delay_seconds=2,
    min_ring_seconds=15,
    # Code de la consommation L223-1: the list is cleaned against Bloctel at most 30 days
    # before calling.
    opposition_max_age=timedelta(days=30),
    # Loi 2025-594 of 30 June 2025: consumer canvassing needs prior consent from 11 August 2026.
    consent_required_from=date(2026, 8, 11),
    automated_caller_prefixes=(
        tuple(f"+33{p}" for p in _METROPOLITAN_AUTOMATED + _METROPOLITAN_AUTOMATED_NON_GEOGRAPHIC)
        + tuple(f"{code}{p}" for code in _FRENCH_PLAN_CODES for p in _OVERSEAS_AUTOMATED)
    ),
    calling_codes=_FRENCH_PLAN_CODES,
    automated_caller_ranges=(
        "01 62, 01 63, 02 70, 02 71, 03 77, 03 78, 04 24, 04 25, 05 68, 05 69, 09 48, 09 49 "
        "in metropolitan France and 09 475 to 09 479 overseas (ARCEP decision 2022-1583)"
    ),
)

LAWS: dict[str, CallingLaw] = {"FR": FRANCE}

# Regions under French consumer law: metropolitan France, the overseas departments and
# the overseas collectivities whose numbers phonenumbers gives a region of their own.
FRENCH_REGIONS = frozenset(
    {"FR", "GP", "MQ", "GF", "RE", "YT", "BL", "MF", "PM", "WF", "PF", "NC", "TF"}
)
# The holidays package's subdivision of France for each overseas region; metropolitan
# France has none (Alsace-Moselle's extra days cannot be told from a number).
_HOLIDAY_SUBDIVISIONS = {
    "GP": "971",
    "MQ": "972",
    "GF": "973",
    "RE": "974",
    "YT": "976",
    "BL": "BL",
    "MF": "MF",
    "PM": "PM",
    "WF": "WF",
    "PF": "PF",
    "NC": "NC",
    "TF": "TF",
}


def law_for_region(region: str) -> CallingLaw:
    """The law that applies to a number of ``region`` (ISO 3166); France's by default."""
    code = region.upper()
    if code in FRENCH_REGIONS:
        return FRANCE
    # Until a country's law is added to LAWS, calls to it follow French law, the law of
    # the platform's clients.
    return LAWS.get(code, FRANCE)


@lru_cache(maxsize=512)
def _holidays_of(region: str, year: int) -> frozenset[date]:
    code = region.upper()
    found: Any
    if code in FRENCH_REGIONS:
        found = holidays.country_holidays("FR", subdiv=_HOLIDAY_SUBDIVISIONS.get(code), years=year)
    elif code in holidays.list_supported_countries():
        found = holidays.country_holidays(code, years=year)
    else:
        # A country the package does not know: France's days, the law applied by default.
        found = holidays.country_holidays("FR", years=year)
    return frozenset(found.keys())


def is_public_holiday(region: str, day: date) -> bool:
    """Whether ``day`` is a public holiday where a number of ``region`` rings."""
    return day in _holidays_of(region, day.year)


def automated_caller_refusal(e164: str) -> str | None:
    """Why ``e164`` may not be the caller ID of automated calls, or None when it may."""
    for law in LAWS.values():
        if not any(e164.startswith(code) for code in law.calling_codes):
            continue
        if any(e164.startswith(prefix) for prefix in law.automated_caller_prefixes):
            return None
        return (
            f"{e164} is not in the ranges reserved for automated calling systems: "
            f"{law.automated_caller_ranges}"
        )
    return None


def windows_from_json(rows: list[dict[str, Any]]) -> tuple[Window, ...]:
    """Campaign calling hours as stored (``{"weekday", "start": "HH:MM", "end": "HH:MM"}``)."""
    return tuple(
        Window(
            int(row["weekday"]), time.fromisoformat(row["start"]), time.fromisoformat(row["end"])
        )
        for row in rows
    )
