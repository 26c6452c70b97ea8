"""When a schedule is open (``routing.service.is_open``): local wall-clock hours, DST, holidays."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graam_pbx.routing.service import is_open


@dataclass
class Hours:
    timezone: str
    weekly: list[dict[str, Any]] = field(default_factory=list)
    holidays: list[str] = field(default_factory=list)


def hours(day: int, opens: str, closes: str) -> dict[str, Any]:
    return {"day": day, "open": opens, "close": closes}


PARIS = ZoneInfo("Europe/Paris")
OFFICE = Hours("Europe/Paris", [hours(d, "09:00", "17:00") for d in range(7)], ["2024-12-25"])


def test_open_and_closed_by_local_wall_clock() -> None:
    assert is_open(OFFICE, datetime(2024, 6, 3, 9, 0, tzinfo=PARIS))
    assert is_open(OFFICE, datetime(2024, 6, 3, 16, 59, 59, tzinfo=PARIS))
    assert not is_open(OFFICE, datetime(2024, 6, 3, 17, 0, tzinfo=PARIS))
    assert not is_open(OFFICE, datetime(2024, 6, 3, 8, 59, tzinfo=PARIS))
    # 07:30 UTC is 09:30 in Paris in summer (UTC+2).
    assert is_open(OFFICE, datetime(2024, 6, 3, 7, 30, tzinfo=UTC))


def test_dst_change_day_keeps_wall_clock_hours() -> None:
    # Paris springs forward on Sunday 2024-03-31 at 02:00 (UTC+1 -> UTC+2).
    before = datetime(2024, 3, 24, 7, 30, tzinfo=UTC)  # 08:30 CET: not yet open
    change_day = datetime(2024, 3, 31, 7, 30, tzinfo=UTC)  # 09:30 CEST: open
    assert not is_open(OFFICE, before)
    assert is_open(OFFICE, change_day)
    night = Hours("Europe/Paris", [hours(6, "01:00", "04:00")])
    # 02:30 does not exist that night; 01:59 CET and 03:00 CEST are one real minute apart.
    assert is_open(night, datetime(2024, 3, 31, 0, 59, tzinfo=UTC))  # 01:59 CET
    assert is_open(night, datetime(2024, 3, 31, 1, 0, tzinfo=UTC))  # 03:00 CEST
    assert not is_open(night, datetime(2024, 3, 31, 2, 0, tzinfo=UTC))  # 04:00 CEST
    # Falling back on 2024-10-27: 02:30 happens twice, and both are open.
    autumn = Hours("Europe/Paris", [hours(6, "02:00", "03:00")])
    assert is_open(autumn, datetime(2024, 10, 27, 0, 30, tzinfo=UTC))  # 02:30 CEST
    assert is_open(autumn, datetime(2024, 10, 27, 1, 30, tzinfo=UTC))  # 02:30 CET


def test_holidays_are_local_dates_closed_all_day() -> None:
    assert not is_open(OFFICE, datetime(2024, 12, 25, 12, 0, tzinfo=PARIS))
    # 23:30 UTC on the 24th is already the 25th in Paris.
    late = Hours("Europe/Paris", [hours(d, "00:00", "24:00") for d in range(7)], ["2024-12-25"])
    assert not is_open(late, datetime(2024, 12, 24, 23, 30, tzinfo=UTC))
    assert is_open(late, datetime(2024, 12, 24, 22, 30, tzinfo=UTC))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        is_open(OFFICE, datetime(2024, 6, 3, 10, 0))  # noqa: DTZ001 - the point of the test


ZONES = ["Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"]
clock = st.integers(0, 24 * 60).map(lambda m: f"{m // 60:02d}:{m % 60:02d}")
instants = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
    max_value=datetime(2040, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from([ZoneInfo(z) for z in ZONES] + [UTC]),
)


@st.composite
def schedules(draw: st.DrawFn) -> Hours:
    weekly = []
    for _ in range(draw(st.integers(0, 10))):
        opens, closes = sorted(draw(st.lists(clock, min_size=2, max_size=2, unique=True)))
        weekly.append(hours(draw(st.integers(0, 6)), opens, closes))
    holidays = draw(st.lists(st.dates(date(2000, 1, 1), date(2040, 1, 1)), max_size=5))
    return Hours(draw(st.sampled_from(ZONES)), weekly, [d.isoformat() for d in holidays])


@settings(max_examples=300, deadline=None)
@given(schedule=schedules(), at=instants)
def test_is_open_depends_on_the_instant_not_on_how_it_is_written(
    schedule: Hours, at: datetime
) -> None:
    answer = is_open(schedule, at)
    assert is_open(schedule, at.astimezone(UTC)) == answer
    assert is_open(schedule, at.astimezone(ZoneInfo("Pacific/Kiritimati"))) == answer


@settings(max_examples=300, deadline=None)
@given(schedule=schedules(), at=instants)
def test_is_open_matches_the_local_weekday_and_minute(schedule: Hours, at: datetime) -> None:
    local = at.astimezone(ZoneInfo(schedule.timezone))
    minute = local.hour * 60 + local.minute

    def minutes(text: str) -> int:
        return int(text[:2]) * 60 + int(text[3:])

    expected = local.date().isoformat() not in schedule.holidays and any(
        h["day"] == local.weekday() and minutes(h["open"]) <= minute < minutes(h["close"])
        for h in schedule.weekly
    )
    assert is_open(schedule, at) == expected


@settings(max_examples=200, deadline=None)
@given(at=instants, zone=st.sampled_from(ZONES))
def test_always_open_and_never_open(at: datetime, zone: str) -> None:
    always = Hours(zone, [hours(d, "00:00", "24:00") for d in range(7)])
    assert is_open(always, at)
    assert not is_open(Hours(zone), at)
    local_day = at.astimezone(ZoneInfo(zone)).date()
    holiday = Hours(zone, always.weekly, [local_day.isoformat()])
    assert not is_open(holiday, at)
    # The day after the holiday is open again.
    later = at + timedelta(days=1)
    if later.astimezone(ZoneInfo(zone)).date() != local_day:
        assert is_open(holiday, later)
