"""Gap-free sequential numbers of invoices (F2026-000001) and credit notes (A2026-000001).

French law wants invoices numbered in one unbroken sequence. The counter of a series (one per
kind and year) is taken in the invoice's own transaction by one upsert: concurrent runs wait
on its row, and a transaction that rolls back gives its number back, so no number is lost or
given twice.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Kind = Literal["invoice", "credit_note"]

PREFIXES: dict[str, str] = {"invoice": "F", "credit_note": "A"}

_TAKE = text(
    "INSERT INTO invoice_counters (series, last) VALUES (:series, 1)"
    " ON CONFLICT (series) DO UPDATE SET last = invoice_counters.last + 1"
    " RETURNING last"
)


def series_of(kind: Kind, year: int) -> str:
    """The series a number of ``kind`` issued in ``year`` belongs to (``F2026``)."""
    return f"{PREFIXES[kind]}{year:04d}"


def format_number(series: str, sequence: int) -> str:
    """A number as printed: its series and its place in it on six digits (more if needed)."""
    return f"{series}-{sequence:06d}"


async def next_number(session: AsyncSession, kind: Kind, year: int) -> str:
    """The next number of ``kind`` for ``year``, held until the caller's transaction ends."""
    if kind not in PREFIXES:
        raise ValueError(f"no numbering series for {kind!r}")
    series = series_of(kind, year)
    last = (await session.execute(_TAKE, {"series": series})).scalar_one()
    return format_number(series, int(last))
