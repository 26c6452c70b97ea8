"""Rate decks through the API: CSV import all or nothing, the one-month rule (the first deck
at once), corrections that only lower, and the rates a client sees.

The tests of this module run in order on one database: the first publishes the very first
deck, which later ones build on.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit.models import AuditEntry
from graam_pbx.billing.decks import COLUMNS
from graam_pbx.billing.models import Rate, RateDeck
from graam_pbx.notices.models import Notice
from graam_pbx.notices.service import one_month_after
from tests.factories import TenantWorld, fields_of, make_world

DECKS = "/api/v1/billing/rate-decks"
RATES = "/api/v1/billing/rates"
HEADER = ",".join(COLUMNS)
CSV = {"Content-Type": "text/csv"}


def csv(*lines: str) -> str:
    return "\n".join([HEADER, *lines]) + "\n"


def month_ahead() -> datetime:
    return datetime.combine(one_month_after(datetime.now(UTC).date()), time(0), UTC)


async def upload(
    client: httpx.AsyncClient,
    world: TenantWorld,
    text: str,
    *,
    name: str = "Deck",
    activates_at: datetime | None = None,
) -> httpx.Response:
    params = {"name": name}
    if activates_at is not None:
        params["activates_at"] = activates_at.isoformat()
    return await client.post(
        DECKS,
        headers={**world.operator.headers, **CSV},
        params=params,
        content=text.encode(),
    )


async def count_decks(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(RateDeck)) or 0)


FIRST_DECK = csv(
    "33,FR,,,0.020000,0",
    "336,FR,,mobile,0.100000,0",
    "337,FR,,mobile,0.100000,0",
    "44,GB,,,0.030000,0",
    "447,GB,,mobile,0.090000,0.010000",
    "447,GB,FR,mobile,0.080000,0",
    "49,DE,,,0.025000,0",
)


async def test_the_first_deck_activates_at_once_without_a_notice(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    nothing = await client.get(RATES, headers=world.agent.headers)
    assert nothing.status_code == 200, nothing.text
    assert nothing.json() == {"deck": None, "items": [], "next_cursor": None}

    before = datetime.now(UTC)
    made = await upload(client, world, FIRST_DECK, name="Launch")
    assert made.status_code == 201, made.text
    deck = made.json()
    assert deck["rates_count"] == 7
    assert deck["notice_id"] is None
    assert datetime.fromisoformat(deck["activates_at"]) >= before - timedelta(seconds=1)

    seen = await client.get(RATES, headers=world.agent.headers)
    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert body["deck"]["id"] == deck["id"]
    assert [r["prefix"] for r in body["items"]] == ["33", "336", "337", "44", "447", "447", "49"]
    uk = body["items"][5]
    assert uk == {
        "prefix": "447",
        "destination_country": "GB",
        "origin_country": "FR",
        "number_type": "mobile",
        "price_per_minute": "0.080000",
        "connect_fee": "0.000000",
        "activates_at": deck["activates_at"],
        "deck_id": deck["id"],
    }
    async with sessions() as session:
        audited = await session.scalar(
            select(AuditEntry.changes).where(
                AuditEntry.object_type == "rate_deck", AuditEntry.object_id == str(deck["id"])
            )
        )
    assert audited is not None and audited["rates"] == 7


async def test_a_client_pages_and_filters_its_rates(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    pages: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await client.get(RATES, headers=world.supervisor.headers, params=params)
        assert page.status_code == 200, page.text
        pages.extend(f"{r['prefix']}/{r['origin_country']}" for r in page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert pages == ["33/", "336/", "337/", "44/", "447/", "447/FR", "49/"]

    gb = await client.get(RATES, headers=world.agent.headers, params={"country": "GB"})
    assert {r["prefix"] for r in gb.json()["items"]} == {"44", "447"}
    mobiles = await client.get(RATES, headers=world.agent.headers, params={"prefix": "33"})
    assert [r["prefix"] for r in mobiles.json()["items"]] == ["33", "336", "337"]
    operator = await client.get(
        RATES, headers=world.operator.headers, params={"tenant_id": world.tenant_id}
    )
    assert operator.status_code == 200 and len(operator.json()["items"]) == 7
    for key, value in (("country", "XX"), ("prefix", "+33"), ("cursor", "%%"), ("deck", "last")):
        bad = await client.get(RATES, headers=world.agent.headers, params={key: value})
        assert bad.status_code == 422, (key, bad.text)
    stranger = await client.get(RATES, headers=world.agent.headers, params={"tenant_id": 2**40})
    assert stranger.status_code == 404


async def test_a_bad_line_stores_nothing_and_names_every_line(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    decks = await count_decks(sessions)
    refused = await upload(
        client,
        world,
        csv("33,FR,,,0.01,0", "33,FR,,,0.02,0", "34,ES,,fixed,0.01,0", "35,PT,,,-1,0"),
        activates_at=month_ahead(),
    )
    assert refused.status_code == 422, refused.text
    errors = refused.json()["details"]["errors"]
    assert [(e["line"], e["field"]) for e in errors] == [
        (3, "body.line.3"),
        (4, "body.line.4"),
        (5, "body.line.5"),
    ]
    assert "line 2" in errors[0]["reason"]
    assert await count_decks(sessions) == decks
    for headers, text, field in [
        ({"Content-Type": "application/json"}, '{"a": 1}', "header.content-type"),
        (CSV, "", "body.line.1"),
        (CSV, HEADER + "\n", "body"),
    ]:
        answer = await client.post(
            DECKS,
            headers={**world.operator.headers, **headers},
            params={"name": "x", "activates_at": month_ahead().isoformat()},
            content=text.encode(),
        )
        assert answer.status_code == 422, answer.text
        assert field in fields_of(answer), answer.text
    by_admin = await client.post(
        DECKS,
        headers={**world.admin.headers, **CSV},
        params={"name": "x", "activates_at": month_ahead().isoformat()},
        content=FIRST_DECK.encode(),
    )
    assert by_admin.status_code == 403
    assert await count_decks(sessions) == decks


async def test_a_new_deck_needs_a_month_and_is_announced_to_every_tenant(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    decks = await count_decks(sessions)
    for activates_at in (
        None,
        datetime.now(UTC) + timedelta(days=2),
        month_ahead() - timedelta(days=1),
    ):
        refused = await upload(client, world, FIRST_DECK, activates_at=activates_at)
        assert refused.status_code == 422, refused.text
        assert fields_of(refused) == {"query.activates_at"}
    naive = await client.post(
        DECKS,
        headers={**world.operator.headers, **CSV},
        params={"name": "x", "activates_at": "2030-01-01T00:00:00"},
        content=FIRST_DECK.encode(),
    )
    assert naive.status_code == 422
    assert await count_decks(sessions) == decks

    starts = month_ahead() + timedelta(hours=6)
    made = await upload(
        client,
        world,
        csv("33,FR,,,0.030000,0", "1,US,,,0.010000,0"),
        name="Spring",
        activates_at=starts,
    )
    assert made.status_code == 201, made.text
    deck = made.json()
    assert datetime.fromisoformat(deck["activates_at"]) == starts
    async with sessions() as session:
        notice = await session.get(Notice, deck["notice_id"])
        assert notice is not None
    assert notice.tenant_ids is None  # rates concern every tenant
    assert notice.effective_on == starts.date()
    for tenant in (world, other):
        shown = await client.get("/api/v1/notices", headers=tenant.agent.headers)
        assert deck["notice_id"] in {n["id"] for n in shown.json()["items"]}

    # The current deck still applies; the next one is shown with its date.
    current = await client.get(RATES, headers=other.agent.headers)
    assert current.json()["deck"]["name"] == "Launch"
    upcoming = await client.get(RATES, headers=other.agent.headers, params={"deck": "next"})
    assert upcoming.json()["deck"]["id"] == deck["id"]
    assert [
        (r["prefix"], r["price_per_minute"], r["activates_at"]) for r in upcoming.json()["items"]
    ] == [
        ("1", "0.010000", deck["activates_at"]),
        ("33", "0.030000", deck["activates_at"]),
    ]
    same_instant = await upload(client, world, FIRST_DECK, activates_at=starts)
    assert same_instant.status_code == 409, same_instant.text

    listed = await client.get(DECKS, headers=world.operator.headers)
    assert listed.status_code == 200
    assert deck["id"] in {d["id"] for d in listed.json()["items"]}
    assert (await client.get(DECKS, headers=world.admin.headers)).status_code == 403


async def test_tens_of_thousands_of_rates_import_whole(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    lines = [f"33{i:07d},FR,,,0.{i % 1000:06d},0" for i in range(25_000)]
    made = await upload(
        client, world, csv(*lines), name="Big", activates_at=month_ahead() + timedelta(days=3)
    )
    assert made.status_code == 201, made.text
    deck_id = made.json()["id"]
    assert made.json()["rates_count"] == 25_000
    async with sessions() as session:
        stored = await session.scalar(
            select(func.count()).select_from(Rate).where(Rate.deck_id == deck_id)
        )
        last = await session.get(Rate, (deck_id, "330024999", "", ""))
    assert stored == 25_000
    assert last is not None and str(last.price_per_minute) == "0.000999"
    page = await client.get(
        f"{DECKS}/{deck_id}/rates",
        headers=world.operator.headers,
        params={"limit": 200, "prefix": "3300249"},
    )
    assert page.status_code == 200, page.text
    assert len(page.json()["items"]) == 100
    assert page.json()["next_cursor"] is None
    refused = await client.get(f"{DECKS}/{deck_id}/rates", headers=world.admin.headers)
    assert refused.status_code == 403
    missing = await client.get(f"{DECKS}/{2**40}/rates", headers=world.operator.headers)
    assert missing.status_code == 404


async def test_a_correction_adds_and_lowers_never_raises(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    current = await client.get(RATES, headers=world.agent.headers)
    deck_id = current.json()["deck"]["id"]
    url = f"{DECKS}/{deck_id}/rates"

    raising = await client.put(
        url,
        headers={**world.operator.headers, **CSV},
        content=csv("33,FR,,,0.010000,0", "3361,FR,,mobile,0.120000,0").encode(),
    )
    assert raising.status_code == 422, raising.text
    assert [e["line"] for e in raising.json()["details"]["errors"]] == [3]
    async with sessions() as session:
        unchanged = await session.get(Rate, (deck_id, "33", "", ""))
        assert unchanged is not None
        assert str(unchanged.price_per_minute) == "0.020000"
        assert await session.get(Rate, (deck_id, "3361", "", "mobile")) is None

    done = await client.put(
        url,
        headers={**world.operator.headers, **CSV},
        content=csv(
            "33,FR,,,0.015000,0",  # lowered
            "3361,FR,,mobile,0.090000,0",  # added, below the 336 mobile rate
            "49,DE,,,0.025000,0",  # as it was
            "41,CH,,,0.300000,0",  # a new destination
        ).encode(),
    )
    assert done.status_code == 200, done.text
    result = done.json()
    assert (result["added"], result["lowered"], result["unchanged"]) == (2, 1, 1)
    assert result["deck"]["corrected_at"] is not None
    assert result["deck"]["rates_count"] == 9
    seen = await client.get(RATES, headers=world.agent.headers, params={"prefix": "3"})
    prices = {(r["prefix"], r["number_type"]): r["price_per_minute"] for r in seen.json()["items"]}
    assert prices[("33", "")] == "0.015000"
    assert prices[("3361", "mobile")] == "0.090000"
    async with sessions() as session:
        audited = await session.scalar(
            select(AuditEntry.changes).where(
                AuditEntry.object_type == "rate_deck",
                AuditEntry.action == "correct",
                AuditEntry.object_id == str(deck_id),
            )
        )
    assert audited is not None and audited["added"] == 2 and audited["lowered"] == 1

    by_admin = await client.put(
        url, headers={**world.admin.headers, **CSV}, content=csv("33,FR,,,0.01,0").encode()
    )
    assert by_admin.status_code == 403
    missing = await client.put(
        f"{DECKS}/{2**40}/rates",
        headers={**world.operator.headers, **CSV},
        content=csv("33,FR,,,0.01,0").encode(),
    )
    assert missing.status_code == 404
