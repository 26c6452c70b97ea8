"""The law of calling as data (``campaigns.law``): France's rules, holidays, ARCEP's ranges."""

from __future__ import annotations

from datetime import date, time, timedelta
from decimal import Decimal

import pytest

from graam_pbx.campaigns.law import (
    FRANCE,
    LAWS,
    Window,
    automated_caller_refusal,
    is_public_holiday,
    law_for_region,
    windows_from_json,
)


def test_france_in_numbers() -> None:
    weekdays = range(5)
    assert set(FRANCE.windows) == {
        Window(day, start, end)
        for day in weekdays
        for start, end in ((time(10), time(13)), (time(14), time(20)))
    }
    assert FRANCE.max_attempts == 4
    assert FRANCE.attempts_period == timedelta(days=30)
    assert FRANCE.refusal_block == timedelta(days=60)
    assert FRANCE.max_abandon_rate == Decimal("0.03")
    assert FRANCE.abandon_periods == (timedelta(hours=24), timedelta(days=30))
    assert FRANCE.abandon_delay_seconds == 2
    assert FRANCE.min_ring_seconds == 15
    assert FRANCE.opposition_max_age == timedelta(days=30)
    assert FRANCE.consent_required_from == date(2026, 8, 11)
    assert LAWS == {"FR": FRANCE}


@pytest.mark.parametrize(
    "region", ["FR", "fr", "RE", "YT", "GP", "MQ", "GF", "BL", "MF", "PM", "NC", "PF", "WF"]
)
def test_french_regions_follow_french_law(region: str) -> None:
    assert law_for_region(region) is FRANCE


def test_other_countries_follow_french_law_until_theirs_is_added() -> None:
    assert law_for_region("DE") is FRANCE
    assert law_for_region("US") is FRANCE


@pytest.mark.parametrize(
    ("region", "day", "holiday"),
    [
        ("FR", date(2026, 7, 14), True),
        ("FR", date(2026, 5, 25), True),  # Pentecost Monday stays a public holiday
        ("FR", date(2026, 5, 27), False),
        ("FR", date(2026, 12, 20), False),
        ("RE", date(2026, 12, 20), True),  # abolition of slavery in Réunion
        ("RE", date(2026, 7, 14), True),
        ("GP", date(2026, 5, 27), True),  # abolition of slavery in Guadeloupe
        ("MQ", date(2026, 5, 22), True),  # in Martinique
        ("GF", date(2026, 6, 10), True),  # in Guyane
        ("YT", date(2026, 4, 27), True),  # in Mayotte
        ("GP", date(2026, 4, 3), True),  # Good Friday in the Antilles
        ("FR", date(2026, 4, 3), False),
        # Alsace-Moselle's Good Friday and 26 December cannot be told from a number.
        ("FR", date(2026, 12, 26), False),
        ("DE", date(2026, 10, 3), True),  # a country the package knows: its own days
    ],
)
def test_public_holidays_of_each_region(region: str, day: date, holiday: bool) -> None:
    assert is_public_holiday(region, day) is holiday


@pytest.mark.parametrize(
    "number",
    [
        "+33162000001",
        "+33163123456",
        "+33270123456",
        "+33271123456",
        "+33377123456",
        "+33378123456",
        "+33424123456",
        "+33425123456",
        "+33568123456",
        "+33569123456",
        "+33948123456",
        "+33949123456",
        "+33947512345",
        "+33947912345",
        "+262947812345",
        "+590947512345",
        "+594947612345",
        "+596947712345",
    ],
)
def test_arcep_ranges_may_present_automated_calls(number: str) -> None:
    assert automated_caller_refusal(number) is None


@pytest.mark.parametrize(
    "number",
    ["+33612345678", "+33142123456", "+33947412345", "+33950123456", "+262262123456"],
)
def test_other_french_numbers_are_refused_with_the_ranges(number: str) -> None:
    reason = automated_caller_refusal(number)
    assert reason is not None
    assert number in reason
    assert "01 62" in reason and "09 49" in reason and "09 475 to 09 479" in reason
    assert "ARCEP" in reason


@pytest.mark.parametrize("number", ["+442079460958", "+12125550100", "+3225551234"])
def test_foreign_numbers_are_not_judged(number: str) -> None:
    assert automated_caller_refusal(number) is None


def test_campaign_hours_from_their_stored_form() -> None:
    rows = [{"weekday": 0, "start": "09:30", "end": "12:00"}]
    assert windows_from_json(rows) == (Window(0, time(9, 30), time(12)),)
