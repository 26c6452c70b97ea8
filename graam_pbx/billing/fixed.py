"""The fixed part of a billing period: plan, numbers, users and licences, from what was held.

The contract says "any started month is due", so the fixed part never counts days:

- the plan: one line at the full monthly price, for a first period that starts mid-month
  (subscription) and a last one that ends mid-month (termination) alike;
- numbers: every number held at any moment of the period counts once, one line per
  (country, number type);
- users: every distinct user held at any moment of the period (authorised one day: the month);
- licences: the most licences held at any moment of the period (licences change at any
  time; raising them mid-month bills the raised count for the month).

Prices are those of the period's first day (``pricebook``). An item with no price in force
gets no line and a warning: a price is never invented. Each line's amount is rounded once
(``money.round_line``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from graam_pbx.billing import money
from graam_pbx.billing.periods import Period
from graam_pbx.billing.pricebook import PriceBook


class Held(Protocol):
    """What a ``billing_holdings`` row tells (the ORM row is one)."""

    @property
    def item(self) -> str: ...
    @property
    def ref_id(self) -> int | None: ...
    @property
    def label(self) -> str | None: ...
    @property
    def country(self) -> str | None: ...
    @property
    def number_type(self) -> str | None: ...
    @property
    def quantity(self) -> int: ...
    @property
    def held_from(self) -> datetime: ...
    @property
    def held_until(self) -> datetime | None: ...


@dataclass(frozen=True)
class Line:
    """One invoice line before it is stored: what ``invoice_lines`` holds."""

    kind: str  # plan, number, user, licence, calls
    label: str
    quantity: Decimal
    unit_price: Decimal | None
    exact_amount: Decimal
    amount: Decimal
    country: str | None = None
    number_type: str | None = None
    calls: int | None = None
    billed_seconds: int | None = None


@dataclass(frozen=True)
class FixedPart:
    """The fixed lines of a period, and each item left unbilled for want of a price."""

    lines: list[Line]
    warnings: list[str]


NUMBER_TYPES_FR = {
    "geographic": "géographiques",
    "mobile": "mobiles",
    "toll_free": "gratuits",
    "national": "non géographiques",
    "shared_cost": "à coût partagé",
}


def label_of(
    kind: str, locale: str, *, plan: str = "", country: str = "", kind_of: str = ""
) -> str:
    """A line's label in the invoice's language (French or English)."""
    french = locale == "fr"
    if kind == "plan":
        return f"Abonnement {plan}" if french else f"Subscription {plan}"
    if kind == "number":
        if french:
            return f"Numéros {NUMBER_TYPES_FR.get(kind_of, kind_of)} {country}"
        return f"Numbers {country} {kind_of.replace('_', '-')}"
    if kind == "user":
        return "Utilisateurs" if french else "Users"
    if kind == "licence":
        return "Licences centre d'appels" if french else "Call-centre licences"
    if kind == "calls":
        if french:
            return f"Appels vers {country} ({NUMBER_TYPES_FR.get(kind_of, kind_of)})"
        return f"Calls to {country} ({kind_of.replace('_', ' ')})"
    raise ValueError(f"no label for a {kind} line")


def priced_line(
    kind: str,
    label: str,
    quantity: int,
    unit_price: Decimal,
    *,
    country: str | None = None,
    number_type: str | None = None,
) -> Line:
    """A line of ``quantity`` items at ``unit_price``: exact product, rounded once."""
    exact = Decimal(quantity) * unit_price
    return Line(
        kind=kind,
        label=label,
        quantity=Decimal(quantity),
        unit_price=unit_price,
        exact_amount=exact,
        amount=money.round_line(exact),
        country=country,
        number_type=number_type,
    )


def held_during(rows: Iterable[Held], period: Period) -> list[Held]:
    """The rows held at some moment of ``period``.

    A row whose end is not after its start (taken and given back in one transaction) was
    never held.
    """
    starts, ends = period.starts_at, period.ends_at
    return [
        row
        for row in rows
        if row.held_from < ends
        and (row.held_until is None or (row.held_until > starts and row.held_until > row.held_from))
    ]


def fixed_part(
    period: Period, rows: Sequence[Held], plan_code: str, book: PriceBook, locale: str = "en"
) -> FixedPart:
    """The fixed lines of ``period`` from the tenant's holdings, at the prices of ``book``."""
    held = held_during(rows, period)
    lines: list[Line] = []
    warnings: list[str] = []
    day = book.day.isoformat()

    plan_price = book.plan(plan_code)
    if plan_price is None:
        warnings.append(f"plan {plan_code}: no price in force on {day}")
    else:
        lines.append(priced_line("plan", label_of("plan", locale, plan=plan_code), 1, plan_price))

    numbers: dict[tuple[str, str], set[int | str]] = {}
    for row in held:
        if row.item == "number" and row.country and row.number_type:
            key = row.ref_id if row.ref_id is not None else (row.label or "")
            numbers.setdefault((row.country, row.number_type), set()).add(key)
    for (country, kind_of), held_numbers in sorted(numbers.items()):
        price = book.number(plan_code, country, kind_of)
        if price is None:
            warnings.append(f"numbers {country} {kind_of}: no price in force on {day}")
            continue
        label = label_of("number", locale, country=country, kind_of=kind_of)
        lines.append(
            priced_line(
                "number", label, len(held_numbers), price, country=country, number_type=kind_of
            )
        )

    users = {
        row.ref_id if row.ref_id is not None else row.label for row in held if row.item == "user"
    }
    if users:
        price = book.user(plan_code)
        if price is None:
            warnings.append(f"users: no price in force on {day}")
        else:
            lines.append(priced_line("user", label_of("user", locale), len(users), price))

    licences = max((row.quantity for row in held if row.item == "licences"), default=0)
    if licences > 0:
        price = book.licence(plan_code)
        if price is None:
            warnings.append(f"licences: no price in force on {day}")
        else:
            lines.append(priced_line("licence", label_of("licence", locale), licences, price))
    return FixedPart(lines, warnings)
