"""Rating against the real Postgres: the deck in force, the billing clock, re-rating after a
correction (invoiced calls never change), unrated calls flagged and listed to operators.

Rate decks are the platform's, not a tenant's: each test works in a year of its own, far
ahead, so that no other test's deck is in force for its calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.billing import rating
from graam_pbx.billing.models import Rate, RatedCall, RateDeck
from graam_pbx.cdr.models import Cdr
from tests.factories import fields_of, make_world, unique

Sessions = async_sessionmaker[AsyncSession]
PARIS = ZoneInfo("Europe/Paris")
RUNS = "/api/v1/billing/rating-runs"
UNRATED = "/api/v1/billing/unrated-calls"


@dataclass(frozen=True)
class Leg:
    at: datetime
    to: str
    billsec: str
    src: str = "201"
    billable: bool = True


async def add_deck(
    sessions: Sessions, activates_at: datetime, rates: list[tuple[str, str, str, str]]
) -> int:
    """A deck of (prefix, origin, type, price per minute) rows; returns its id."""
    async with sessions() as session, session.begin():
        deck = RateDeck(
            name=unique("deck"), activates_at=activates_at, published_by="test", rates_count=0
        )
        session.add(deck)
        await session.flush()
        for prefix, origin, number_type, price in rates:
            session.add(
                Rate(
                    deck_id=deck.id,
                    prefix=prefix,
                    origin_country=origin,
                    number_type=number_type,
                    destination_country="ZZ",
                    price_per_minute=Decimal(price),
                    connect_fee=Decimal(0),
                )
            )
        deck.rates_count = len(rates)
        return deck.id


async def add_legs(sessions: Sessions, tenant_id: int, legs: list[Leg]) -> list[int]:
    """CDRs as the CDR writer stores them; returns their ids."""
    ids = []
    async with sessions() as session, session.begin():
        for n, leg in enumerate(legs):
            await session.execute(text("SELECT cdrs_ensure_partition(:at)"), {"at": leg.at})
            cdr = Cdr(
                started_at=leg.at,
                system_name="test",
                uniqueid=unique("cdr"),
                sequence=n,
                linkedid=unique("l"),
                answered_at=leg.at,
                ended_at=leg.at + timedelta(minutes=5),
                duration=Decimal(leg.billsec),
                billsec=Decimal(leg.billsec),
                disposition="ANSWERED" if leg.billable else "NO ANSWER",
                billable=leg.billable,
                tenant_id=tenant_id,
                direction="outbound",
                src=leg.src,
                dst=leg.to,
                to_number=leg.to,
                dcontext="x",
                clid="x",
                channel="PJSIP/x",
                dstchannel="",
                lastapp="Dial",
                lastdata="",
                accountcode=f"t{tenant_id}",
                peeraccount="",
                amaflags="DOCUMENTATION",
                userfield="",
                source="ami",
            )
            session.add(cdr)
            await session.flush()
            ids.append(cdr.id)
    return ids


async def rated(sessions: Sessions, ids: list[int]) -> dict[int, RatedCall]:
    async with sessions() as session:
        rows = (await session.scalars(select(RatedCall).where(RatedCall.cdr_id.in_(ids)))).all()
        return {row.cdr_id: row for row in rows}


def paris(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


async def test_calls_are_rated_at_the_deck_in_force_on_the_billing_clock(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    year = 2041
    await add_deck(
        sessions,
        paris(year, 1, 1, 0),
        [
            ("33", "", "", "0.05"),
            ("336", "", "mobile", "0.20"),
            ("44", "GB", "", "0.10"),
        ],
    )
    await add_deck(sessions, paris(year, 3, 15, 0), [("33", "", "", "0.07")])
    legs = [
        Leg(paris(year, 3, 2), "+33142685300", "60.000"),  # 0: 60 s, €0.05
        Leg(paris(year, 3, 2, 11), "+33142685300", "60.001"),  # 1: 61 s
        Leg(paris(year, 3, 3), "+33612345678", "0.2"),  # 2: 1 s of mobile
        Leg(paris(year, 3, 4), "+447912345678", "60", src="+442079460000"),  # 3: from GB
        Leg(paris(year, 3, 4, 12), "+447912345678", "60"),  # 4: from FR: no rate
        Leg(paris(year, 3, 20), "+33142685300", "60"),  # 5: the second deck's
        Leg(paris(year, 3, 5), "+33142685300", "0", billable=False),  # 6: never billed
        Leg(paris(year, 3, 1, 0, 30), "+33142685300", "30"),  # 7: Feb 28 in UTC: March
        Leg(paris(year, 4, 1, 0, 30), "+33142685300", "30"),  # 8: March 31 in UTC: April
    ]
    ten = [Leg(paris(year, 3, 6, 9, n), "+33142685301", "60") for n in range(10)]
    ids = await add_legs(sessions, world.tenant_id, legs + ten)
    assert legs[7].at.astimezone(UTC).month == 2 and legs[8].at.astimezone(UTC).month == 3

    run = await client.post(
        RUNS,
        headers=world.operator.headers,
        json={"month": f"{year}-03-01", "tenant_id": world.tenant_id},
    )
    assert run.status_code == 200, run.text
    assert run.json() == {
        "month": f"{year}-03-01",
        "tenant_id": world.tenant_id,
        "rated": 16,
        "unrated": 1,
    }
    rows = await rated(sessions, ids)
    assert set(rows) == set(ids) - {ids[6], ids[8]}
    amounts = {n: rows[ids[n]].amount for n in (0, 1, 2, 3, 4, 5, 7)}
    assert amounts == {
        0: Decimal("0.05"),
        1: Decimal("0.050833"),
        2: Decimal("0.003333"),
        3: Decimal("0.10"),
        4: None,
        5: Decimal("0.07"),
        7: Decimal("0.025"),
    }
    assert [rows[ids[n]].billed_seconds for n in (0, 1, 2)] == [60, 61, 1]
    first = rows[ids[0]]
    assert (first.origin_country, first.number_type, first.prefix) == ("FR", "geographic", "33")
    assert first.period == date(year, 3, 1)
    assert rows[ids[2]].prefix == "336" and rows[ids[2]].number_type == "mobile"
    assert rows[ids[3]].origin_country == "GB"
    assert rows[ids[5]].deck_id != rows[ids[0]].deck_id
    unrated = rows[ids[4]]
    assert (unrated.deck_id, unrated.price_per_minute, unrated.prefix) == (None, None, None)
    ten_sum = sum((rows[i].amount or Decimal(0)) for i in ids[len(legs) :])
    assert ten_sum == Decimal("0.50")

    listed = await client.get(
        UNRATED, headers=world.operator.headers, params={"month": f"{year}-03-01"}
    )
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == [
        {
            "cdr_id": ids[4],
            "tenant_id": world.tenant_id,
            "to_number": "+447912345678",
            "origin": "FR",
            "destination_country": "GB",
            "type": "mobile",
            "started_at": legs[4].at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "billsec": "60.000000",
            "billed_seconds": 60,
        }
    ]

    # April's call is April's.
    april = await client.post(
        RUNS,
        headers=world.operator.headers,
        json={"month": f"{year}-04-01", "tenant_id": world.tenant_id},
    )
    assert april.json()["rated"] == 1
    assert (await rated(sessions, [ids[8]]))[ids[8]].amount == Decimal("0.035")


async def test_rating_is_for_operators_and_checks_its_month(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    for role in ("admin", "supervisor", "agent"):
        refused = await client.post(RUNS, headers=world.headers(role), json={"month": "2041-03-01"})
        assert refused.status_code == 403, refused.text
        listed = await client.get(
            UNRATED, headers=world.headers(role), params={"month": "2041-03-01"}
        )
        assert listed.status_code == 403, listed.text
    for month in ("2041-03-02", "1999-12-01", "March"):
        bad = await client.post(RUNS, headers=world.operator.headers, json={"month": month})
        assert bad.status_code == 422, bad.text
        assert fields_of(bad) == {"body.month"}
        listed = await client.get(UNRATED, headers=world.operator.headers, params={"month": month})
        assert listed.status_code == 422, listed.text
        assert fields_of(listed) == {"query.month"}
    missing = await client.post(
        RUNS, headers=world.operator.headers, json={"month": "2041-03-01", "tenant_id": 2**62}
    )
    assert missing.status_code == 404, missing.text


async def test_rating_again_after_a_correction_changes_only_what_is_not_invoiced(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    year = 2042
    deck = await add_deck(sessions, paris(year, 1, 1, 0), [("33", "", "", "0.05")])
    ids = await add_legs(
        sessions,
        world.tenant_id,
        [
            Leg(paris(year, 3, 2), "+33142685300", "60"),
            Leg(paris(year, 3, 3), "+33142685300", "120"),
            Leg(paris(year, 3, 4), "+491701234567", "60"),  # no rate to Germany yet
        ],
    )
    async with sessions() as session, session.begin():
        first = await rating.rate_period(
            session, month=date(year, 3, 1), zone=PARIS, tenant_id=world.tenant_id
        )
    assert (first.rated, first.unrated) == (2, 1)
    before = await rated(sessions, ids)

    # Running it again changes nothing.
    async with sessions() as session, session.begin():
        again = await rating.rate_period(
            session, month=date(year, 3, 1), zone=PARIS, tenant_id=world.tenant_id
        )
    assert (again.rated, again.unrated) == (2, 1)
    same = await rated(sessions, ids)
    assert [(r.amount, r.rated_at) for r in same.values()] == [
        (r.amount, r.rated_at) for r in before.values()
    ]

    # The first call is invoiced; then the deck is corrected and completed.
    async with sessions() as session, session.begin():
        await session.execute(
            update(RatedCall).where(RatedCall.cdr_id == ids[0]).values(invoice_id=2**40)
        )
        await session.execute(
            update(Rate).where(Rate.deck_id == deck).values(price_per_minute=Decimal("0.06"))
        )
        session.add(
            Rate(
                deck_id=deck,
                prefix="49",
                origin_country="",
                number_type="",
                destination_country="DE",
                price_per_minute=Decimal("0.12"),
                connect_fee=Decimal("0.01"),
            )
        )
        await session.execute(
            update(RateDeck).where(RateDeck.id == deck).values(corrected_at=datetime.now(UTC))
        )
    run = await client.post(
        RUNS,
        headers=world.operator.headers,
        json={"month": f"{year}-03-01", "tenant_id": world.tenant_id},
    )
    assert run.status_code == 200, run.text
    assert (run.json()["rated"], run.json()["unrated"]) == (2, 0)
    after = await rated(sessions, ids)
    assert after[ids[0]].amount == Decimal("0.05")  # invoiced: never changes
    assert after[ids[0]].price_per_minute == Decimal("0.05")
    assert after[ids[1]].amount == Decimal("0.12")
    assert (after[ids[2]].amount, after[ids[2]].prefix, after[ids[2]].destination_country) == (
        Decimal("0.13"),
        "49",
        "DE",
    )
    listed = await client.get(
        UNRATED, headers=world.operator.headers, params={"month": f"{year}-03-01"}
    )
    assert listed.json()["items"] == []


async def test_the_scheduler_pass_rates_this_month_and_the_last(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    year = 2043
    deck = await add_deck(sessions, paris(year, 1, 1, 0), [("33", "", "", "0.06")])
    ids = await add_legs(
        sessions,
        world.tenant_id,
        [
            Leg(paris(year, 2, 27), "+33142685300", "60"),  # two months back: not this pass's
            Leg(paris(year, 3, 31, 23, 59), "+33142685300", "60"),
            Leg(paris(year, 4, 1, 0, 1), "+33142685300", "30"),
        ],
    )
    now = paris(year, 4, 5).astimezone(UTC)
    report = await rating.rate_pending(sessions, PARIS, now)
    assert report.rated >= 2
    rows = await rated(sessions, ids)
    assert set(rows) == {ids[1], ids[2]}
    assert (rows[ids[1]].period, rows[ids[2]].period) == (date(year, 3, 1), date(year, 4, 1))

    # A new leg is rated by the next pass; a correction of the deck re-rates the month.
    later = await add_legs(
        sessions, world.tenant_id, [Leg(paris(year, 4, 2), "+33142685300", "90")]
    )
    await rating.rate_pending(sessions, PARIS, now)
    assert (await rated(sessions, later))[later[0]].amount == Decimal("0.09")
    async with sessions() as session, session.begin():
        await session.execute(
            update(Rate).where(Rate.deck_id == deck).values(price_per_minute=Decimal("0.12"))
        )
        await session.execute(
            update(RateDeck).where(RateDeck.id == deck).values(corrected_at=datetime.now(UTC))
        )
    await rating.rate_pending(sessions, PARIS, now)
    rows = await rated(sessions, [*ids, *later])
    assert [rows[i].amount for i in (ids[1], ids[2], later[0])] == [
        Decimal("0.12"),
        Decimal("0.06"),
        Decimal("0.18"),
    ]


async def test_rating_in_many_chunks_stores_what_one_chunk_would(
    client: httpx.AsyncClient, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks of two legs: each chunk's insert runs while the next one is priced, stored and
    # new legs share chunks, and a rate first used in a later chunk is copied then.
    monkeypatch.setattr(rating, "CHUNK", 2)
    world = await make_world(client, sessions)
    year = 2044
    await add_deck(sessions, paris(year, 1, 1, 0), [("33", "", "", "0.05"), ("44", "", "", "0.10")])
    first = await add_legs(
        sessions,
        world.tenant_id,
        [
            Leg(paris(year, 3, 2), "+33142685300", "60"),
            Leg(paris(year, 3, 3), "+33142685300", "0.2"),
            Leg(paris(year, 3, 4), "+491701234567", "60"),  # no rate
        ],
    )
    async with sessions() as session, session.begin():
        report = await rating.rate_period(
            session, month=date(year, 3, 1), zone=PARIS, tenant_id=world.tenant_id
        )
    assert (report.rated, report.unrated) == (2, 1)
    later = await add_legs(
        sessions,
        world.tenant_id,
        [
            Leg(paris(year, 3, 5), "+442079460000", "30"),
            Leg(paris(year, 3, 6), "+33142685300", "61.5"),
            Leg(paris(year, 3, 7), "+442079460000", "120"),
            Leg(paris(year, 3, 8), "+33142685300", "1"),
        ],
    )
    async with sessions() as session, session.begin():
        report = await rating.rate_period(
            session, month=date(year, 3, 1), zone=PARIS, tenant_id=world.tenant_id
        )
    assert (report.rated, report.unrated) == (6, 1)
    rows = await rated(sessions, [*first, *later])
    assert [(rows[i].billed_seconds, rows[i].prefix, rows[i].amount) for i in [*first, *later]] == [
        (60, "33", Decimal("0.05")),
        (1, "33", Decimal("0.000833")),
        (60, None, None),
        (30, "44", Decimal("0.05")),
        (62, "33", Decimal("0.051667")),
        (120, "44", Decimal("0.20")),
        (1, "33", Decimal("0.000833")),
    ]
    assert all(row.period == date(year, 3, 1) for row in rows.values())
