"""The monthly prices in force on a day: what the fixed part of a month is billed at.

A period is billed at the prices in force on its first day (a price change takes effect
from the first period that starts on or after its effective date). A plan's own price for
an item wins over the price for every plan (``plan_code`` NULL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.billing.models import Price

PriceKey = tuple[str, str | None, str | None, str | None]  # item, plan, country, number type


@dataclass(frozen=True)
class PriceBook:
    """Every monthly price in force on ``day``; a method answers None where none is set."""

    day: date
    prices: dict[PriceKey, Decimal] = field(default_factory=dict)

    def _find(
        self, item: str, plan_code: str, country: str | None, kind: str | None
    ) -> Decimal | None:
        own = self.prices.get((item, plan_code, country, kind))
        return own if own is not None else self.prices.get((item, None, country, kind))

    def plan(self, plan_code: str) -> Decimal | None:
        return self.prices.get(("plan", plan_code, None, None))

    def number(self, plan_code: str, country: str, number_type: str) -> Decimal | None:
        return self._find("number", plan_code, country, number_type)

    def user(self, plan_code: str) -> Decimal | None:
        return self._find("user", plan_code, None, None)

    def licence(self, plan_code: str) -> Decimal | None:
        return self._find("licence", plan_code, None, None)


def book_of(rows: list[Price], day: date) -> PriceBook:
    """The book of ``day`` from price rows (any order): the latest in force per item."""
    latest: dict[PriceKey, tuple[date, Decimal]] = {}
    for row in rows:
        if row.effective_on > day:
            continue
        key = (row.item, row.plan_code, row.country, row.number_type)
        held = latest.get(key)
        if held is None or row.effective_on > held[0]:
            latest[key] = (row.effective_on, row.amount)
    return PriceBook(day, {key: amount for key, (_, amount) in latest.items()})


async def price_book(session: AsyncSession, day: date) -> PriceBook:
    """The prices in force on ``day``."""
    rows = (await session.scalars(select(Price).where(Price.effective_on <= day))).all()
    return book_of(list(rows), day)
