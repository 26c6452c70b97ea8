"""The fixed part of a billing period, from what a tenant held, and the month-end calendar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from graam_pbx.billing import money
from graam_pbx.billing.fixed import FixedPart, fixed_part, held_during
from graam_pbx.billing.invoicing import billed_minutes, due_months, vat_mention, vat_rate_of
from graam_pbx.billing.numbering import format_number, series_of
from graam_pbx.billing.periods import Period, period_of_month
from graam_pbx.billing.pricebook import PriceBook, PriceKey

PARIS = ZoneInfo("Europe/Paris")
MARCH = Period(date(2026, 3, 1), date(2026, 3, 31), PARIS)


@dataclass(frozen=True)
class Held:
    item: str
    held_from: datetime
    held_until: datetime | None = None
    ref_id: int | None = None
    label: str | None = None
    country: str | None = None
    number_type: str | None = None
    quantity: int = 1


def at(day: int, hour: int = 12, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=PARIS)


def book() -> PriceBook:
    prices: dict[PriceKey, Decimal] = {
        ("plan", "standard", None, None): Decimal("29.00"),
        ("number", None, "FR", "geographic"): Decimal("1.50"),
        ("number", None, "GB", "mobile"): Decimal("4.25"),
        ("user", None, None, None): Decimal("3.3333"),
        ("licence", None, None, None): Decimal("15.00"),
    }
    return PriceBook(date(2026, 3, 1), prices)


def amounts(part: FixedPart) -> dict[tuple[str, str | None, str | None], tuple[Decimal, Decimal]]:
    return {(ln.kind, ln.country, ln.number_type): (ln.quantity, ln.amount) for ln in part.lines}


def test_a_golden_month_counts_every_item_held_at_any_moment() -> None:
    rows = [
        # Two French geographic numbers, one of them given back mid-month; one UK mobile.
        Held("number", at(1, 0), None, 1, "+33142685300", "FR", "geographic"),
        Held("number", at(1, 0), at(10), 2, "+33142685301", "FR", "geographic"),
        Held("number", at(20), None, 3, "+447700900123", "GB", "mobile"),
        # A number given back before March: not billed.
        Held("number", at(1, month=2), at(28, month=2), 4, "+33142685302", "FR", "geographic"),
        # Three users: one authorised a single day, one disabled then enabled again.
        Held("user", at(1, month=1), None, 10),
        Held("user", at(15), at(16), 11),
        Held("user", at(1, month=1), at(5), 12),
        Held("user", at(20), None, 12),
        # Licences: 2, raised to 5 on the 10th, lowered to 3 on the 20th: 5 are billed.
        Held("licences", at(1, month=1), at(10), quantity=2),
        Held("licences", at(10), at(20), quantity=5),
        Held("licences", at(20), None, quantity=3),
    ]
    part = fixed_part(MARCH, rows, "standard", book(), "en")
    assert part.warnings == []
    assert amounts(part) == {
        ("plan", None, None): (Decimal(1), Decimal("29.00")),
        ("number", "FR", "geographic"): (Decimal(2), Decimal("3.00")),
        ("number", "GB", "mobile"): (Decimal(1), Decimal("4.25")),
        ("user", None, None): (Decimal(3), Decimal("10.00")),
        ("licence", None, None): (Decimal(5), Decimal("75.00")),
    }
    [users] = [line for line in part.lines if line.kind == "user"]
    assert users.exact_amount == Decimal("9.9999")  # rounded once, on the line
    assert [line.kind for line in part.lines] == ["plan", "number", "number", "user", "licence"]
    assert [line.label for line in part.lines][:2] == [
        "Subscription standard",
        "Numbers FR geographic",
    ]


def test_the_first_and_last_periods_bill_the_full_monthly_price() -> None:
    rows = [Held("licences", at(16), None, quantity=1)]
    first = period_of_month(
        date(2026, 3, 1), PARIS, subscribed_on=date(2026, 3, 16), terminates_on=None
    )
    last = period_of_month(
        date(2026, 3, 1), PARIS, subscribed_on=date(2025, 1, 1), terminates_on=date(2026, 3, 3)
    )
    assert first is not None and last is not None
    for period in (first, last):
        part = fixed_part(period, rows, "standard", book())
        assert amounts(part)[("plan", None, None)] == (Decimal(1), Decimal("29.00"))
    # Held from the 16th: not in a last period ending on the 3rd.
    assert ("licence", None, None) not in amounts(fixed_part(last, rows, "standard", book()))
    assert ("licence", None, None) in amounts(fixed_part(first, rows, "standard", book()))


def test_an_item_without_a_price_is_left_off_with_a_warning() -> None:
    rows = [
        Held("number", at(1), None, 1, "+33800000000", "FR", "toll_free"),
        Held("licences", at(1), None, quantity=2),
    ]
    part = fixed_part(MARCH, rows, "gold", book(), "fr")
    assert [line.kind for line in part.lines] == ["licence"]
    assert part.warnings == [
        "plan gold: no price in force on 2026-03-01",
        "numbers FR toll_free: no price in force on 2026-03-01",
    ]
    assert part.lines[0].label == "Licences centre d'appels"


def test_nothing_held_bills_the_plan_only() -> None:
    part = fixed_part(MARCH, [Held("licences", at(1), None, quantity=0)], "standard", book())
    assert [line.kind for line in part.lines] == ["plan"]


def test_the_periods_edges() -> None:
    starts, ends = MARCH.starts_at, MARCH.ends_at
    rows = [
        Held("user", starts - timedelta(days=3), starts, 1),  # ended as March began: out
        Held("user", ends, None, 2),  # began as March ended: out
        Held("user", starts - timedelta(days=3), starts + timedelta(microseconds=1), 3),
        Held("user", ends - timedelta(microseconds=1), None, 4),
        Held("user", at(5), at(5), 5),  # taken and given back in one transaction: never held
    ]
    assert sorted(row.ref_id or 0 for row in held_during(rows, MARCH)) == [3, 4]


@given(
    count=st.integers(min_value=0, max_value=500),
    price=st.decimals(min_value=0, max_value=1000, places=4),
)
def test_a_line_is_its_quantity_times_its_price_rounded_once(count: int, price: Decimal) -> None:
    rows = [Held("user", at(1), None, ref) for ref in range(count)]
    prices: dict[PriceKey, Decimal] = {
        ("plan", "p", None, None): Decimal(0),
        ("user", None, None, None): price,
    }
    part = fixed_part(MARCH, rows, "p", PriceBook(date(2026, 3, 1), prices))
    users = [line for line in part.lines if line.kind == "user"]
    if count == 0:
        assert users == []
        return
    [line] = users
    assert line.exact_amount == Decimal(count) * price
    assert line.amount == money.round_line(Decimal(count) * price)
    assert abs(line.amount - line.exact_amount) <= money.CENT / 2


def test_vat_by_tax_status() -> None:
    assert vat_rate_of("fr") == Decimal(20)
    assert vat_rate_of("eu_business") == vat_rate_of("outside_eu") == Decimal(0)
    assert vat_mention("fr", "fr") is None
    assert vat_mention("eu_business", "fr") == (
        "Autoliquidation — article 196 de la directive 2006/112/CE"
    )
    assert vat_mention("eu_business", "en") == (
        "Reverse charge — Article 196 of Directive 2006/112/EC"
    )
    assert vat_mention("outside_eu", "fr") == "TVA non applicable — article 259-1 du CGI"
    assert vat_mention("outside_eu", "en") == (
        "VAT not applicable — Article 259-1 of the French General Tax Code"
    )


def test_numbers_and_minutes() -> None:
    assert series_of("invoice", 2026) == "F2026"
    assert series_of("credit_note", 2026) == "A2026"
    assert format_number("F2026", 1) == "F2026-000001"
    assert format_number("F2026", 1_234_567) == "F2026-1234567"
    assert billed_minutes(61) == Decimal("1.0167")
    assert billed_minutes(600) == Decimal("10.0000")


def test_due_months_from_the_subscription_to_the_last_ended_month() -> None:
    # Midnight on 1 May in Paris is 22:00 UTC on 30 April.
    just_before = datetime(2026, 4, 30, 21, 59, tzinfo=ZoneInfo("UTC"))
    at_midnight = datetime(2026, 4, 30, 22, 0, tzinfo=ZoneInfo("UTC"))
    subscribed = date(2026, 2, 17)
    assert due_months(subscribed, None, just_before, PARIS, set()) == [
        date(2026, 2, 1),
        date(2026, 3, 1),
    ]
    assert due_months(subscribed, None, at_midnight, PARIS, {date(2026, 3, 1)}) == [
        date(2026, 2, 1),
        date(2026, 4, 1),
    ]
    # Terminating on the 10th of May: May is due once the 10th has ended, nothing after.
    ends = date(2026, 5, 10)
    on_the_10th = datetime(2026, 5, 10, 12, tzinfo=PARIS)
    on_the_11th = datetime(2026, 5, 11, 0, tzinfo=PARIS)
    later = datetime(2026, 9, 1, tzinfo=PARIS)
    done = {date(2026, 2, 1), date(2026, 3, 1), date(2026, 4, 1)}
    assert due_months(subscribed, ends, on_the_10th, PARIS, done) == []
    assert due_months(subscribed, ends, on_the_11th, PARIS, done) == [date(2026, 5, 1)]
    assert due_months(subscribed, ends, later, PARIS, done) == [date(2026, 5, 1)]
