"""Rating: every billable outbound leg priced once, at the rate deck in force when it started.

A call's destination is classified by libphonenumber (country and number type), its origin
is the caller ID's country (``src``, E.164, set by the outbound route) else the tenant's. The
deck in force is the one with the latest ``activates_at`` at or before the call's start; in
it the call takes the longest prefix of its number that has a rate for it, then a rate for
its exact origin over one for any origin, then its exact number type over any type. Billed
seconds and the amount come from ``money.bill_seconds`` and ``money.call_amount``; nothing
is rounded to the cent here (``money.round_line`` does it once per invoice line).

A call no rate matches is still stored, its price and amount NULL: it is flagged, counted
and listed to the operator, never free by silence. Rating a month again recomputes every
row not yet on an invoice; invoiced rows never change.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberType
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.auth.principal import Principal
from graam_pbx.billing import money
from graam_pbx.billing.models import RatedCall, RateDeck
from graam_pbx.billing.periods import Period, month_start, next_month, period_month_of
from graam_pbx.billing.periods import previous_month as month_before
from graam_pbx.errors import Forbidden

log = logging.getLogger(__name__)

UNKNOWN_COUNTRY = "ZZ"  # ISO 3166's user-assigned code: libphonenumber's own "unknown region"
ANY = ""  # a rate's origin or number type that matches any
MAX_PREFIX = 15  # E.164: 15 digits at most
CHUNK = 20_000  # legs read (and rows copied) per round trip

# libphonenumber's types as rates and rated calls name them.
NUMBER_TYPES: dict[int, str] = {
    PhoneNumberType.FIXED_LINE: "geographic",
    # The North American plan (and a few others) cannot tell fixed from mobile by the number:
    # those numbers sit in geographic area codes and are priced as such.
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "geographic",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.VOICEMAIL: "voicemail",
}
UNKNOWN_TYPE = "unknown"
KNOWN_NUMBER_TYPES: frozenset[str] = frozenset({*NUMBER_TYPES.values(), UNKNOWN_TYPE})

# One rating of a month at a time (rating.py's advisory lock namespace, then the month):
# two schedulers or an operator's run beside the scheduler's wait instead of deadlocking on
# the same rows. Invoicing takes the same lock (``lock_month``) before it reads the calls.
_LOCK_NAMESPACE = 17_001


@functools.cache
def _national_prefix(country_code: int) -> re.Pattern[str] | None:
    """The pattern of a national prefix libphonenumber strips after this country code."""
    region = phonenumbers.region_code_for_country_code(country_code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    if metadata is None or not metadata.national_prefix_for_parsing:
        return None
    return re.compile(metadata.national_prefix_for_parsing)


def parse_e164(e164: str) -> phonenumbers.PhoneNumber:
    """``phonenumbers.parse(e164, None)``, in a tenth of its time for ``+`` and digits.

    For those, parse only splits the country code off the national number, strips a national
    prefix (then it is called) and notes Italian leading zeros; the same result, checked
    against parse over every region's example numbers by the tests.
    """
    digits = e164[1:]
    if not (e164.startswith("+") and 3 <= len(digits) <= 16 and digits.isascii()):
        return phonenumbers.parse(e164, None)
    if not digits.isdigit():
        return phonenumbers.parse(e164, None)
    for length in (1, 2, 3):
        country_code = int(digits[:length])
        if digits[0] != "0" and country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return phonenumbers.parse(e164, None)
    national = digits[length:]
    prefix = _national_prefix(country_code)
    if len(national) < 2 or (prefix is not None and prefix.match(national)):
        return phonenumbers.parse(e164, None)
    number = phonenumbers.PhoneNumber(country_code=country_code, national_number=int(national))
    if national[0] == "0":
        number.italian_leading_zero = True
        zeros = 1
        while zeros < len(national) - 1 and national[zeros] == "0":
            zeros += 1
        if zeros != 1:
            number.number_of_leading_zeros = zeros
    return number


def classify_destination(e164: str) -> tuple[str, str]:
    """The country (ISO 3166 alpha-2, "ZZ" when none) and number type of a dialled number."""
    try:
        parsed = parse_e164(e164)
    except phonenumbers.NumberParseException:
        return UNKNOWN_COUNTRY, UNKNOWN_TYPE
    region = phonenumbers.region_code_for_number(parsed)
    # "001" names non-geographic services (satellite, UIFN): no country.
    country = region if region and len(region) == 2 else UNKNOWN_COUNTRY
    return country, NUMBER_TYPES.get(phonenumbers.number_type(parsed), UNKNOWN_TYPE)


def origin_country(src: str | None, tenant_country: str) -> str:
    """The country a call comes from: its caller ID's (E.164), else the tenant's."""
    if src and src.startswith("+"):
        country, _ = classify_destination(src)
        if country != UNKNOWN_COUNTRY:
            return country
    return tenant_country


def digits_of(number: str) -> str | None:
    """The E.164 digits of ``+digits`` (1 to 15 of them), else None: nothing else is rated."""
    digits = number[1:]
    if number.startswith("+") and 0 < len(digits) <= MAX_PREFIX and digits.isascii():
        return digits if digits.isdigit() else None
    return None


@dataclass(frozen=True)
class DeckRate:
    """One row of a rate deck."""

    prefix: str
    origin_country: str
    number_type: str
    destination_country: str
    price_per_minute: Decimal
    connect_fee: Decimal


@dataclass
class CompiledDeck:
    """A deck ready for longest-prefix lookups: prefix → its rates, most specific first."""

    deck_id: int
    activates_at: datetime
    by_prefix: dict[str, list[DeckRate]] = field(default_factory=dict)

    @classmethod
    def compile(
        cls, deck_id: int, activates_at: datetime, rates: Iterable[DeckRate]
    ) -> CompiledDeck:
        """Index ``rates`` by prefix, each prefix's candidates in the order they are tried."""
        deck = cls(deck_id, activates_at)
        for rate in rates:
            deck.by_prefix.setdefault(rate.prefix, []).append(rate)
        for candidates in deck.by_prefix.values():
            # Exact origin before any origin, then exact type before any type.
            candidates.sort(key=lambda r: (r.origin_country == ANY, r.number_type == ANY))
        return deck

    def match(self, digits: str, origin: str, number_type: str) -> DeckRate | None:
        """The rate of a call to ``digits`` from ``origin``: the longest prefix with a rate
        for this origin and type (exact over any, origin first), else None."""
        by_prefix = self.by_prefix
        for length in range(min(len(digits), MAX_PREFIX), 0, -1):
            candidates = by_prefix.get(digits[:length])
            if candidates is None:
                continue
            for rate in candidates:
                if rate.origin_country in (origin, ANY) and rate.number_type in (number_type, ANY):
                    return rate
        return None


def deck_in_force(
    decks: Sequence[CompiledDeck], starts: Sequence[datetime], at: datetime
) -> CompiledDeck | None:
    """The deck with the latest activation at or before ``at`` (``starts``: the decks'
    activations, sorted, as ``decks``)."""
    index = bisect.bisect_right(starts, at) - 1
    return decks[index] if index >= 0 else None


@dataclass(frozen=True)
class CallPrice:
    """What rating decides for one call."""

    billed_seconds: int
    rate: DeckRate | None
    amount: Decimal | None


def price_call(billsec: Decimal, rate: DeckRate | None) -> CallPrice:
    """Billed seconds (every started second) and the exact amount at ``rate`` (None: unrated)."""
    billed = money.bill_seconds(billsec)
    if rate is None:
        return CallPrice(billed, None, None)
    return CallPrice(
        billed, rate, money.call_amount(billed, rate.price_per_minute, rate.connect_fee)
    )


@dataclass
class RatingReport:
    """Calls rated with a price, and calls no rate matched (flagged, amount NULL)."""

    rated: int = 0
    unrated: int = 0

    def __add__(self, other: RatingReport) -> RatingReport:
        return RatingReport(self.rated + other.rated, self.unrated + other.unrated)


def month_period(month: date, zone: ZoneInfo) -> Period:
    """The whole billing month of ``month`` on the billing clock."""
    first = month_start(month)
    return Period(first, date.fromordinal(next_month(first).toordinal() - 1), zone)


_COLUMNS = (
    "cdr_id",
    "started_at",
    "tenant_id",
    "period",
    "to_number",
    "origin_country",
    "destination_country",
    "number_type",
    "billsec",
    "billed_seconds",
    "deck_id",
    "prefix",
    "price_per_minute",
    "connect_fee",
    "amount",
)
_LEGS = """
SELECT c.id, CASE WHEN $5::boolean THEN c.started_at END, c.tenant_id,
    coalesce(c.to_number, c.dst) AS to_number, c.src, c.billsec, r.cdr_id IS NOT NULL AS stored
FROM cdrs c
LEFT JOIN rated_calls r ON r.cdr_id = c.id
WHERE c.billable AND c.direction = 'outbound' AND c.tenant_id IS NOT NULL
    AND c.started_at >= $1 AND c.started_at < $2
    AND ($3::bigint IS NULL OR c.tenant_id = $3)
    AND (r.cdr_id IS NULL OR (r.invoice_id IS NULL AND NOT $4::boolean))
"""

# What Python decides for a leg travels as small values: the rate as a reference into
# rating_rates (the rates the month's calls used, each copied once) and the exact amount as
# whole millionths (``CALL_PRECISION``, lossless); a new leg's own columns are joined back from
# cdrs. New legs are inserted chunk by chunk, stored ones updated once at the end: no ON
# CONFLICT, which costs twice a plain insert; the month's lock (``lock_month``) keeps any other
# rating from inserting meanwhile.
_TEMP_TABLES = """
DROP TABLE IF EXISTS pg_temp.rating_new, pg_temp.rating_stored, pg_temp.rating_rates;
CREATE TEMP TABLE rating_new (
    cdr_id bigint, origin_country text, destination_country text, number_type text,
    billed_seconds integer, rate_ref integer, amount_millionths bigint
);
CREATE TEMP TABLE rating_stored (LIKE rating_new);
CREATE TEMP TABLE rating_rates (
    rate_ref integer PRIMARY KEY, deck_id bigint, prefix text, price_per_minute numeric,
    connect_fee numeric
);
"""
_BATCH_COLUMNS = (
    "cdr_id",
    "origin_country",
    "destination_country",
    "number_type",
    "billed_seconds",
    "rate_ref",
    "amount_millionths",
)

# One chunk of new legs (rating_new holds only that chunk). The chunk's id range ($4, $5)
# lets cdrs be read by its primary key: on the join alone, every chunk would scan the month.
_INSERT = f"""
INSERT INTO rated_calls ({", ".join(_COLUMNS)}, rated_at)
SELECT b.cdr_id, c.started_at, c.tenant_id, $3::date, left(coalesce(c.to_number, c.dst), 32),
    b.origin_country, b.destination_country, b.number_type, c.billsec, b.billed_seconds,
    r.deck_id, r.prefix, r.price_per_minute, r.connect_fee,
    b.amount_millionths * 0.000001, now()
FROM rating_new b
JOIN cdrs c ON c.id = b.cdr_id AND c.started_at >= $1 AND c.started_at < $2
    AND c.id BETWEEN $4 AND $5
LEFT JOIN rating_rates r ON r.rate_ref = b.rate_ref
"""  # noqa: S608 - only the constant column names above are formatted in

# The rating of a stored leg; a CDR never changes, nor do the columns copied from it.
_RATED = (
    "origin_country",
    "destination_country",
    "number_type",
    "billed_seconds",
    "deck_id",
    "prefix",
    "price_per_minute",
    "connect_fee",
    "amount",
)
_UPDATE = f"""
UPDATE rated_calls SET ({", ".join(_RATED)}, rated_at) = (
    n.origin_country, n.destination_country, n.number_type, n.billed_seconds, n.deck_id,
    n.prefix, n.price_per_minute, n.connect_fee, n.amount, now())
FROM (
    SELECT b.cdr_id, b.origin_country, b.destination_country, b.number_type,
        b.billed_seconds, r.deck_id, r.prefix, r.price_per_minute, r.connect_fee,
        b.amount_millionths * 0.000001 AS amount
    FROM rating_stored b LEFT JOIN rating_rates r ON r.rate_ref = b.rate_ref
) AS n
WHERE rated_calls.cdr_id = n.cdr_id AND rated_calls.invoice_id IS NULL
    AND ({", ".join(f"rated_calls.{c}" for c in _RATED)})
        IS DISTINCT FROM ({", ".join(f"n.{c}" for c in _RATED)})
"""  # noqa: S608 - only the constant column names above are formatted in


async def _driver(session: AsyncSession) -> asyncpg.Connection:
    # The bulk read and write go through the session's own asyncpg connection (its
    # transaction): COPY and C-decoded rows are several times faster than ORM rows.
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None  # noqa: S101 - an open connection has its driver connection
    connection_: asyncpg.Connection = raw
    return connection_


async def lock_month(session: AsyncSession, month: date) -> None:
    """Wait for, then hold until the transaction ends, the rating lock of ``month``."""
    # Through the session: this also begins its transaction on the driver's connection.
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:namespace, :month)"),
        {"namespace": _LOCK_NAMESPACE, "month": month_start(month).toordinal()},
    )


async def _decks(raw: asyncpg.Connection, period: Period) -> list[CompiledDeck]:
    """The decks that can be in force during ``period``: the last one activated by its start
    and every one activated within it."""
    rows = await raw.fetch(
        "SELECT id, activates_at FROM rate_decks WHERE activates_at < $1 ORDER BY activates_at",
        period.ends_at,
    )
    first = 0
    for index, row in enumerate(rows):
        if row["activates_at"] <= period.starts_at:
            first = index
    rows = rows[first:]
    rates: dict[int, list[DeckRate]] = {row["id"]: [] for row in rows}
    if rows:
        for rate in await raw.fetch(
            "SELECT deck_id, prefix, origin_country, number_type, destination_country, "
            "price_per_minute, connect_fee FROM rates WHERE deck_id = ANY($1::bigint[])",
            list(rates),
        ):
            rates[rate["deck_id"]].append(
                DeckRate(
                    rate["prefix"],
                    rate["origin_country"],
                    rate["number_type"],
                    rate["destination_country"],
                    rate["price_per_minute"],
                    rate["connect_fee"],
                )
            )
    return [CompiledDeck.compile(row["id"], row["activates_at"], rates[row["id"]]) for row in rows]


# Classification is the costly part of rating (libphonenumber's patterns, some 20 µs a
# number) and a call centre dials the same numbers again and again: the process keeps the
# latest ones (some 50 MB at most).
_classified = functools.lru_cache(maxsize=1 << 18)(classify_destination)


class _Rater:
    """Rates legs with per-run caches: a call's origin is found once per (caller ID, tenant),
    its destination and rate once per (number, origin, deck), an amount once per rate and
    billed seconds."""

    def __init__(
        self, decks: list[CompiledDeck], countries: dict[int, str], period: Period
    ) -> None:
        self.decks = decks
        self.starts = [deck.activates_at for deck in decks]
        # One deck in force for the whole period: no call needs its start compared.
        self.only: CompiledDeck | None = (
            decks[0] if len(decks) == 1 and decks[0].activates_at <= period.starts_at else None
        )
        self.countries = countries
        self.origins: dict[tuple[str, int], str] = {}  # (caller ID, tenant) -> origin
        # (number, origin, deck) -> (destination country, number type, rate reference, rate),
        # the reference 0 when no rate: keyed by origin, not by tenant, as a thousand tenants
        # dial the same numbers.
        self.calls: dict[tuple[str, str, int], tuple[str, str, int, DeckRate | None]] = {}
        self.rates: dict[int, tuple[Any, ...]] = {}  # id(rate) -> its rating_rates row
        self.fresh_rates: list[tuple[Any, ...]] = []  # rating_rates rows not yet copied
        self.amounts: dict[tuple[int, int], int] = {}
        self.report = RatingReport()

    def _origin(self, src: str, tenant_id: int) -> str:
        tenant_country = self.countries.get(tenant_id, UNKNOWN_COUNTRY)
        origin = self.origins[(src, tenant_id)] = origin_country(src, tenant_country)
        return origin

    def _call(
        self, to_number: str, origin: str, deck: CompiledDeck | None
    ) -> tuple[str, str, int, DeckRate | None]:
        country, number_type = _classified(to_number)
        digits = digits_of(to_number)
        rate = deck.match(digits, origin, number_type) if deck and digits else None
        call: tuple[str, str, int, DeckRate | None] = (country, number_type, 0, None)
        if deck is not None and rate is not None:
            known = self.rates.get(id(rate))
            if known is None:
                known = self.rates[id(rate)] = (
                    len(self.rates) + 1, deck.deck_id, rate.prefix, rate.price_per_minute,
                    rate.connect_fee,
                )  # fmt: skip
                self.fresh_rates.append(known)
            call = (rate.destination_country, number_type, known[0], rate)
        self.calls[(to_number, origin, deck.deck_id if deck else 0)] = call
        return call

    def rows(self, legs: Iterable[Any]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Rating rows (``_BATCH_COLUMNS``) of ``legs`` (cdrs rows as ``_LEGS`` reads them):
        the new ones', then the stored ones'."""
        # The loop runs once per leg: its lookups are bound to locals.
        origins, calls, amounts, only = self.origins, self.calls, self.amounts, self.only
        bill_seconds, call_amount = money.bill_seconds, money.call_amount
        new: list[tuple[Any, ...]] = []
        stored_rows: list[tuple[Any, ...]] = []
        rated = unrated = 0
        for cdr_id, started_at, tenant_id, to_number, src, billsec, stored in legs:
            origin = origins.get((src, tenant_id)) or self._origin(src, tenant_id)
            deck = only or deck_in_force(self.decks, self.starts, started_at)
            number = to_number or ""
            call = calls.get((number, origin, deck.deck_id if deck else 0)) or self._call(
                number, origin, deck
            )
            country, number_type, ref, rate = call
            billed = bill_seconds(billsec)
            if rate is None:
                unrated += 1
                row: tuple[Any, ...] = (cdr_id, origin, country, number_type, billed, None, None)
            else:
                rated += 1
                amount = amounts.get((ref, billed))
                if amount is None:
                    exact = call_amount(billed, rate.price_per_minute, rate.connect_fee)
                    # Whole millionths: exact, as call_amount keeps CALL_PRECISION (6 decimals).
                    amount = amounts[(ref, billed)] = int(exact.scaleb(6))
                row = (cdr_id, origin, country, number_type, billed, ref, amount)
            (stored_rows if stored else new).append(row)
        self.report.rated += rated
        self.report.unrated += unrated
        return new, stored_rows


async def rate_period(
    session: AsyncSession,
    *,
    month: date,
    zone: ZoneInfo,
    tenant_id: int | None = None,
    only_new: bool = False,
) -> RatingReport:
    """Rate every billable outbound leg that started in ``month`` (billing clock): new ones
    are stored, the rest recomputed unless invoiced. ``only_new``: skip stored legs."""
    period = month_period(month, zone)
    await session.flush()
    await lock_month(session, period.month)
    raw = await _driver(session)  # after the lock: the transaction has begun
    decks = await _decks(raw, period)
    countries = {
        row["id"]: row["country"] for row in await raw.fetch("SELECT id, country FROM tenants")
    }
    rater = _Rater(decks, countries, period)
    await raw.execute(_TEMP_TABLES)
    insert = await raw.prepare(_INSERT)  # prepared now: sending it later takes no round trip
    # With one deck in force all month, no call's start is needed (nor decoded).
    cursor = await raw.cursor(
        _LEGS, period.starts_at, period.ends_at, tenant_id, only_new, rater.only is None
    )
    # Two cores, one pipeline: the server inserts chunk N while Python rates chunk N + 1.
    # One connection runs one statement at a time, so the insert is awaited before the next
    # read; everything stays in the caller's transaction.
    inserting: asyncio.Task[Any] | None = None
    try:
        legs = await cursor.fetch(CHUNK)
        while legs:
            new, stored = rater.rows(legs)
            if inserting is not None:
                await inserting
                inserting = None
            legs = await cursor.fetch(CHUNK)
            if rater.fresh_rates:
                await raw.copy_records_to_table("rating_rates", records=rater.fresh_rates)
                rater.fresh_rates = []
            if stored:
                await raw.copy_records_to_table(
                    "rating_stored", records=stored, columns=_BATCH_COLUMNS
                )
            if new:
                await raw.execute("TRUNCATE pg_temp.rating_new")
                await raw.copy_records_to_table("rating_new", records=new, columns=_BATCH_COLUMNS)
                ids = [row[0] for row in new]
                inserting = asyncio.create_task(
                    insert.fetch(period.starts_at, period.ends_at, period.month, min(ids), max(ids))
                )
                # Let the task send the statement before Python takes the core again.
                await asyncio.sleep(0)
        if inserting is not None:
            await inserting
            inserting = None
    finally:
        if inserting is not None:  # failed meanwhile: the connection must be idle again
            await asyncio.wait({inserting})
    await raw.execute("ANALYZE pg_temp.rating_stored")
    await raw.execute(_UPDATE)
    await raw.execute("DROP TABLE pg_temp.rating_new, pg_temp.rating_stored, pg_temp.rating_rates")
    if rater.report.unrated:
        log.warning(
            "%d call(s) of %s have no rate: flagged, see GET /api/v1/billing/unrated-calls",
            rater.report.unrated,
            period.month.isoformat(),
        )
    return rater.report


# The decks (id, last correction) each month was last rated in full against, in this process:
# the scheduler rates only new legs while they are unchanged, everything again when a deck
# was published or corrected since (and once after each start).
_rated_against: dict[date, list[tuple[int, datetime | None]]] = {}


async def rate_pending(
    session_factory: async_sessionmaker[AsyncSession], zone: ZoneInfo, now: datetime
) -> RatingReport:
    """The scheduler's pass: rate the current and the previous billing month, each in its
    own transaction."""
    current = period_month_of(now, zone)
    report = RatingReport()
    for month in (month_before(current), current):
        async with session_factory() as session, session.begin():
            period = month_period(month, zone)
            decks = [
                (row.id, row.corrected_at)
                for row in await session.execute(
                    select(RateDeck.id, RateDeck.corrected_at)
                    .where(RateDeck.activates_at < period.ends_at)
                    .order_by(RateDeck.id)
                )
            ]
            unchanged = _rated_against.get(month) == decks
            report += await rate_period(session, month=month, zone=zone, only_new=unchanged)
        _rated_against[month] = decks
    return report


async def unrated_calls(
    session: AsyncSession, principal: Principal, month: date, after: int | None, limit: int
) -> tuple[list[RatedCall], int | None]:
    """The month's calls no rate matched, by CDR id (keyset page), for the operator."""
    if not principal.is_operator:
        raise Forbidden("only operators may do this")
    query = (
        select(RatedCall)
        .where(RatedCall.period == month_start(month), RatedCall.amount.is_(None))
        .order_by(RatedCall.cdr_id)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(RatedCall.cdr_id > after)
    rows = list((await session.scalars(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].cdr_id if more and rows else None


__all__ = [
    "KNOWN_NUMBER_TYPES",
    "NUMBER_TYPES",
    "CompiledDeck",
    "DeckRate",
    "RatingReport",
    "classify_destination",
    "deck_in_force",
    "lock_month",
    "origin_country",
    "parse_e164",
    "price_call",
    "rate_pending",
    "rate_period",
    "unrated_calls",
]
