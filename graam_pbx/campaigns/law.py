"""The law of calling, as data: when, how often and whom a campaign may call, per country.

France first (Code de la consommation L223-1 s., décret 2022-1313, loi 2025-594); another
country is added as one more ``CallingLaw`` in ``LAWS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta
from decimal import Decimal

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
    """A stretch of a weekday (0 Monday … 6 Sunday) when calls are allowed, local time."""

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
