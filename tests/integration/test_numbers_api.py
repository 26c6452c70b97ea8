"""The number catalogue, buying and releasing DIDs, through the real API and database."""

from __future__ import annotations

import asyncio
import itertools
import secrets
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit.models import AuditEntry
from tests.factories import HOSTILE, TenantWorld, fields_of, make_world

CATALOGUE = "/api/v1/catalogue/numbers"

# French numbers of each kind, by their national prefix; the suffix counts up.
_PREFIXES = {
    "geographic": ("+3314", 7),
    "mobile": ("+336", 8),
    "toll_free": ("+33800", 6),
    "national": ("+339", 8),  # VoIP numbers: sold as national
    "premium": ("+33899", 6),
}
_suffix = itertools.count(secrets.randbelow(10_000) * 100)


def new_number(kind: str = "geographic") -> str:
    """A valid French number of that kind that no other test uses."""
    prefix, digits = _PREFIXES[kind]
    return f"{prefix}{next(_suffix):0{digits}d}"


def entry(e164: str, price: str = "1.50", currency: str = "EUR") -> dict[str, Any]:
    return {"e164": e164, "monthly_price": price, "currency": currency}


async def load_numbers(
    client: httpx.AsyncClient, world: TenantWorld, count: int = 1, kind: str = "geographic"
) -> list[str]:
    """Numbers the world's operator puts in the catalogue."""
    numbers = [new_number(kind) for _ in range(count)]
    response = await client.post(
        CATALOGUE, headers=world.operator.headers, json=[entry(n) for n in numbers]
    )
    assert response.status_code == 201, response.text
    return numbers


async def buy_number(client: httpx.AsyncClient, world: TenantWorld) -> dict[str, Any]:
    """A new catalogue number bought by the world's admin."""
    (e164,) = await load_numbers(client, world)
    response = await client.post(
        "/api/v1/numbers", headers=world.admin.headers, json={"e164": e164}
    )
    assert response.status_code == 201, response.text
    bought: dict[str, Any] = response.json()
    return bought


async def catalogue_entries(
    client: httpx.AsyncClient, world: TenantWorld, **params: Any
) -> list[dict[str, Any]]:
    """Every catalogue entry matching the filters, following the pages."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = await client.get(CATALOGUE, headers=world.operator.headers, params=query)
        assert page.status_code == 200, page.text
        found.extend(page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return found


# ---- the catalogue --------------------------------------------------------------------------


async def test_catalogue_load_derives_country_and_type(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    batch = {
        new_number("geographic"): "geographic",
        new_number("mobile"): "mobile",
        new_number("toll_free"): "toll_free",
        new_number("national"): "national",
        "+14155550100": "geographic",  # NANP: fixed line or mobile, sold as geographic
    }
    response = await client.post(
        CATALOGUE,
        headers=world.operator.headers,
        json=[entry(e164, price="2.5", currency="EUR") for e164 in batch],
    )
    assert response.status_code == 201, response.text
    loaded = {item["e164"]: item for item in response.json()}
    assert {e164: item["number_type"] for e164, item in loaded.items()} == batch
    assert loaded["+14155550100"]["country"] == "US"
    assert {item["country"] for e164, item in loaded.items() if e164.startswith("+33")} == {"FR"}
    # Money is a decimal string at the column's scale, never a float.
    assert {item["monthly_price"] for item in loaded.values()} == {"2.5000"}
    assert {item["status"] for item in loaded.values()} == {"available"}
    async with sessions() as session:
        entries = (
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == "load", AuditEntry.object_type == "phone_number"
                )
            )
        ).all()
    assert any(set(batch) == set(e.changes["e164"]) and e.tenant_id is None for e in entries)


@pytest.mark.parametrize(
    ("bad", "reason_part"),
    [
        (new_number("premium"), "premium-rate"),
        ("+80012345678", "one country"),  # international freephone: no country
        ("+3314123456", "valid"),
        ("0142685300", "E.164"),
        ("+33 142685300", "E.164"),
    ],
)
async def test_catalogue_refuses_unsold_numbers_by_index_and_stores_nothing(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    bad: str,
    reason_part: str,
) -> None:
    world = await make_world(client, sessions)
    good = new_number()
    response = await client.post(
        CATALOGUE, headers=world.operator.headers, json=[entry(good), entry(bad)]
    )
    assert response.status_code == 422, response.text
    errors = response.json()["details"]["errors"]
    assert [e["field"] for e in errors] == ["body.1.e164"]
    assert reason_part in errors[0]["reason"]
    assert good not in {e["e164"] for e in await catalogue_entries(client, world)}


async def test_catalogue_duplicate_is_a_conflict_and_the_batch_is_atomic(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    (existing,) = await load_numbers(client, world)
    fresh = new_number()
    response = await client.post(
        CATALOGUE, headers=world.operator.headers, json=[entry(fresh), entry(existing)]
    )
    assert response.status_code == 409, response.text
    assert existing in response.json()["message"]
    assert response.json()["details"]["e164"] == [existing]
    stored = {e["e164"] for e in await catalogue_entries(client, world, country="FR")}
    assert existing in stored and fresh not in stored
    twice = await client.post(
        CATALOGUE, headers=world.operator.headers, json=[entry(fresh), entry(fresh)]
    )
    assert twice.status_code == 422
    assert fields_of(twice) == {"body.1.e164"}


async def test_concurrent_overlapping_loads_conflict_on_the_shared_number(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    a, shared, c = new_number(), new_number(), new_number()
    responses = await asyncio.gather(
        client.post(CATALOGUE, headers=world.operator.headers, json=[entry(a), entry(shared)]),
        client.post(CATALOGUE, headers=world.operator.headers, json=[entry(shared), entry(c)]),
    )
    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    (conflict,) = [r for r in responses if r.status_code == 409]
    assert conflict.json()["details"]["e164"] == [shared]
    stored = {e["e164"] for e in await catalogue_entries(client, world)}
    assert len({a, c} & stored) == 1 and shared in stored


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"monthly_price": "-0.01"}, "body.0.monthly_price"),
        ({"monthly_price": "0.00001"}, "body.0.monthly_price"),
        ({"monthly_price": "NaN"}, "body.0.monthly_price"),
        ({"monthly_price": "1e20"}, "body.0.monthly_price"),
        ({"monthly_price": True}, "body.0.monthly_price"),
        ({"currency": "eur"}, "body.0.currency"),
        ({"currency": "EURO"}, "body.0.currency"),
        ({"country": "FR"}, "body.0.country"),  # derived, never given
    ],
)
async def test_catalogue_entry_validation_names_the_field(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    changes: dict[str, Any],
    field: str,
) -> None:
    world = await make_world(client, sessions)
    response = await client.post(
        CATALOGUE, headers=world.operator.headers, json=[{**entry(new_number()), **changes}]
    )
    assert response.status_code == 422, response.text
    assert field in fields_of(response)


async def test_catalogue_prices_are_exact_decimals(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    numbers = [new_number(), new_number(), new_number()]
    response = await client.post(
        CATALOGUE,
        headers=world.operator.headers,
        json=[
            entry(numbers[0], price="0"),
            {**entry(numbers[1]), "monthly_price": 0.1},  # a JSON number is read as decimal
            entry(numbers[2], price="99999999.9999"),
        ],
    )
    assert response.status_code == 201, response.text
    assert [n["monthly_price"] for n in response.json()] == ["0.0000", "0.1000", "99999999.9999"]


async def test_catalogue_batch_size_is_bounded(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    empty = await client.post(CATALOGUE, headers=world.operator.headers, json=[])
    assert empty.status_code == 422
    assert "body" in fields_of(empty)
    too_many = await client.post(
        CATALOGUE,
        headers=world.operator.headers,
        json=[entry(f"+3314{i:07d}") for i in range(1001)],
    )
    assert too_many.status_code == 422
    assert "body" in fields_of(too_many)


async def test_catalogue_is_for_operators_only(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    for role in ("admin", "supervisor", "agent"):
        headers = world.actor(role).headers
        assert (await client.get(CATALOGUE, headers=headers)).status_code == 403
        posted = await client.post(CATALOGUE, headers=headers, json=[entry(new_number())])
        assert posted.status_code == 403
    assert (await client.get(CATALOGUE)).status_code == 401


async def test_catalogue_filters_and_pages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    mobiles = await load_numbers(client, world, 3, kind="mobile")
    bought = await client.post(
        "/api/v1/numbers", headers=world.admin.headers, json={"e164": mobiles[0]}
    )
    assert bought.status_code == 201
    held = await catalogue_entries(client, world, tenant_id=world.tenant_id)
    assert [(n["e164"], n["status"], n["tenant_id"]) for n in held] == [
        (mobiles[0], "assigned", world.tenant_id)
    ]
    free_mobiles = {
        n["e164"]
        for n in await catalogue_entries(
            client, world, country="FR", number_type="mobile", status="available"
        )
    }
    assert set(mobiles[1:]) <= free_mobiles and mobiles[0] not in free_mobiles
    first = await client.get(
        CATALOGUE,
        headers=world.operator.headers,
        params={"number_type": "mobile", "limit": 1},
    )
    second = await client.get(
        CATALOGUE,
        headers=world.operator.headers,
        params={"number_type": "mobile", "limit": 1, "cursor": first.json()["next_cursor"]},
    )
    assert first.json()["items"][0]["id"] < second.json()["items"][0]["id"]
    bad = await client.get(CATALOGUE, headers=world.operator.headers, params={"country": "fr"})
    assert bad.status_code == 422
    assert fields_of(bad) == {"query.country"}


# ---- buying ---------------------------------------------------------------------------------


async def test_available_numbers_are_listed_and_filtered(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    tolls = await load_numbers(client, world, 2, kind="toll_free")
    for role in ("admin", "supervisor", "operator"):
        listed = await client.get(
            "/api/v1/numbers/available",
            headers=world.headers(role),
            params={"country": "FR", "number_type": "toll_free", "limit": 200},
        )
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        assert {n["number_type"] for n in items} == {"toll_free"}
        assert "tenant_id" not in items[0] and "status" not in items[0]
    agent = await client.get("/api/v1/numbers/available", headers=world.agent.headers)
    assert agent.status_code == 403
    await client.post("/api/v1/numbers", headers=world.admin.headers, json={"e164": tolls[0]})
    after = await client.get(
        "/api/v1/numbers/available",
        headers=world.admin.headers,
        params={"number_type": "toll_free", "limit": 200},
    )
    still = {n["e164"] for n in after.json()["items"]}
    assert tolls[0] not in still


async def test_buy_get_and_list_isolation(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    (e164,) = await load_numbers(client, world)
    bought = await client.post("/api/v1/numbers", headers=world.admin.headers, json={"e164": e164})
    assert bought.status_code == 201, bought.text
    number = bought.json()
    assert number["status"] == "assigned" and number["assigned_at"]
    assert bought.headers["ETag"] == f'"{number["id"]}.{number["version"]}"'
    url = f"/api/v1/numbers/{number['id']}"
    got = await client.get(url, headers=world.supervisor.headers)
    assert got.status_code == 200 and got.headers["ETag"] == bought.headers["ETag"]
    listed = await client.get("/api/v1/numbers", headers=world.admin.headers)
    assert [n["e164"] for n in listed.json()["items"]] == [e164]
    # Another tenant sees nothing of it, and cannot buy or release it.
    assert (await client.get(url, headers=other.admin.headers)).status_code == 404
    assert (await client.get("/api/v1/numbers", headers=other.admin.headers)).json()["items"] == []
    taken = await client.post("/api/v1/numbers", headers=other.admin.headers, json={"e164": e164})
    assert taken.status_code == 409
    release = await client.post(f"{url}/release", headers=other.admin.headers, json={})
    assert release.status_code == 404
    assert (await client.get(url, headers=other.operator_headers)).status_code == 404


async def test_buy_refusals(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    (e164,) = await load_numbers(client, world)
    for role in ("supervisor", "agent"):
        denied = await client.post(
            "/api/v1/numbers", headers=world.actor(role).headers, json={"e164": e164}
        )
        assert denied.status_code == 403
    unknown = await client.post(
        "/api/v1/numbers", headers=world.admin.headers, json={"e164": new_number()}
    )
    assert unknown.status_code == 422
    assert fields_of(unknown) == {"body.e164"}
    by_operator = await client.post(
        "/api/v1/numbers", headers=world.operator_headers, json={"e164": e164}
    )
    assert by_operator.status_code == 201
    again = await client.post("/api/v1/numbers", headers=world.admin.headers, json={"e164": e164})
    assert again.status_code == 409
    no_tenant = await client.post(
        "/api/v1/numbers", headers=world.operator.headers, json={"e164": e164}
    )
    assert no_tenant.status_code == 422
    assert fields_of(no_tenant) == {"header.x-graam-tenant"}


async def test_concurrent_purchase_has_exactly_one_winner(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await make_world(client, sessions)
    second = await make_world(client, sessions)
    for _ in range(3):
        (e164,) = await load_numbers(client, first)
        responses = await asyncio.gather(
            client.post("/api/v1/numbers", headers=first.admin.headers, json={"e164": e164}),
            client.post("/api/v1/numbers", headers=second.admin.headers, json={"e164": e164}),
        )
        assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
        winner = first if responses[0].status_code == 201 else second
        (stored,) = [e for e in await catalogue_entries(client, first) if e["e164"] == e164]
        assert stored["status"] == "assigned"
        assert stored["tenant_id"] == winner.tenant_id


# ---- releasing ------------------------------------------------------------------------------


async def test_plain_release_returns_the_number_to_the_catalogue(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    number = await buy_number(client, world)
    url = f"/api/v1/numbers/{number['id']}"
    for role in ("supervisor", "agent"):
        denied = await client.post(f"{url}/release", headers=world.actor(role).headers, json={})
        assert denied.status_code == 403
    released = await client.post(f"{url}/release", headers=world.admin.headers, json={})
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "available"
    assert released.json()["released_at"]
    assert (await client.get(url, headers=world.admin.headers)).status_code == 404
    (entry_,) = [e for e in await catalogue_entries(client, world) if e["id"] == number["id"]]
    assert entry_["status"] == "available" and entry_["tenant_id"] is None
    # Sold again, to anyone.
    other = await make_world(client, sessions)
    again = await client.post(
        "/api/v1/numbers", headers=other.admin.headers, json={"e164": number["e164"]}
    )
    assert again.status_code == 201
    async with sessions() as session:
        actions = (
            await session.scalars(
                select(AuditEntry.action).where(
                    AuditEntry.object_type == "phone_number",
                    AuditEntry.object_id == str(number["id"]),
                    AuditEntry.tenant_id == world.tenant_id,
                )
            )
        ).all()
    assert list(actions) == ["buy", "release"]


async def test_port_out_release_keeps_the_number_and_never_sells_it(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    number = await buy_number(client, world)
    url = f"/api/v1/numbers/{number['id']}"
    released = await client.post(
        f"{url}/release", headers=world.admin.headers, json={"port_out": True}
    )
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "port_out"
    kept = await client.get(url, headers=world.admin.headers)
    assert kept.status_code == 200 and kept.json()["status"] == "port_out"
    listed = await client.get(
        "/api/v1/numbers", headers=world.admin.headers, params={"status": "port_out"}
    )
    assert [n["id"] for n in listed.json()["items"]] == [number["id"]]
    available = await client.get(
        "/api/v1/numbers/available", headers=world.admin.headers, params={"limit": 200}
    )
    assert number["e164"] not in {n["e164"] for n in available.json()["items"]}
    other = await make_world(client, sessions)
    resold = await client.post(
        "/api/v1/numbers", headers=other.admin.headers, json={"e164": number["e164"]}
    )
    assert resold.status_code == 409
    again = await client.post(f"{url}/release", headers=world.admin.headers, json={})
    assert again.status_code == 409


async def test_release_with_stale_etag_is_refused(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    number = await buy_number(client, world)
    url = f"/api/v1/numbers/{number['id']}"
    stale = f'"{number["id"]}.{number["version"] + 5}"'
    refused = await client.post(
        f"{url}/release", headers={**world.admin.headers, "If-Match": stale}, json={}
    )
    assert refused.status_code == 412
    current = (await client.get(url, headers=world.admin.headers)).headers["ETag"]
    ok = await client.post(
        f"{url}/release", headers={**world.admin.headers, "If-Match": current}, json={}
    )
    assert ok.status_code == 200


async def test_a_routed_number_cannot_be_released(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    number = await buy_number(client, world)
    route = await client.post(
        "/api/v1/inbound-routes",
        headers=world.admin.headers,
        json={"number_id": number["id"], "open_destination": {"type": "hangup"}},
    )
    assert route.status_code == 201, route.text
    url = f"/api/v1/numbers/{number['id']}/release"
    refused = await client.post(url, headers=world.admin.headers, json={"port_out": True})
    assert refused.status_code == 409
    assert f"inbound route {route.json()['id']}" in refused.json()["message"]
    trunk = await client.post(
        "/api/v1/trunks",
        headers=world.operator.headers,
        json={"name": f"t{number['id']}", "host": "sip.carrier.example", "country": "FR"},
    )
    assert trunk.status_code == 201, trunk.text
    outbound = await client.post(
        "/api/v1/outbound-routes",
        headers=world.admin.headers,
        json={
            "name": "france",
            "trunk_id": trunk.json()["id"],
            "caller_id_number_id": number["id"],
            "allowed_countries": ["FR"],
        },
    )
    assert outbound.status_code == 201, outbound.text
    deleted = await client.delete(
        f"/api/v1/inbound-routes/{route.json()['id']}", headers=world.admin.headers
    )
    assert deleted.status_code == 204
    refused = await client.post(url, headers=world.admin.headers, json={})
    assert refused.status_code == 409
    assert "outbound route 'france'" in refused.json()["message"]
    await client.delete(
        f"/api/v1/outbound-routes/{outbound.json()['id']}", headers=world.admin.headers
    )
    assert (await client.post(url, headers=world.admin.headers, json={})).status_code == 200


# ---- hostile input --------------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
async def test_hostile_strings_are_refused_by_field(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], value: str
) -> None:
    world = await make_world(client, sessions)
    cases = [
        (
            CATALOGUE,
            world.operator.headers,
            [{**entry(new_number()), "e164": value}],
            "body.0.e164",
        ),
        (
            CATALOGUE,
            world.operator.headers,
            [{**entry(new_number()), "currency": value}],
            "body.0.currency",
        ),
        ("/api/v1/numbers", world.admin.headers, {"e164": value}, "body.e164"),
        (
            f"/api/v1/numbers/{2**62}/release",
            world.admin.headers,
            {"port_out": value},
            "body.port_out",
        ),
    ]
    for url, headers, body, field in cases:
        response = await client.post(url, headers=headers, json=body)
        assert response.status_code == 422, (field, value, response.text)
        assert field in fields_of(response), (field, value, response.text)
