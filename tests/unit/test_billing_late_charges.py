"""Late-payment charges at known legal rates, computed by hand, and an invoice's state."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from graam_pbx.billing.dunning import LateCharges, late_charges, rate_on
from graam_pbx.billing.models import Invoice
from graam_pbx.billing.payments import invoice_status

# The arrêtés' professionals' rates (percent) for 2025, and one for 2026-H1 of our own.
RATES = {
    date(2025, 1, 1): Decimal("3.71"),
    date(2025, 7, 1): Decimal("2.76"),
}
WITH_2026 = {**RATES, date(2026, 1, 1): Decimal("3.50")}
TOTAL = Decimal("1200.00")
EUR40 = Decimal("40.00")


def test_ten_days_late_at_2_76_percent() -> None:
    # 1200 * 3 * 2.76 % * 10 / 365 = 993.6 / 365 = 2.72219... -> 2.72
    charges = late_charges(TOTAL, date(2025, 9, 30), [], date(2025, 10, 10), RATES)
    assert charges == LateCharges(Decimal("2.72"), EUR40, 10)
    assert charges.total == Decimal("42.72")


def test_forty_five_days_late_across_a_half_year() -> None:
    # Due 15 Dec 2025, today 29 Jan 2026: 16 days of December at 2.76 %, 29 of January at
    # 3.50 %. 1200 * 3 / 100 / 365 * (16 * 2.76 + 29 * 3.50) = 36 / 365 * 145.66
    # = 5243.76 / 365 = 14.36646... -> 14.37
    charges = late_charges(TOTAL, date(2025, 12, 15), [], date(2026, 1, 29), WITH_2026)
    assert charges == LateCharges(Decimal("14.37"), EUR40, 45)


def test_a_missing_half_year_takes_the_latest_rate_before_it() -> None:
    # 2026-H1 unknown: 2.76 % of 2025-H2; 10 days of January as in the first vector: 2.72.
    charges = late_charges(TOTAL, date(2025, 12, 31), [], date(2026, 1, 10), RATES)
    assert charges == LateCharges(Decimal("2.72"), EUR40, 10)
    assert rate_on(date(2027, 3, 1), RATES) == Decimal("2.76")
    assert rate_on(date(2023, 3, 1), RATES) == Decimal("3.71")  # before any: the earliest


def test_a_partial_payment_lowers_the_base_from_the_day_after_it() -> None:
    # €1,000 due 31 Oct 2025; €400 received 5 Nov; today 10 Nov, at 2.76 %:
    # 1-5 Nov on 1000 (5 days), 6-10 Nov on 600 (5 days):
    # 3 * 2.76 / 100 / 365 * (5 * 1000 + 5 * 600) = 0.0828 * 8000 / 365 = 1.81479... -> 1.81
    charges = late_charges(
        Decimal("1000.00"),
        date(2025, 10, 31),
        [(date(2025, 11, 5), Decimal("400.00"))],
        date(2025, 11, 10),
        RATES,
    )
    assert charges == LateCharges(Decimal("1.81"), EUR40, 10)


def test_interest_stops_on_the_day_of_payment_in_full() -> None:
    # Paid on 3 Nov: 1-3 Nov on 1000: 0.0828 * 3000 / 365 = 0.68055... -> 0.68, and the €40.
    paid = [(date(2025, 11, 3), Decimal("1000.00"))]
    charges = late_charges(Decimal("1000.00"), date(2025, 10, 31), paid, date(2025, 12, 31), RATES)
    assert charges == LateCharges(Decimal("0.68"), EUR40, 3)


def test_an_invoice_paid_on_time_costs_nothing() -> None:
    on_time = [(date(2025, 10, 31), Decimal("1200.00"))]
    nothing = LateCharges(Decimal(0), Decimal(0), 0)
    assert late_charges(TOTAL, date(2025, 10, 31), on_time, date(2025, 12, 1), RATES) == nothing
    assert late_charges(TOTAL, date(2025, 10, 31), [], date(2025, 10, 31), RATES) == nothing
    assert late_charges(TOTAL, date(2025, 10, 31), [], date(2025, 10, 1), RATES) == nothing


@given(
    cents=st.integers(min_value=1, max_value=10_000_000),
    paid_share=st.integers(min_value=0, max_value=100),
    paid_after=st.integers(min_value=-10, max_value=200),
    days=st.integers(min_value=0, max_value=400),
)
def test_charges_grow_with_time_and_stop_once_paid(
    cents: int, paid_share: int, paid_after: int, days: int
) -> None:
    total = Decimal(cents) / 100
    due_on = date(2025, 3, 31)
    partial = (total * paid_share / 100).quantize(Decimal("0.01"))
    payments = [(due_on + timedelta(days=paid_after), partial)] if partial else []
    today = due_on + timedelta(days=days)
    now = late_charges(total, due_on, payments, today, WITH_2026)
    later = late_charges(total, due_on, payments, today + timedelta(days=30), WITH_2026)
    assert Decimal(0) <= now.interest <= later.interest
    assert now.days_late <= later.days_late <= days + 30
    assert now.indemnity == (EUR40 if now.days_late else Decimal(0))
    assert (now.days_late > 0) == (days > 0 and (partial < total or paid_after > 0))
    # Never more than the whole total at the highest rate for every day.
    assert later.interest <= (total * 3 * Decimal("3.71") / 100 * (days + 30) / 365) + Decimal(
        "0.01"
    )
    if partial == total and paid_after < days:
        assert later == now  # paid in full: nothing more accrues


def _invoice(paid: str, due_on: date = date(2025, 10, 31)) -> Invoice:
    return Invoice(total=Decimal("100.00"), paid_amount=Decimal(paid), due_on=due_on)


def test_an_invoices_state() -> None:
    before, after = date(2025, 10, 20), date(2025, 11, 1)
    state = invoice_status
    assert state(_invoice("0"), today=before, open_dispute=False, credited=False) == "issued"
    assert state(_invoice("10"), today=before, open_dispute=False, credited=False) == "partly_paid"
    assert state(_invoice("10"), today=after, open_dispute=False, credited=False) == "overdue"
    assert state(_invoice("0"), today=after, open_dispute=False, credited=False) == "overdue"
    assert state(_invoice("100"), today=after, open_dispute=False, credited=False) == "paid"
    assert state(_invoice("0"), today=after, open_dispute=True, credited=False) == "disputed"
    assert state(_invoice("0"), today=after, open_dispute=True, credited=True) == "credited"
    assert state(_invoice("100"), today=before, open_dispute=True, credited=False) == "disputed"
