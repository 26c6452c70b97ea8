"""Billing months: a period runs from midnight on its first day to midnight on the first day
of the next month, on the billing clock (``GRAAM_BILLING_TIMEZONE``).

The contract: the first period starts on the day of subscription, the following ones on the
first of each month; the last one ends on the last day of service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

PAYMENT_DAYS = 30  # contract: payment within 30 days of the invoice's date
DISPUTE_DAYS = 30  # contract: an invoice may be contested within 30 days of its issue
TERMINATION_NOTICE_DAYS = 30  # contract: termination takes effect 30 days after notice or later


def month_start(day: date) -> date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


def next_month(day: date) -> date:
    """The first day of the month after ``day``'s."""
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def previous_month(day: date) -> date:
    """The first day of the month before ``day``'s."""
    return date(day.year - 1, 12, 1) if day.month == 1 else date(day.year, day.month - 1, 1)


@dataclass(frozen=True)
class Period:
    """Days ``first`` to ``last`` (inclusive) of one billing month, on the billing clock."""

    first: date
    last: date
    zone: ZoneInfo

    @property
    def month(self) -> date:
        return month_start(self.first)

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.first, time(0), self.zone)

    @property
    def ends_at(self) -> datetime:
        """The first instant after the period (exclusive)."""
        return datetime.combine(date.fromordinal(self.last.toordinal() + 1), time(0), self.zone)


def period_of_month(
    month: date, zone: ZoneInfo, *, subscribed_on: date, terminates_on: date | None
) -> Period | None:
    """The billing period of ``month`` for a subscription: None when it held no day of it."""
    first = max(month_start(month), subscribed_on)
    last = date.fromordinal(next_month(month).toordinal() - 1)
    if terminates_on is not None:
        last = min(last, terminates_on)
    return Period(first, last, zone) if first <= last else None


def period_month_of(at: datetime, zone: ZoneInfo) -> date:
    """The first day of the billing month that instant ``at`` falls in."""
    return month_start(at.astimezone(zone).date())
