"""The Reports page's periods: each preset's days on the tenant's calendar, its interval."""

from __future__ import annotations

from datetime import date

from graam_pbx.stats.kpi import Interval
from graam_pbx.web.reports import ReportForm, _default_interval, period_dates


def test_each_preset_is_whole_days_of_the_tenants_calendar() -> None:
    today = date(2026, 3, 31)
    assert period_dates(ReportForm("today"), today) == (today, date(2026, 4, 1))
    assert period_dates(ReportForm("yesterday"), today) == (date(2026, 3, 30), today)
    assert period_dates(ReportForm("last-7-days"), today) == (date(2026, 3, 25), date(2026, 4, 1))
    assert period_dates(ReportForm("this-month"), today) == (date(2026, 3, 1), date(2026, 4, 1))
    assert period_dates(ReportForm("last-month"), today) == (date(2026, 2, 1), date(2026, 3, 1))
    january = date(2027, 1, 15)
    assert period_dates(ReportForm("last-month"), january) == (date(2026, 12, 1), date(2027, 1, 1))
    december = date(2026, 12, 31)
    assert period_dates(ReportForm("this-month"), december) == (
        date(2026, 12, 1),
        date(2027, 1, 1),
    )
    custom = ReportForm("custom", date_from=date(2026, 1, 5), date_to=date(2026, 1, 5))
    assert period_dates(custom, today) == (date(2026, 1, 5), date(2026, 1, 6))


def test_the_interval_by_default_follows_the_periods_length() -> None:
    today = date(2026, 3, 31)
    assert _default_interval(ReportForm("today"), today) is Interval.HOUR
    assert _default_interval(ReportForm("last-7-days"), today) is Interval.DAY
    assert _default_interval(ReportForm("last-month"), today) is Interval.DAY
    year = ReportForm("custom", date_from=date(2025, 1, 1), date_to=date(2025, 12, 31))
    assert _default_interval(year, today) is Interval.MONTH
