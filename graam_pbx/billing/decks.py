"""Rate decks: importing a CSV (validated whole, all or nothing), activation under the
one-month rule, corrections that only lower, and the rates a client is shown.

The CSV's columns (a header line naming them, in any order):
``prefix,destination_country,origin_country,number_type,price_per_minute,connect_fee``;
``origin_country`` and ``number_type`` empty mean any, ``connect_fee`` empty means 0.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final, Literal

import asyncpg
import phonenumbers
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit_service
from graam_pbx.auth.principal import Principal, Scope
from graam_pbx.billing.models import Rate, RateDeck
from graam_pbx.db import flush_or_conflict
from graam_pbx.errors import Conflict, Forbidden, GraamError, Invalid, NotFound
from graam_pbx.notices import service as notices_service
from graam_pbx.notices.schemas import NoticeCreate

COLUMNS: Final = (
    "prefix",
    "destination_country",
    "origin_country",
    "number_type",
    "price_per_minute",
    "connect_fee",
)
# The types libphonenumber tells apart, as rating names them (rating.py's classification).
NUMBER_TYPES: Final = frozenset(
    {
        "geographic",
        "mobile",
        "toll_free",
        "shared_cost",
        "premium_rate",
        "voip",
        "personal",
        "uan",
        "pager",
        "voicemail",
        "unknown",
    }
)
NON_GEOGRAPHIC: Final = "ZZ"  # satellite and other global services: no country
MAX_ROWS: Final = 500_000
MAX_AHEAD: Final = timedelta(days=3653)  # a deck or a price is published ten years ahead at most
MAX_REPORTED: Final = 100  # errors listed in a refusal (the count says how many in all)
# A price per minute or a connect fee: the rates table's numeric(14, 6).
_PRICE: Final = re.compile(r"^[0-9]{1,8}(\.[0-9]{1,6})?$")
_PREFIX: Final = re.compile(r"^[0-9]{1,15}$")
_NON_GEO_CODES: Final = frozenset(
    str(code) for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS
)

RateKey = tuple[str, str, str]  # prefix, origin country ("" any), number type ("" any)


class DeckInvalid(GraamError):
    """A CSV with bad rows: every bad line is named (the first ``MAX_REPORTED``)."""

    status_code = 422
    error_id = "validation-failed"

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        shown = problems[:MAX_REPORTED]
        super().__init__(
            f"{len(problems)} bad line(s) in the CSV, the first: line {shown[0][0]}: "
            f"{shown[0][1]}; nothing was stored",
            errors=[
                {"field": f"body.line.{line}", "line": line, "reason": reason}
                for line, reason in shown
            ],
            error_count=len(problems),
        )


@dataclass(frozen=True)
class RateRow:
    """One valid line of a deck's CSV."""

    line: int
    prefix: str
    destination_country: str
    origin_country: str
    number_type: str
    price_per_minute: Decimal
    connect_fee: Decimal

    @property
    def key(self) -> RateKey:
        return (self.prefix, self.origin_country, self.number_type)


def _country_problem(country: str, prefix: str) -> str | None:
    if country == NON_GEOGRAPHIC:
        if not any(prefix.startswith(code) for code in _NON_GEO_CODES):
            return "destination_country ZZ is for non-geographic country codes (881, 882, …)"
        return None
    if country not in phonenumbers.SUPPORTED_REGIONS:
        return f"destination_country {country!r} is not an ISO 3166 country with numbers"
    code = str(phonenumbers.country_code_for_region(country))
    if not prefix.startswith(code):
        return f"prefix {prefix} is not in {country}'s country code +{code}"
    return None


def _price(text: str, column: str, *, empty: Decimal | None) -> tuple[Decimal | None, str | None]:
    value = text.strip()
    if not value and empty is not None:
        return empty, None
    if not _PRICE.match(value):
        return None, (
            f"{column} {value!r} is not a decimal ≥ 0 with at most 6 decimals "
            "(digits, an optional point; no sign, no exponent)"
        )
    return Decimal(value), None


def _row(line: int, record: dict[str, str]) -> tuple[RateRow | None, str | None]:
    prefix = record["prefix"].strip()
    if not _PREFIX.match(prefix):
        return None, f"prefix {prefix!r} must be 1 to 15 digits (E.164, no '+')"
    country = record["destination_country"].strip()
    problem = _country_problem(country, prefix)
    if problem:
        return None, problem
    origin = record["origin_country"].strip()
    if origin and origin not in phonenumbers.SUPPORTED_REGIONS:
        return None, f"origin_country {origin!r} is not an ISO 3166 country with numbers"
    kind = record["number_type"].strip()
    if kind and kind not in NUMBER_TYPES:
        return None, f"number_type {kind!r} is not one of {', '.join(sorted(NUMBER_TYPES))}"
    price, problem = _price(record["price_per_minute"], "price_per_minute", empty=None)
    if problem:
        return None, problem
    fee, problem = _price(record["connect_fee"], "connect_fee", empty=Decimal(0))
    if problem:
        return None, problem
    assert price is not None and fee is not None  # noqa: S101 - set when no problem
    return RateRow(line, prefix, country, origin, kind, price, fee), None


def parse_deck(text: str) -> list[RateRow]:
    """Every row of a deck's CSV, or DeckInvalid naming every bad line (nothing half-read)."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    problems: list[tuple[int, str]] = []
    rows: list[RateRow] = []
    seen: dict[RateKey, int] = {}
    header: list[str] | None = None
    try:
        for fields in reader:
            line = reader.line_num
            if not any(field.strip() for field in fields):
                continue  # blank lines are no rates
            if header is None:
                header = [field.strip().lower() for field in fields]
                missing = [c for c in COLUMNS if c not in header]
                extra = [c for c in header if c not in COLUMNS]
                if missing or extra or len(set(header)) != len(header):
                    problems.append((line, f"the header must name the columns {','.join(COLUMNS)}"))
                    break
                continue
            if len(fields) != len(header):
                problems.append((line, f"{len(fields)} fields, the header names {len(header)}"))
                continue
            if len(rows) + len(problems) >= MAX_ROWS:
                problems.append((line, f"a deck has at most {MAX_ROWS} rates"))
                break
            row, problem = _row(line, dict(zip(header, fields, strict=True)))
            if row is None:
                problems.append((line, problem or "invalid"))
                continue
            first = seen.get(row.key)
            if first is not None:
                problems.append(
                    (line, f"the same prefix, origin and type as line {first}: {'/'.join(row.key)}")
                )
                continue
            seen[row.key] = line
            rows.append(row)
    except csv.Error as err:
        problems.append((reader.line_num, f"not CSV: {err}"))
    if header is None and not problems:
        problems.append((1, f"empty: a header line naming {','.join(COLUMNS)} is required"))
    if problems:
        raise DeckInvalid(problems)
    return rows


def decode_csv(body: bytes) -> str:
    """A CSV body as text (UTF-8), else a 422 on ``body``."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("body", "the CSV must be UTF-8 text") from None
    if "\x00" in text:
        raise Invalid("body", "NUL characters are not allowed")
    return text


# --- Corrections: add prefixes and lower prices, never raise one nor remove one -------------

_OTHER: Final = "\x00"  # an origin or type no rate names: only "any" rates match it


def chosen_rate(rates: Iterable[RateRow], origin: str, kind: str) -> RateRow | None:
    """The rate a call of this origin and type gets among ``rates`` (all covering it):
    the longest prefix, then an exact origin over any, then an exact type over any."""
    best: RateRow | None = None
    best_rank: tuple[int, bool, bool] | None = None
    for rate in rates:
        if rate.origin_country not in ("", origin) or rate.number_type not in ("", kind):
            continue
        rank = (len(rate.prefix), rate.origin_country != "", rate.number_type != "")
        if best_rank is None or rank > best_rank:
            best, best_rank = rate, rank
    return best


def correction_problems(
    existing: dict[RateKey, RateRow], rows: Sequence[RateRow]
) -> list[tuple[int, str]]:
    """Why each correction row would raise what some call pays (empty: it only adds or lowers).

    A row is checked against the deck as it was: for every kind of call (origin, type) the row
    would be chosen for, its price per minute and its connect fee must not exceed those of
    the rate that call got before (a call no rate covered was unrated, never free).
    """
    by_prefix: dict[str, list[RateRow]] = {}
    for rate in existing.values():
        by_prefix.setdefault(rate.prefix, []).append(rate)
    problems: list[tuple[int, str]] = []
    for row in rows:
        old = existing.get(row.key)
        if old is not None and old.destination_country != row.destination_country:
            problems.append(
                (
                    row.line,
                    f"{'/'.join(row.key)} is a rate to {old.destination_country}: a correction "
                    "changes prices, not destinations",
                )
            )
            continue
        covering = [
            rate
            for length in range(1, len(row.prefix) + 1)
            for rate in by_prefix.get(row.prefix[:length], [])
        ]
        after = [rate for rate in covering if rate.key != row.key] + [row]
        origins = (
            [row.origin_country]
            if row.origin_country
            else [
                *{rate.origin_country for rate in covering if rate.origin_country},
                _OTHER,
            ]
        )
        kinds = (
            [row.number_type]
            if row.number_type
            else [
                *{rate.number_type for rate in covering if rate.number_type},
                _OTHER,
            ]
        )
        for origin in origins:
            problem = None
            for kind in kinds:
                if chosen_rate(after, origin, kind) is not row:
                    continue
                before = chosen_rate(covering, origin, kind)
                if before is None:
                    continue
                if (
                    row.price_per_minute > before.price_per_minute
                    or row.connect_fee > before.connect_fee
                ):
                    problem = (
                        f"raises the price of calls rated at {'/'.join(before.key)} "
                        f"({before.price_per_minute}/min, fee {before.connect_fee}): a "
                        "correction may only add prefixes and lower prices"
                    )
                    break
            if problem:
                problems.append((row.line, problem))
                break
    return problems


# --- Paging by rate key ------------------------------------------------------------------


def encode_rate_cursor(key: RateKey) -> str:
    """The cursor after a rate (its key), opaque to clients."""
    return base64.urlsafe_b64encode("|".join(key).encode()).decode().rstrip("=")


def decode_rate_cursor(cursor: str | None) -> RateKey | None:
    """The key a cursor names, or a 422 on ``query.cursor``."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Invalid("query.cursor", "not a cursor returned by this API") from None
    parts = text.split("|")
    if (
        len(parts) != 3
        or not _PREFIX.match(parts[0])
        or not re.fullmatch(r"(|[A-Z]{2})", parts[1])
        or not re.fullmatch(r"(|[a-z_]{1,16})", parts[2])
    ):
        raise Invalid("query.cursor", "not a cursor returned by this API")
    return parts[0], parts[1], parts[2]


# --- Service ------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


async def _driver(session: AsyncSession) -> asyncpg.Connection:
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None  # noqa: S101 - an open connection has its driver connection
    driver: asyncpg.Connection = raw
    return driver


async def _copy_rates(session: AsyncSession, deck_id: int, rows: Sequence[RateRow]) -> None:
    # COPY through the session's own asyncpg connection (so within its transaction): tens of
    # thousands of rows in one round trip, where ORM or executemany inserts take seconds.
    await session.flush()
    raw = await _driver(session)
    await raw.copy_records_to_table(
        "rates",
        records=[
            (
                deck_id,
                row.prefix,
                row.origin_country,
                row.number_type,
                row.destination_country,
                row.price_per_minute,
                row.connect_fee,
            )
            for row in rows
        ],
        columns=[
            "deck_id",
            "prefix",
            "origin_country",
            "number_type",
            "destination_country",
            "price_per_minute",
            "connect_fee",
        ],
    )


def _deck_notice(deck: RateDeck, rows: Sequence[RateRow]) -> NoticeCreate:
    day = deck.activates_at.astimezone(UTC)
    countries = len({row.destination_country for row in rows})
    return NoticeCreate(
        title=f"New outbound call rates from {day:%Y-%m-%d}",
        body=(
            f"The rate deck {deck.name!r} applies to outbound calls from "
            f"{day:%Y-%m-%d %H:%M} UTC: {len(rows)} rates to {countries} destination "
            "countries. See your rates in the console (Billing, Rates) or through "
            "GET /api/v1/billing/rates?deck=next.\n\n"
            f"Nouveaux tarifs des appels sortants à partir du {day:%d/%m/%Y} : "
            "consultez-les dans la console (Facturation, Tarifs)."
        ),
        effective_on=day.date(),
    )


async def publish_deck(
    session: AsyncSession,
    principal: Principal,
    *,
    name: str,
    activates_at: datetime | None,
    csv_text: str,
    now: datetime | None = None,
) -> RateDeck:
    """Import a deck from CSV (operators): validated whole, stored whole, announced to every
    tenant. A month's notice is required, except for the very first deck (nothing changes)."""
    if not principal.is_operator:
        raise Forbidden("only operators publish rate decks")
    moment = now or _now()
    # Up to 500,000 lines checked with libphonenumber: seconds of CPU, off the event loop.
    rows = await asyncio.to_thread(parse_deck, csv_text)
    if not rows:
        raise Invalid("body", "the CSV has no rate")
    first = await session.scalar(select(func.count()).select_from(RateDeck)) == 0
    if activates_at is not None and activates_at.tzinfo is not None:
        try:
            horizon = activates_at.astimezone(UTC) > moment + MAX_AHEAD
        except OverflowError:
            horizon = True
        if horizon:
            raise Invalid("query.activates_at", "must be within the next ten years")
    if activates_at is None:
        if not first:
            raise Invalid(
                "query.activates_at",
                "required: only the very first deck may activate at once",
            )
        activates_at = moment
    elif activates_at.tzinfo is None:
        raise Invalid("query.activates_at", "give a time zone offset (e.g. Z or +01:00)")
    elif first:
        if activates_at < moment:
            raise Invalid("query.activates_at", "is in the past")
    else:
        earliest = notices_service.earliest_effective_date(moment)
        if activates_at.astimezone(UTC).date() < earliest:
            raise Invalid(
                "query.activates_at",
                f"must be at least one month after publication: {earliest.isoformat()} or later",
            )
    if await session.scalar(select(RateDeck.id).where(RateDeck.activates_at == activates_at)):
        raise Conflict("another deck activates at that very instant", field="query.activates_at")
    deck = RateDeck(
        name=name,
        activates_at=activates_at,
        published_at=moment,
        published_by=principal.label,
        rates_count=len(rows),
    )
    session.add(deck)
    await flush_or_conflict(session, otherwise="another deck activates at that very instant")
    await _copy_rates(session, deck.id, rows)
    if activates_at.astimezone(UTC).date() >= notices_service.earliest_effective_date(moment):
        # The very first deck activating at once changes nobody's price: nothing to announce.
        notice = await notices_service.publish(
            session, principal, _deck_notice(deck, rows), now=moment
        )
        deck.notice_id = notice.id
    await audit_service.record(
        session,
        principal,
        "publish",
        "rate_deck",
        deck.id,
        {
            "name": name,
            "activates_at": activates_at.isoformat(),
            "rates": len(rows),
            "notice_id": deck.notice_id,
        },
    )
    await session.flush()
    return deck


async def _deck_rows(raw: asyncpg.Connection, deck_id: int) -> dict[RateKey, RateRow]:
    records = await raw.fetch(
        "SELECT prefix, origin_country, number_type, destination_country, price_per_minute, "
        "connect_fee FROM rates WHERE deck_id = $1",
        deck_id,
    )
    return {
        (r["prefix"], r["origin_country"], r["number_type"]): RateRow(
            0,
            r["prefix"],
            r["destination_country"],
            r["origin_country"],
            r["number_type"],
            r["price_per_minute"],
            r["connect_fee"],
        )
        for r in records
    }


@dataclass(frozen=True)
class Correction:
    """What a correction did."""

    deck: RateDeck
    added: int
    lowered: int
    unchanged: int


async def correct_deck(
    session: AsyncSession,
    principal: Principal,
    deck_id: int,
    csv_text: str,
    *,
    now: datetime | None = None,
) -> Correction:
    """Add prefixes to a deck and lower its prices (operators); a row that would raise what
    any call pays is refused with its line, and nothing changes."""
    if not principal.is_operator:
        raise Forbidden("only operators correct rate decks")
    deck = await session.get(RateDeck, deck_id, with_for_update=True)
    if deck is None:
        raise NotFound(f"no rate deck {deck_id}")
    rows = await asyncio.to_thread(parse_deck, csv_text)
    if not rows:
        raise Invalid("body", "the CSV has no rate")
    raw = await _driver(session)
    existing = await _deck_rows(raw, deck.id)
    problems = await asyncio.to_thread(correction_problems, existing, rows)
    if problems:
        raise DeckInvalid(problems)
    added = [row for row in rows if row.key not in existing]
    lowered = [
        row
        for row in rows
        if row.key in existing
        and (
            row.price_per_minute != existing[row.key].price_per_minute
            or row.connect_fee != existing[row.key].connect_fee
        )
    ]
    if added:
        await _copy_rates(session, deck.id, added)
    if lowered:
        await raw.executemany(
            "UPDATE rates SET price_per_minute = $5, connect_fee = $6 "
            "WHERE deck_id = $1 AND prefix = $2 AND origin_country = $3 AND number_type = $4",
            [
                (
                    deck.id,
                    row.prefix,
                    row.origin_country,
                    row.number_type,
                    row.price_per_minute,
                    row.connect_fee,
                )
                for row in lowered
            ],
        )
    if added or lowered:
        deck.corrected_at = now or _now()
        deck.rates_count += len(added)
        await audit_service.record(
            session,
            principal,
            "correct",
            "rate_deck",
            deck.id,
            {
                "added": len(added),
                "lowered": len(lowered),
                "lowered_keys": ["/".join(row.key) for row in lowered[:MAX_REPORTED]],
                "added_keys": ["/".join(row.key) for row in added[:MAX_REPORTED]],
            },
        )
        await session.flush()
    return Correction(deck, len(added), len(lowered), len(rows) - len(added) - len(lowered))


async def list_decks(
    session: AsyncSession, principal: Principal, *, after_id: int | None, limit: int
) -> tuple[list[RateDeck], int | None]:
    """Every deck (operators), oldest published first."""
    if not principal.is_operator:
        raise Forbidden("only operators list rate decks")
    statement = select(RateDeck)
    if after_id is not None:
        statement = statement.where(RateDeck.id > after_id)
    found = list((await session.scalars(statement.order_by(RateDeck.id).limit(limit + 1))).all())
    if len(found) > limit:
        return found[:limit], found[limit - 1].id
    return found, None


async def get_deck(session: AsyncSession, principal: Principal, deck_id: int) -> RateDeck:
    """One deck (operators)."""
    if not principal.is_operator:
        raise Forbidden("only operators read rate decks")
    deck = await session.get(RateDeck, deck_id)
    if deck is None:
        raise NotFound(f"no rate deck {deck_id}")
    return deck


async def deck_rates(
    session: AsyncSession,
    deck_id: int,
    *,
    country: str | None = None,
    prefix: str | None = None,
    after: RateKey | None = None,
    limit: int = 50,
) -> tuple[list[Rate], RateKey | None]:
    """A page of a deck's rates ordered by prefix, origin, type; the key to continue after."""
    statement = select(Rate).where(Rate.deck_id == deck_id)
    if country is not None:
        statement = statement.where(Rate.destination_country == country)
    if prefix is not None:
        statement = statement.where(Rate.prefix.startswith(prefix, autoescape=True))
    if after is not None:
        statement = statement.where(
            func.row(Rate.prefix, Rate.origin_country, Rate.number_type)
            > func.row(after[0], after[1], after[2])
        )
    statement = statement.order_by(Rate.prefix, Rate.origin_country, Rate.number_type)
    found = list((await session.scalars(statement.limit(limit + 1))).all())
    if len(found) > limit:
        last = found[limit - 1]
        return found[:limit], (last.prefix, last.origin_country, last.number_type)
    return found, None


async def deck_in_force(
    session: AsyncSession, which: Literal["current", "next"], *, now: datetime | None = None
) -> RateDeck | None:
    """The deck in force now (``current``) or the next one published to activate (``next``)."""
    moment = now or _now()
    if which == "current":
        statement = (
            select(RateDeck)
            .where(RateDeck.activates_at <= moment)
            .order_by(RateDeck.activates_at.desc())
        )
    else:
        statement = (
            select(RateDeck).where(RateDeck.activates_at > moment).order_by(RateDeck.activates_at)
        )
    found: RateDeck | None = await session.scalar(statement.limit(1))
    return found


@dataclass(frozen=True)
class ClientRates:
    """A page of the rates a client is shown: the deck (None: none published), its rates, and
    the cursor of the next page (None: the last)."""

    deck: RateDeck | None
    rates: list[Rate]
    next_cursor: str | None


async def rates_for_client(
    session: AsyncSession,
    scope: Scope | Principal,
    *,
    deck: Literal["current", "next"] = "current",
    country: str | None = None,
    prefix: str | None = None,
    after: str | None = None,
    limit: int = 50,
    now: datetime | None = None,
) -> ClientRates:
    """The rates of the deck in force now or of the next one, as any user of a tenant sees
    them (rates concern every tenant alike); ``after`` is the previous page's cursor."""
    # Every authenticated caller may read the rates: the contract shows them to each client.
    del scope
    key = decode_rate_cursor(after)
    found = await deck_in_force(session, deck, now=now)
    if found is None:
        return ClientRates(None, [], None)
    rates, last = await deck_rates(
        session, found.id, country=country, prefix=prefix, after=key, limit=limit
    )
    return ClientRates(found, rates, encode_rate_cursor(last) if last else None)
