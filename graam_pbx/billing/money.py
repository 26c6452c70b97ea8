"""Every rounding billing does, one function each, named after its rule.

Amounts are ``Decimal`` from the database to the PDF; nothing here (or anywhere in
``billing/``) is a float: a test reads every module for one. The contract's clauses:

- every started second of an outbound call is due (``bill_seconds``);
- a call's amount is billed seconds * price per minute / 60, plus its connect fee, kept
  exact to ``CALL_PRECISION`` (6 decimals; ``call_amount``);
- an invoice line is the sum of its calls' exact amounts, rounded to the cent once
  (``round_line``); the invoice's net total is the sum of its rounded lines, its VAT is
  computed once on that total (``vat_of``), and its total is net + VAT;
- late-payment interest accrues daily at three times the legal rate (``late_interest``),
  rounded to the cent once per invoice.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Final

CENT: Final = Decimal("0.01")
CALL_PRECISION: Final = Decimal("0.000001")  # a rated call's amount: 6 decimals
SIXTY: Final = Decimal(60)
MICROSECOND: Final = Decimal("0.000001")
LATE_INTEREST_MULTIPLIER: Final = Decimal(3)  # Code de commerce L441-10: 3 * the legal rate
RECOVERY_INDEMNITY: Final = Decimal("40.00")  # Code de commerce D441-5: €40 per late invoice
DAYS_PER_YEAR: Final = Decimal(365)  # interest per day = yearly rate / 365, leap years too


def bill_seconds(duration: Decimal) -> int:
    """Contract: "every started second is due": the exact duration rounded up to a second.

    60.000 s → 60; 60.001 s → 61; 0.2 s → 1; 0 s → 0.
    """
    if duration < 0:
        raise ValueError(f"a duration is never negative: {duration}")
    return int(duration.to_integral_value(rounding=ROUND_CEILING))


def call_amount(billed_seconds: int, price_per_minute: Decimal, connect_fee: Decimal) -> Decimal:
    """A call's price kept to ``CALL_PRECISION`` (6 decimals, half up at the 7th).

    The only rounding before the invoice line's, a millionth of a euro at most per call (a
    thousand calls move a line by a tenth of a cent at most). Nothing is rounded to the cent
    here: ten 60-second calls at €0.05/min are 10 * 0.050000, exactly €0.50.
    """
    exact = Decimal(billed_seconds) * price_per_minute / SIXTY + connect_fee
    return exact.quantize(CALL_PRECISION, rounding=ROUND_HALF_UP)


def round_line(exact: Decimal) -> Decimal:
    """An invoice line's amount: the exact sum of its items rounded to the cent, half up,
    once per line (never per call)."""
    return exact.quantize(CENT, rounding=ROUND_HALF_UP)


def vat_of(net_total: Decimal, rate_percent: Decimal) -> Decimal:
    """The VAT of an invoice: its net total * the rate, rounded to the cent half up, once
    per invoice (one VAT rate per invoice)."""
    return (net_total * rate_percent / Decimal(100)).quantize(CENT, rounding=ROUND_HALF_UP)


def late_interest(amount_due: Decimal, daily_rates_percent: list[Decimal]) -> Decimal:
    """Interest on ``amount_due`` (VAT included) for as many days as rates given, each day at
    3 * that day's legal rate / 365; rounded to the cent half up once for the whole span."""
    exact = sum(
        (amount_due * LATE_INTEREST_MULTIPLIER * rate / Decimal(100) / DAYS_PER_YEAR)
        for rate in daily_rates_percent
    )
    return Decimal(exact).quantize(CENT, rounding=ROUND_HALF_UP)


def seconds_of_microseconds(us: int) -> Decimal:
    """An exact duration in seconds from microseconds."""
    return Decimal(us) * MICROSECOND
