"""May this number be called now? The law of calling applied to one contact; pure, no I/O.

Every refusal names its rule (``law.RULE_*``) and, when the call becomes lawful later,
from when (``Verdict.until``), so that the dialer records it and waits instead of retrying.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from graam_pbx.campaigns.law import (
    RULE_CALLING_HOURS,
    RULE_CAMPAIGN_HOURS,
    RULE_CONSENT_MISSING,
    RULE_DO_NOT_CALL,
    RULE_MAX_ATTEMPTS,
    RULE_OPPOSITION_LIST,
    RULE_OPPOSITION_LIST_STALE,
    RULE_PUBLIC_HOLIDAY,
    RULE_REFUSED_RECENTLY,
    Window,
    is_public_holiday,
    law_for_region,
)
from graam_pbx.campaigns.models import Audience
from graam_pbx.campaigns.phones import REGION_TIME_ZONES

# How far next_allowed_start looks: beyond a year, the hours allow no call at all.
_HORIZON = timedelta(days=400)


@dataclass(frozen=True, slots=True)
class ContactFacts:
    """What the tenant knows about one number when it considers calling it."""

    number: str
    region: str
    time_zones: tuple[str, ...]
    on_do_not_call: bool
    on_opposition_list: bool
    # The tenant's attempts to this number, any campaign, within the law's period.
    attempts: tuple[datetime, ...]
    # The tenant's latest refusal disposition for this number.
    refused_at: datetime | None
    consent_at: datetime | None


@dataclass(frozen=True, slots=True)
class CampaignRules:
    """The campaign's settings the law depends on."""

    audience: str
    require_consent: bool
    calling_hours: tuple[Window, ...] = ()  # empty: the law's hours
    opposition_list_date: date | None = None  # the tenant's latest opposition list


@dataclass(frozen=True, slots=True)
class Verdict:
    """Allowed, or refused by ``rule`` until ``until`` (None: never in this campaign)."""

    allowed: bool
    rule: str | None
    until: datetime | None


ALLOWED = Verdict(True, None, None)


class NeverAllowed(ValueError):
    """The calling hours allow no call within a year (empty or disjoint windows)."""


def effective_windows(
    law_windows: Sequence[Window], campaign_hours: Sequence[Window]
) -> tuple[Window, ...]:
    """The campaign's hours within the law's (the law's alone when the campaign sets none)."""
    if not campaign_hours:
        return tuple(law_windows)
    found: list[Window] = []
    for legal in law_windows:
        for own in campaign_hours:
            if own.weekday != legal.weekday:
                continue
            start, end = max(legal.start, own.start), min(legal.end, own.end)
            if start < end:
                found.append(Window(legal.weekday, start, end))
    return tuple(sorted(found, key=lambda w: (w.weekday, w.start)))


# How soon a contact refused for a stale opposition list is looked at again: once the tenant
# imports a fresh list, calls resume within this.
STALE_LIST_RECHECK = timedelta(hours=1)


def check_call(facts: ContactFacts, rules: CampaignRules, now: datetime) -> Verdict:
    """Whether ``facts.number`` may be called at ``now`` under its region's law and the rules."""
    if now.tzinfo is None:
        raise ValueError("now must carry its time zone")
    # In UTC, so that adding 30 or 60 days adds exactly that (a ZoneInfo datetime adds
    # wall-clock days across a DST change).
    now = now.astimezone(UTC)
    law = law_for_region(facts.region)
    consumers = rules.audience == Audience.CONSUMERS
    if facts.on_do_not_call:
        return Verdict(False, RULE_DO_NOT_CALL, None)
    if consumers and facts.on_opposition_list:
        return Verdict(False, RULE_OPPOSITION_LIST, None)
    if consumers and _opposition_list_stale(
        rules.opposition_list_date, law.opposition_max_age, now
    ):
        # The whole campaign waits for the tenant's next check, not the contact for good.
        return Verdict(False, RULE_OPPOSITION_LIST_STALE, now + STALE_LIST_RECHECK)
    # Consumer cold calls need the person's prior consent since the law's date (loi
    # 2025-594 for France); a campaign may ask for it in any case.
    consent_by_law = (
        consumers
        and law.consent_required_from is not None
        and now.date() >= law.consent_required_from
    )
    needs_consent = rules.require_consent or consent_by_law
    if needs_consent and (facts.consent_at is None or facts.consent_at > now):
        return Verdict(False, RULE_CONSENT_MISSING, None)
    if facts.refused_at is not None:
        blocked_until = facts.refused_at.astimezone(UTC) + law.refusal_block
        if now < blocked_until:
            return Verdict(False, RULE_REFUSED_RECENTLY, blocked_until)
    # An attempt stamped after now (another control plane's clock) counts as well.
    counted = sorted(a.astimezone(UTC) for a in facts.attempts if a > now - law.attempts_period)
    if len(counted) >= law.max_attempts:
        # Allowed again once enough of them have left the rolling period.
        return Verdict(
            False, RULE_MAX_ATTEMPTS, counted[len(counted) - law.max_attempts] + law.attempts_period
        )
    zones = facts.time_zones or REGION_TIME_ZONES.get(facts.region.upper(), ())
    if not zones:
        return Verdict(False, RULE_CALLING_HOURS, None)
    windows = effective_windows(law.windows, rules.calling_hours)
    local_times = [now.astimezone(_zone(name)) for name in zones]
    if any(is_public_holiday(facts.region, local.date()) for local in local_times):
        rule = RULE_PUBLIC_HOLIDAY
    elif not all(_in_windows(local, law.windows) for local in local_times):
        rule = RULE_CALLING_HOURS
    elif not all(_in_windows(local, windows) for local in local_times):
        rule = RULE_CAMPAIGN_HOURS
    else:
        return ALLOWED
    try:
        until: datetime | None = next_allowed_start(facts.region, zones, windows, now)
    except NeverAllowed:
        until = None
    return Verdict(False, rule, until)


def next_allowed_start(
    facts_region: str, time_zones: tuple[str, ...], windows: tuple[Window, ...], after: datetime
) -> datetime:
    """The first instant from ``after`` on that is in ``windows`` in every zone, on no holiday.

    Raises NeverAllowed when there is none within a year.
    """
    if after.tzinfo is None:
        raise ValueError("after must carry its time zone")
    if not time_zones or not windows:
        raise NeverAllowed("no calling hours")
    zones = [_zone(name) for name in time_zones]
    moment = after.astimezone(UTC)
    limit = moment + _HORIZON
    while moment <= limit:
        later: list[datetime] = []
        for zone in zones:
            if _allowed_in_zone(moment, zone, facts_region, windows):
                continue
            start = _next_start_in_zone(moment, zone, facts_region, windows, limit)
            if start is None:
                raise NeverAllowed("no calling hours within a year")
            later.append(start)
        if not later:
            return moment
        # Each zone that refuses stays refused until its own next start: none of the
        # instants before the latest of them is allowed everywhere.
        moment = max(later)
    raise NeverAllowed("no calling hours within a year")


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _opposition_list_stale(list_date: date | None, max_age: timedelta, now: datetime) -> bool:
    if list_date is None:
        return True
    return list_date + max_age < now.astimezone(UTC).date()


def _in_windows(local: datetime, windows: Sequence[Window]) -> bool:
    day, wall = local.weekday(), local.time()
    return any(w.weekday == day and w.start <= wall < w.end for w in windows)


def _allowed_in_zone(
    moment: datetime, zone: ZoneInfo, region: str, windows: Sequence[Window]
) -> bool:
    local = moment.astimezone(zone)
    return _in_windows(local, windows) and not is_public_holiday(region, local.date())


def _next_start_in_zone(
    moment: datetime, zone: ZoneInfo, region: str, windows: Sequence[Window], limit: datetime
) -> datetime | None:
    day = moment.astimezone(zone).date()
    last = limit.astimezone(zone).date()
    while day <= last:
        if not is_public_holiday(region, day):
            starts = [
                start
                for w in windows
                if w.weekday == day.weekday()
                for start in _window_starts(day, w, zone)
                if start > moment
            ]
            if starts:
                return min(starts)
        day += timedelta(days=1)
    return None


def _window_starts(day: date, window: Window, zone: ZoneInfo) -> list[datetime]:
    """The instants a zone's clock enters ``window`` on ``day``: once, none when the window
    lies in a spring-forward gap, twice when its start is repeated by a fall-back."""
    first = datetime.combine(day, window.start, tzinfo=zone)
    second = datetime.combine(day, window.start, tzinfo=zone).replace(fold=1)
    first_utc, second_utc = first.astimezone(UTC), second.astimezone(UTC)
    if _wall(first_utc, zone) == (day, window.start):
        if second_utc > first_utc:  # the start occurs twice (fall-back)
            return [first_utc, second_utc]
        return [first_utc]
    # The start falls in a spring-forward gap: the clock enters the window at the
    # transition, found between the two readings of the missing wall time.
    low, high = min(first_utc, second_utc), max(first_utc, second_utc)
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if _wall(middle, zone) >= (day, window.start):
            high = middle
        else:
            low = middle
    entered = high.replace(microsecond=0)
    if _wall(entered, zone) < (day, window.start):
        entered += timedelta(seconds=1)
    local_day, local_wall = _wall(entered, zone)
    if local_day == day and local_wall < window.end:
        return [entered]
    return []


def _wall(moment: datetime, zone: ZoneInfo) -> tuple[date, time]:
    local = moment.astimezone(zone)
    return local.date(), local.time().replace(tzinfo=None)
