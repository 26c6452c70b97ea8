"""The law of calling applied to one contact (``campaigns.compliance``), checked against a
plain restatement of the French rules: local weekday and time, and the 2026 holiday lists."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graam_pbx.campaigns.compliance import (
    STALE_LIST_RECHECK,
    CampaignRules,
    ContactFacts,
    NeverAllowed,
    Verdict,
    check_call,
    effective_windows,
    next_allowed_start,
)
from graam_pbx.campaigns.law import (
    FRANCE,
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
)
from graam_pbx.campaigns.phones import REGION_TIME_ZONES, parse_contact_number

# ---- the restatement ---------------------------------------------------------------------

_NATIONAL_2026 = {
    date(2026, 1, 1),  # Jour de l'an
    date(2026, 4, 6),  # Lundi de Pâques
    date(2026, 5, 1),  # Fête du travail
    date(2026, 5, 8),  # Victoire 1945
    date(2026, 5, 14),  # Ascension
    date(2026, 5, 25),  # Lundi de Pentecôte
    date(2026, 7, 14),  # Fête nationale
    date(2026, 8, 15),  # Assomption
    date(2026, 11, 1),  # Toussaint
    date(2026, 11, 11),  # Armistice
    date(2026, 12, 25),  # Noël
    date(2027, 1, 1),  # already the new year east of UTC on 31 December
}
HOLIDAYS_2026 = {
    "FR": _NATIONAL_2026,
    # Abolition of slavery, 20 December in Réunion.
    "RE": _NATIONAL_2026 | {date(2026, 12, 20)},
    # Mi-Carême, Good Friday, abolition of slavery (27 May), Victor Schœlcher (21 July).
    "GP": _NATIONAL_2026
    | {date(2026, 3, 12), date(2026, 4, 3), date(2026, 5, 27), date(2026, 7, 21)},
}
CONTACTS = {
    "FR": parse_contact_number("06 12 34 56 78", "FR"),
    "RE": parse_contact_number("0262 12 34 56", "FR"),
    "GP": parse_contact_number("0590 12 34 56", "FR"),
}
LEGAL_HOURS = ((time(10), time(13)), (time(14), time(20)))


def lawful(
    instant: datetime, region: str, zones: tuple[str, ...], windows: tuple[Window, ...]
) -> bool:
    """Allowed in every zone: a weekday and time of ``windows``, not a holiday of 2026."""
    for zone in zones:
        local = instant.astimezone(ZoneInfo(zone))
        if local.date() in HOLIDAYS_2026[region]:
            return False
        wall = local.time()
        if not any(w.weekday == local.weekday() and w.start <= wall < w.end for w in windows):
            return False
    return True


def legally_callable(instant: datetime, zone: str, region: str) -> bool:
    """The law in words: Monday to Friday, 10-13 and 14-20 local time, no public holiday."""
    local = instant.astimezone(ZoneInfo(zone))
    wall = local.time()
    return (
        local.weekday() < 5
        and local.date() not in HOLIDAYS_2026[region]
        and any(start <= wall < end for start, end in LEGAL_HOURS)
    )


# ---- facts ---------------------------------------------------------------------------------

FRESH_LIST = date(2026, 12, 31)  # an opposition list never stale within 2026
CONSUMERS = CampaignRules("consumers", require_consent=False, opposition_list_date=FRESH_LIST)
PARIS = ZoneInfo("Europe/Paris")
CONSENTED = datetime(2025, 6, 1, tzinfo=UTC)


def facts(region: str = "FR", **changes: Any) -> ContactFacts:
    contact = CONTACTS[region]
    base = ContactFacts(
        number=contact.number,
        region=contact.region,
        time_zones=contact.time_zones,
        on_do_not_call=False,
        on_opposition_list=False,
        attempts=(),
        refused_at=None,
        # Consumer calls need recorded consent from 2026-08-11: these people gave it.
        consent_at=CONSENTED,
    )
    return replace(base, **changes)


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS).astimezone(UTC)


def instants_2026(count: int, seed: int) -> list[datetime]:
    """``count`` random instants of 2026, then every holiday at noon in each contact's zone."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    seconds = int((datetime(2027, 1, 1, tzinfo=UTC) - start).total_seconds())
    found = [start + timedelta(seconds=rng.randrange(seconds)) for _ in range(count)]
    for region, days in HOLIDAYS_2026.items():
        zone = ZoneInfo(CONTACTS[region].time_zones[0])
        found += [datetime.combine(day, time(12), tzinfo=zone).astimezone(UTC) for day in days]
    return found


# ---- calling hours and holidays --------------------------------------------------------------


def test_the_contacts_ring_where_they_live() -> None:
    assert CONTACTS["FR"].time_zones == ("Europe/Paris",)
    assert CONTACTS["RE"].time_zones == ("Indian/Reunion",)
    assert CONTACTS["GP"].time_zones == ("America/Guadeloupe",)


@pytest.mark.parametrize("region", ["FR", "RE", "GP"])
def test_no_call_outside_the_legal_windows_over_10000_instants_of_2026(region: str) -> None:
    contact = facts(region)
    zone = contact.time_zones[0]
    allowed = refused = 0
    for instant in instants_2026(10_000, seed=2026):
        verdict = check_call(contact, CONSUMERS, instant)
        assert verdict.allowed == legally_callable(instant, zone, region), (instant, verdict)
        if verdict.allowed:
            allowed += 1
            continue
        refused += 1
        local_day = instant.astimezone(ZoneInfo(zone)).date()
        expected = RULE_PUBLIC_HOLIDAY if local_day in HOLIDAYS_2026[region] else RULE_CALLING_HOURS
        assert verdict.rule == expected, (instant, verdict)
        # The verdict says when to come back: a lawful instant, later.
        assert verdict.until is not None and verdict.until > instant
        if verdict.until.year == 2026:
            assert legally_callable(verdict.until, zone, region), (instant, verdict)
    # Both answers were exercised (about a fifth of the week is callable).
    assert allowed > 1500 and refused > 6000


def test_every_holiday_at_noon_is_refused_in_its_own_region_only() -> None:
    for region, days in HOLIDAYS_2026.items():
        zone = ZoneInfo(CONTACTS[region].time_zones[0])
        for day in sorted(days):
            noon = datetime.combine(day, time(12), tzinfo=zone)
            verdict = check_call(facts(region), CONSUMERS, noon)
            assert verdict == Verdict(False, RULE_PUBLIC_HOLIDAY, verdict.until), (region, day)
    # Réunion's 20 December is a Sunday in 2026; Guadeloupe's 27 May a Wednesday.
    may_27_noon = datetime(2026, 5, 27, 12, tzinfo=PARIS)
    assert check_call(facts("FR"), CONSUMERS, may_27_noon).allowed
    assert not check_call(
        facts("GP"), CONSUMERS, datetime(2026, 5, 27, 12, tzinfo=ZoneInfo("America/Guadeloupe"))
    ).allowed


def test_the_same_instant_is_judged_on_the_contact_clock() -> None:
    # Friday 4 December 2026, 06:30 UTC: 07:30 in Paris, 10:30 in Réunion, 02:30 in Guadeloupe.
    instant = datetime(2026, 12, 4, 6, 30, tzinfo=UTC)
    assert check_call(facts("RE"), CONSUMERS, instant).allowed
    paris_verdict = check_call(facts("FR"), CONSUMERS, instant)
    assert paris_verdict == Verdict(False, RULE_CALLING_HOURS, paris(2026, 12, 4, 10, 0))
    guadeloupe = check_call(facts("GP"), CONSUMERS, instant)
    assert guadeloupe.until == datetime(2026, 12, 4, 14, 0, tzinfo=UTC)  # 10:00 at UTC-4


def test_window_edges_start_included_end_excluded() -> None:
    monday = date(2026, 3, 2)
    for wall, allowed in [
        (time(9, 59, 59), False),
        (time(10), True),
        (time(12, 59, 59), True),
        (time(13), False),
        (time(13, 59, 59), False),
        (time(14), True),
        (time(19, 59, 59), True),
        (time(20), False),
    ]:
        instant = datetime.combine(monday, wall, tzinfo=PARIS)
        assert check_call(facts(), CONSUMERS, instant).allowed is allowed, wall


def test_campaign_hours_narrow_the_law_and_never_widen_it() -> None:
    own = tuple(Window(day, time(8), time(11)) for day in range(7))
    rules = CampaignRules("consumers", False, own, FRESH_LIST)
    assert effective_windows(FRANCE.windows, own) == tuple(
        Window(day, time(10), time(11)) for day in range(5)
    )
    assert check_call(facts(), rules, paris(2026, 3, 2, 10, 30)).allowed
    # Saturday 08:30: the campaign's hours, not the law's.
    assert check_call(facts(), rules, paris(2026, 3, 7, 8, 30)).rule == RULE_CALLING_HOURS
    late = check_call(facts(), rules, paris(2026, 3, 2, 11, 30))
    assert late == Verdict(False, RULE_CAMPAIGN_HOURS, paris(2026, 3, 3, 10, 0))


def test_campaign_hours_outside_the_law_never_allow_a_call() -> None:
    sundays = (Window(6, time(10), time(12)),)
    rules = CampaignRules("consumers", False, sundays, FRESH_LIST)
    verdict = check_call(facts(), rules, paris(2026, 3, 2, 10, 30))
    assert verdict == Verdict(False, RULE_CAMPAIGN_HOURS, None)
    with pytest.raises(NeverAllowed):
        next_allowed_start("FR", ("Europe/Paris",), (), paris(2026, 3, 2, 10, 30))


def test_a_number_with_several_zones_needs_every_zone_in_its_hours() -> None:
    both = facts("FR", time_zones=("Europe/Paris", "Indian/Reunion"))
    # Monday 2 March 2026 (Réunion +4, Paris +1: three hours apart): 10:30 in Paris is 13:30
    # in Réunion, 14:30 in Réunion is 11:30 in Paris.
    assert not check_call(both, CONSUMERS, paris(2026, 3, 2, 10, 30)).allowed
    assert check_call(both, CONSUMERS, paris(2026, 3, 2, 11, 30)).allowed
    # 22:00 UTC is lunch in Gambier (13:00); the three clocks next agree at 00:00 UTC, when
    # Tahiti's afternoon starts (14:00).
    lunch = check_call(both, CONSUMERS, paris(2026, 3, 2, 13, 30))  # 16:30 in Réunion
    assert lunch == Verdict(False, RULE_CALLING_HOURS, paris(2026, 3, 2, 14, 0))
    # 17:30 in Paris is 20:30 in Réunion; Tuesday 10:00 in Paris is Réunion's lunch, so 11:00.
    evening = check_call(both, CONSUMERS, paris(2026, 3, 2, 17, 30))
    assert evening == Verdict(False, RULE_CALLING_HOURS, paris(2026, 3, 3, 11, 0))


# ---- attempts, refusals, lists, consent ---------------------------------------------------------


def test_the_fifth_attempt_in_30_days_is_refused_until_the_oldest_leaves() -> None:
    attempts = (
        paris(2026, 3, 2, 10, 30),
        paris(2026, 3, 5, 11, 0),
        paris(2026, 3, 10, 15, 0),
        paris(2026, 3, 16, 16, 0),
    )
    assert check_call(facts(attempts=attempts[:3]), CONSUMERS, paris(2026, 3, 20, 11)).allowed
    fifth = check_call(facts(attempts=attempts), CONSUMERS, paris(2026, 3, 20, 11))
    back = attempts[0] + timedelta(days=30)  # Wednesday 1 April 2026, 11:30 in Paris (DST)
    assert fifth == Verdict(False, RULE_MAX_ATTEMPTS, back)
    assert not check_call(facts(attempts=attempts), CONSUMERS, back - timedelta(seconds=1)).allowed
    assert check_call(facts(attempts=attempts), CONSUMERS, back).allowed
    # Attempts of other campaigns of the tenant count the same (the facts merge them), and
    # more than four (a race between campaigns) wait for enough of them to leave.
    six = (*attempts, paris(2026, 3, 17, 10, 0), paris(2026, 3, 18, 10, 0))
    verdict = check_call(facts(attempts=six), CONSUMERS, paris(2026, 3, 20, 11))
    assert verdict.until == attempts[2] + timedelta(days=30)


@settings(max_examples=200, deadline=None)
@given(offsets=st.lists(st.integers(min_value=0, max_value=60 * 86400), max_size=8))
def test_attempts_are_counted_over_a_rolling_30_days(offsets: list[int]) -> None:
    now = paris(2026, 6, 3, 11, 0)  # a Wednesday, lawful
    attempts = tuple(now - timedelta(seconds=s) for s in offsets)
    recent = sorted(a for a in attempts if a > now - timedelta(days=30))
    verdict = check_call(facts(attempts=attempts), CONSUMERS, now)
    assert verdict.allowed is (len(recent) < 4)
    if not verdict.allowed:
        assert verdict.rule == RULE_MAX_ATTEMPTS
        assert verdict.until is not None and verdict.until > now
        # At `until` fewer than four remain in the period.
        assert sum(1 for a in attempts if verdict.until - timedelta(days=30) < a) < 4


def test_a_refusal_blocks_for_60_days() -> None:
    refused = paris(2026, 2, 2, 11, 0)  # Monday
    back = refused + timedelta(days=60)  # Friday 3 April 2026
    contact = facts(refused_at=refused)
    for day in (1, 10, 30, 59):
        instant = paris(2026, 2, 2, 11, 0) + timedelta(days=day)
        if instant.astimezone(PARIS).weekday() < 5:
            assert check_call(contact, CONSUMERS, instant) == Verdict(
                False, RULE_REFUSED_RECENTLY, back
            )
    assert not check_call(contact, CONSUMERS, back - timedelta(seconds=1)).allowed
    assert check_call(contact, CONSUMERS, back).allowed


@pytest.mark.parametrize("region", ["FR", "RE", "GP"])
def test_a_number_on_the_tenant_list_or_the_opposition_list_is_never_called(region: str) -> None:
    listed = facts(region, on_do_not_call=True)
    opposed = facts(region, on_opposition_list=True)
    businesses = CampaignRules("businesses", False, (), None)
    for instant in instants_2026(2000, seed=18):
        assert check_call(listed, CONSUMERS, instant) == Verdict(False, RULE_DO_NOT_CALL, None)
        assert check_call(listed, businesses, instant) == Verdict(False, RULE_DO_NOT_CALL, None)
        assert check_call(opposed, CONSUMERS, instant) == Verdict(False, RULE_OPPOSITION_LIST, None)
        # Bloctel protects consumers: a business campaign follows the hours only.
        assert check_call(opposed, businesses, instant).allowed == legally_callable(
            instant, CONTACTS[region].time_zones[0], region
        )


def test_consumer_calls_need_an_opposition_list_of_the_last_30_days() -> None:
    now = paris(2026, 3, 31, 11, 0)

    def rules(list_date: date | None) -> CampaignRules:
        return CampaignRules("consumers", False, (), list_date)

    assert check_call(facts(), rules(None), now) == Verdict(
        False, RULE_OPPOSITION_LIST_STALE, now + STALE_LIST_RECHECK
    )
    assert check_call(facts(), rules(date(2026, 3, 1)), now).allowed
    stale = check_call(facts(), rules(date(2026, 2, 28)), now)
    assert stale == Verdict(False, RULE_OPPOSITION_LIST_STALE, now + STALE_LIST_RECHECK)
    assert check_call(facts(), CampaignRules("businesses", False, (), None), now).allowed


def test_a_campaign_requiring_consent_calls_only_contacts_who_gave_it() -> None:
    now = paris(2026, 9, 1, 11, 0)
    rules = CampaignRules("businesses", True, (), FRESH_LIST)
    unconsented = facts(consent_at=None)
    assert check_call(unconsented, rules, now) == Verdict(False, RULE_CONSENT_MISSING, None)
    assert check_call(facts(consent_at=paris(2026, 8, 20, 9, 0)), rules, now).allowed
    # A consent dated after the call is no consent.
    assert not check_call(facts(consent_at=paris(2026, 9, 2, 9, 0)), rules, now).allowed
    assert check_call(unconsented, replace(rules, require_consent=False), now).allowed


def test_consumer_calls_need_consent_from_the_laws_date_whatever_the_campaign_says() -> None:
    assert FRANCE.consent_required_from == date(2026, 8, 11)
    unconsented = facts(consent_at=None)
    before = paris(2026, 8, 10, 11, 0)
    after = paris(2026, 8, 11, 11, 0)
    assert check_call(unconsented, CONSUMERS, before).allowed
    assert check_call(unconsented, CONSUMERS, after) == Verdict(False, RULE_CONSENT_MISSING, None)
    assert check_call(facts(), CONSUMERS, after).allowed
    businesses = replace(CONSUMERS, audience="businesses")
    assert check_call(unconsented, businesses, after).allowed


def test_the_rules_are_checked_in_order() -> None:
    everything = facts(
        consent_at=None,
        on_do_not_call=True,
        on_opposition_list=True,
        refused_at=paris(2026, 3, 1, 11),
        attempts=(paris(2026, 3, 2, 11),) * 4,
    )
    saturday = paris(2026, 3, 7, 11)
    strict = CampaignRules("consumers", True, (), None)
    assert check_call(everything, strict, saturday).rule == RULE_DO_NOT_CALL
    everything = replace(everything, on_do_not_call=False)
    assert check_call(everything, strict, saturday).rule == RULE_OPPOSITION_LIST
    everything = replace(everything, on_opposition_list=False)
    assert check_call(everything, strict, saturday).rule == RULE_OPPOSITION_LIST_STALE
    strict = CampaignRules("consumers", True, (), FRESH_LIST)
    assert check_call(everything, strict, saturday).rule == RULE_CONSENT_MISSING
    everything = replace(everything, consent_at=CONSENTED)
    assert check_call(everything, CONSUMERS, saturday).rule == RULE_REFUSED_RECENTLY
    everything = replace(everything, refused_at=None)
    assert check_call(everything, CONSUMERS, saturday).rule == RULE_MAX_ATTEMPTS
    everything = replace(everything, attempts=())
    assert check_call(everything, CONSUMERS, saturday).rule == RULE_CALLING_HOURS


def test_instants_must_carry_their_zone() -> None:
    with pytest.raises(ValueError):
        check_call(facts(), CONSUMERS, datetime(2026, 3, 2, 11))  # noqa: DTZ001
    with pytest.raises(ValueError):
        next_allowed_start("FR", ("Europe/Paris",), FRANCE.windows, datetime(2026, 3, 2, 11))  # noqa: DTZ001


# ---- next_allowed_start --------------------------------------------------------------------


def test_next_allowed_start_skips_weekends_and_holidays() -> None:
    zones = ("Europe/Paris",)
    # Thursday 24 December 2026, 20:30: Christmas Friday, then the weekend.
    after = paris(2026, 12, 24, 20, 30)
    assert next_allowed_start("FR", zones, FRANCE.windows, after) == paris(2026, 12, 28, 10, 0)
    # Already allowed: now.
    assert next_allowed_start("FR", zones, FRANCE.windows, paris(2026, 3, 2, 10, 5)) == paris(
        2026, 3, 2, 10, 5
    )


def test_next_allowed_start_across_daylight_saving_changes() -> None:
    zones = ("Europe/Paris",)
    # Sunday 29 March 2026 the clocks jump from 02:00 to 03:00: a window opening at 02:30
    # is entered at 03:00.
    gap = (Window(6, time(2, 30), time(5)),)
    assert next_allowed_start("XX", zones, gap, datetime(2026, 3, 28, tzinfo=UTC)) == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )
    # Sunday 25 October 2026 02:00-03:00 happens twice: 02:00-02:30 is entered again at the
    # second 02:00 (01:00 UTC).
    repeated = (Window(6, time(2), time(2, 30)),)
    after = datetime(2026, 10, 25, 0, 45, tzinfo=UTC)  # 02:45, first time
    assert next_allowed_start("XX", zones, repeated, after) == datetime(
        2026, 10, 25, 1, 0, tzinfo=UTC
    )


_2026_START = datetime(2026, 1, 1, tzinfo=UTC)
_ZONE_SETS: dict[str, list[tuple[str, ...]]] = {
    "FR": [("Europe/Paris",), ("Europe/Paris", "America/Guadeloupe")],
    "RE": [("Indian/Reunion",)],
    "GP": [("America/Guadeloupe",)],
}


@st.composite
def campaign_hours(draw: st.DrawFn) -> tuple[Window, ...]:
    count = draw(st.integers(min_value=0, max_value=4))
    found: list[Window] = []
    for _ in range(count):
        day = draw(st.integers(min_value=0, max_value=6))
        start = draw(st.integers(min_value=0, max_value=23 * 60))
        length = draw(st.integers(min_value=1, max_value=24 * 60 - 1 - start))
        end = start + length
        found.append(Window(day, time(start // 60, start % 60), time(end // 60, end % 60)))
    return tuple(found)


@settings(max_examples=150, deadline=None)
@given(
    region=st.sampled_from(sorted(_ZONE_SETS)),
    which=st.integers(min_value=0, max_value=1),
    seconds=st.integers(min_value=0, max_value=340 * 86400),
    own=campaign_hours(),
)
def test_next_allowed_start_is_allowed_and_nothing_earlier_is(
    region: str, which: int, seconds: int, own: tuple[Window, ...]
) -> None:
    zones = _ZONE_SETS[region][which % len(_ZONE_SETS[region])]
    windows = effective_windows(FRANCE.windows, own)
    after = _2026_START + timedelta(seconds=seconds)
    if not windows:
        with pytest.raises(NeverAllowed):
            next_allowed_start(region, zones, windows, after)
        return
    try:
        found = next_allowed_start(region, zones, windows, after)
    except NeverAllowed:
        # Windows disjoint across the zones: nothing allowed in the coming weeks either.
        probe = after
        while probe < after + timedelta(days=21):
            assert not lawful(probe, region, zones, windows)
            probe += timedelta(minutes=1)
        return
    assert found >= after
    assert lawful(found, region, zones, windows)
    if found > after:
        assert not lawful(found - timedelta(seconds=1), region, zones, windows)
    assert found.year == 2026 or found - after < timedelta(days=30)
    # No allowed minute between `after` and the answer.
    minute = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while minute < found:
        assert not lawful(minute, region, zones, windows), minute
        minute += timedelta(minutes=1)


def test_a_contact_stored_without_a_zone_is_read_in_its_region() -> None:
    instant = datetime(2026, 12, 4, 6, 30, tzinfo=UTC)  # 10:30 in Réunion, 07:30 in Paris
    assert check_call(facts("RE", time_zones=()), CONSUMERS, instant).allowed
    unknown = replace(facts("FR"), region="ZZ", time_zones=())
    assert check_call(unknown, CONSUMERS, instant) == Verdict(False, RULE_CALLING_HOURS, None)


def test_a_polynesian_number_is_called_when_all_three_of_its_zones_allow() -> None:
    contact = replace(facts("FR"), region="PF", time_zones=REGION_TIME_ZONES["PF"])
    # Tahiti -10:00, Marquesas -09:30, Gambier -09:00: Monday 20:30 UTC is 10:30, 11:00 and
    # 11:30 there.
    assert check_call(contact, CONSUMERS, datetime(2026, 3, 2, 20, 30, tzinfo=UTC)).allowed
    # 19:30 UTC is 09:30 in Tahiti: too early there, though 10:30 in Gambier.
    early = check_call(contact, CONSUMERS, datetime(2026, 3, 2, 19, 30, tzinfo=UTC))
    assert early == Verdict(False, RULE_CALLING_HOURS, datetime(2026, 3, 2, 20, 0, tzinfo=UTC))
    # 22:00 UTC is lunch in Gambier (13:00); the three clocks next agree at 00:00 UTC, when
    # Tahiti's afternoon starts (14:00).
    lunch = check_call(contact, CONSUMERS, datetime(2026, 3, 2, 22, 0, tzinfo=UTC))
    assert lunch == Verdict(False, RULE_CALLING_HOURS, datetime(2026, 3, 3, 0, 0, tzinfo=UTC))
