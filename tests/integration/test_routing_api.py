"""Trunks, outbound routes, schedules and inbound routes through the real API and database."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.queues.models import Queue
from tests.factories import HOSTILE, NAME_ALPHABET, TenantWorld, fields_of, make_world, unique
from tests.integration.test_numbers_api import buy_number

TRUNKS = "/api/v1/trunks"
OUTBOUND = "/api/v1/outbound-routes"
SCHEDULES = "/api/v1/schedules"
INBOUND = "/api/v1/inbound-routes"


def trunk_body(**changes: Any) -> dict[str, Any]:
    return {
        "name": unique("trunk"),
        "host": "sip.carrier.example",
        "port": 5060,
        "transport": "udp",
        "country": "FR",
        "username": "acme-out",
        "password": "s3cret-Pa55",
        **changes,
    }


async def make_trunk(client: httpx.AsyncClient, world: TenantWorld, **changes: Any) -> int:
    response = await client.post(TRUNKS, headers=world.operator.headers, json=trunk_body(**changes))
    assert response.status_code == 201, response.text
    trunk_id: int = response.json()["id"]
    return trunk_id


async def make_outbound(
    client: httpx.AsyncClient, world: TenantWorld, **changes: Any
) -> dict[str, Any]:
    body = {"name": unique("out"), "allowed_countries": ["FR", "BE"], **changes}
    if "trunk_id" not in body:
        body["trunk_id"] = await make_trunk(client, world)
    if "caller_id_number_id" not in body:
        body["caller_id_number_id"] = (await buy_number(client, world))["id"]
    response = await client.post(OUTBOUND, headers=world.admin.headers, json=body)
    assert response.status_code == 201, response.text
    route: dict[str, Any] = response.json()
    return route


async def make_schedule(
    client: httpx.AsyncClient, world: TenantWorld, **changes: Any
) -> dict[str, Any]:
    body = {
        "name": unique("hours"),
        "weekly": [{"day": d, "open": "09:00", "close": "18:00"} for d in range(5)],
        **changes,
    }
    response = await client.post(SCHEDULES, headers=world.admin.headers, json=body)
    assert response.status_code == 201, response.text
    schedule: dict[str, Any] = response.json()
    return schedule


async def make_queue(sessions: async_sessionmaker[AsyncSession], tenant_id: int) -> int:
    # Queues are another domain's: made directly, only to be a destination.
    async with sessions() as session, session.begin():
        queue = Queue(tenant_id=tenant_id, name=unique("q"))
        session.add(queue)
        await session.flush()
        return queue.id


def without_secrets(body: Any) -> bool:
    text = json.dumps(body)
    return '"password"' not in text and "s3cret" not in text


# ---- trunks ---------------------------------------------------------------------------------


async def test_trunk_crud_and_write_only_password(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    created = await client.post(TRUNKS, headers=world.operator.headers, json=trunk_body())
    assert created.status_code == 201, created.text
    trunk = created.json()
    assert trunk["has_password"] is True and without_secrets(trunk)
    assert created.headers["ETag"] == f'"{trunk["id"]}.{trunk["version"]}"'
    url = f"{TRUNKS}/{trunk['id']}"
    for headers in (world.admin.headers, world.operator.headers):
        got = await client.get(url, headers=headers)
        assert got.status_code == 200 and without_secrets(got.json())
        listed = await client.get(TRUNKS, headers=headers, params={"limit": 200})
        assert listed.status_code == 200 and without_secrets(listed.json())
        assert trunk["id"] in {t["id"] for t in listed.json()["items"]}
    cleared = await client.patch(
        url,
        headers={**world.operator.headers, "If-Match": created.headers["ETag"]},
        json={"password": None, "host": "10.0.0.7", "transport": "tls", "port": 5061},
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["has_password"] is False
    assert (cleared.json()["host"], cleared.json()["transport"]) == ("10.0.0.7", "tls")
    stale = await client.patch(
        url,
        headers={**world.operator.headers, "If-Match": created.headers["ETag"]},
        json={"enabled": False},
    )
    assert stale.status_code == 412
    nulled = await client.patch(url, headers=world.operator.headers, json={"host": None})
    assert nulled.status_code == 422 and fields_of(nulled) == {"body.host"}
    twin = await client.post(
        TRUNKS, headers=world.operator.headers, json=trunk_body(name=trunk["name"])
    )
    assert twin.status_code == 409
    assert (await client.delete(url, headers=world.operator.headers)).status_code == 204
    assert (await client.get(url, headers=world.operator.headers)).status_code == 404


async def test_trunk_roles(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    trunk_id = await make_trunk(client, world)
    url = f"{TRUNKS}/{trunk_id}"
    for role in ("admin", "supervisor", "agent"):
        headers = world.actor(role).headers
        assert (await client.post(TRUNKS, headers=headers, json=trunk_body())).status_code == 403
        patched = await client.patch(url, headers=headers, json={"enabled": False})
        assert patched.status_code == 403
        assert (await client.delete(url, headers=headers)).status_code == 403
    for role in ("supervisor", "agent"):
        headers = world.actor(role).headers
        assert (await client.get(TRUNKS, headers=headers)).status_code == 403
        assert (await client.get(url, headers=headers)).status_code == 403


async def test_trunk_used_by_a_route_cannot_be_deleted(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    trunk_id = await make_trunk(client, world)
    route = await make_outbound(client, world, trunk_id=trunk_id)
    refused = await client.delete(f"{TRUNKS}/{trunk_id}", headers=world.operator.headers)
    assert refused.status_code == 409
    assert f"outbound route {route['id']}" in refused.json()["message"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"host": "a..b"}, "body.host"),
        ({"host": "-carrier.example"}, "body.host"),
        ({"host": "999.1.1.1"}, "body.host"),
        ({"host": "fe80::1%eth0"}, "body.host"),
        ({"host": "carrier.example:5060"}, "body.host"),
        ({"port": 0}, "body.port"),
        ({"port": 70000}, "body.port"),
        ({"transport": "ws"}, "body.transport"),
        ({"country": "XX"}, "body.country"),
        ({"username": "a@b"}, "body.username"),
        ({"password": "with space"}, "body.password"),
        ({"password": "x" * 129}, "body.password"),
        ({"enabled": "maybe"}, "body.enabled"),
        ({"extra": 1}, "body.extra"),
        ({"host": "[2001:db8::1]"}, "body.host"),
        ({"username": "a;b"}, "body.username"),
        ({"match": "header"}, "body.match"),
        ({"inbound_addresses": ["sip.carrier.example"]}, "body.inbound_addresses.0"),
        ({"inbound_addresses": ["0.0.0.0/0"]}, "body.inbound_addresses.0"),
        ({"inbound_addresses": ["192.0.2.1", "192.0.2.1/32"]}, "body.inbound_addresses"),
        ({"match_header": "X-Key: a b"}, "body.match_header"),
        ({"match": "ip_and_header"}, "body.match_header"),
        ({"match": "auth", "inbound_username": "+33100"}, "body.inbound_password"),
        ({"match": "auth", "inbound_password": "s3cret-in"}, "body.inbound_username"),
        ({"inbound_password": "with space"}, "body.inbound_password"),
    ],
)
async def test_trunk_validation_names_the_field(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    changes: dict[str, Any],
    field: str,
) -> None:
    world = await make_world(client, sessions)
    response = await client.post(TRUNKS, headers=world.operator.headers, json=trunk_body(**changes))
    assert response.status_code == 422, response.text
    assert fields_of(response) == {field}
    assert "with space" not in response.text  # a refused password is not echoed


# ---- outbound routes ------------------------------------------------------------------------


async def test_outbound_route_crud(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    trunk_id = await make_trunk(client, world)
    number = await buy_number(client, world)
    created = await client.post(
        OUTBOUND,
        headers=world.admin.headers,
        json={
            "name": "france",
            "trunk_id": trunk_id,
            "caller_id_number_id": number["id"],
            "allowed_countries": ["FR", "BE"],
            "priority": 5,
        },
    )
    assert created.status_code == 201, created.text
    route = created.json()
    assert route["allowed_countries"] == ["FR", "BE"] and route["priority"] == 5
    url = f"{OUTBOUND}/{route['id']}"
    got = await client.get(url, headers=world.supervisor.headers)
    assert got.status_code == 200 and got.headers["ETag"] == created.headers["ETag"]
    listed = await client.get(OUTBOUND, headers=world.supervisor.headers)
    assert [r["id"] for r in listed.json()["items"]] == [route["id"]]
    patched = await client.patch(
        url,
        headers={**world.admin.headers, "If-Match": created.headers["ETag"]},
        json={"allowed_countries": ["FR"]},
    )
    assert patched.status_code == 200 and patched.json()["allowed_countries"] == ["FR"]
    stale = await client.patch(
        url,
        headers={**world.admin.headers, "If-Match": created.headers["ETag"]},
        json={"priority": 1},
    )
    assert stale.status_code == 412
    twin = await client.post(
        OUTBOUND,
        headers=world.admin.headers,
        json={
            "name": "france",
            "trunk_id": trunk_id,
            "caller_id_number_id": number["id"],
            "allowed_countries": ["FR"],
        },
    )
    assert twin.status_code == 409
    assert (await client.delete(url, headers=world.admin.headers)).status_code == 204
    assert (await client.get(url, headers=world.admin.headers)).status_code == 404


async def test_outbound_route_refuses_foreign_numbers_and_disabled_trunks(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    trunk_id = await make_trunk(client, world)
    disabled = await make_trunk(client, world, enabled=False)
    mine = await buy_number(client, world)
    theirs = await buy_number(client, other)
    ported = await buy_number(client, world)
    await client.post(
        f"/api/v1/numbers/{ported['id']}/release",
        headers=world.admin.headers,
        json={"port_out": True},
    )
    base = {
        "name": "out",
        "trunk_id": trunk_id,
        "caller_id_number_id": mine["id"],
        "allowed_countries": ["FR"],
    }
    cases = [
        ({"trunk_id": disabled}, "body.trunk_id"),
        ({"trunk_id": 2**62}, "body.trunk_id"),
        ({"trunk_id": 2**64}, "body.trunk_id"),
        ({"caller_id_number_id": theirs["id"]}, "body.caller_id_number_id"),
        ({"caller_id_number_id": ported["id"]}, "body.caller_id_number_id"),
        ({"allowed_countries": []}, "body.allowed_countries"),
        ({"allowed_countries": ["FR", "FR"]}, "body.allowed_countries"),
        ({"allowed_countries": ["FR", "XX"]}, "body.allowed_countries.1"),
        ({"allowed_countries": ["FR"] * 251}, "body.allowed_countries"),
        ({"priority": -1}, "body.priority"),
    ]
    for changes, field in cases:
        response = await client.post(
            OUTBOUND, headers=world.admin.headers, json={**base, **changes}
        )
        assert response.status_code == 422, (changes, response.text)
        assert fields_of(response) == {field}, changes
        # Another tenant's number reads like a missing one.
        assert theirs["e164"] not in response.text
    route = await make_outbound(client, world, trunk_id=trunk_id, caller_id_number_id=mine["id"])
    patched = await client.patch(
        f"{OUTBOUND}/{route['id']}",
        headers=world.admin.headers,
        json={"caller_id_number_id": theirs["id"]},
    )
    assert patched.status_code == 422 and fields_of(patched) == {"body.caller_id_number_id"}


async def test_outbound_routes_are_tenant_scoped(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    route = await make_outbound(client, world)
    url = f"{OUTBOUND}/{route['id']}"
    for headers in (other.admin.headers, other.operator_headers):
        assert (await client.get(url, headers=headers)).status_code == 404
        patched = await client.patch(url, headers=headers, json={"priority": 9})
        assert patched.status_code == 404
        assert (await client.delete(url, headers=headers)).status_code == 404
        assert (await client.get(OUTBOUND, headers=headers)).json()["items"] == []
    assert (await client.get(url, headers=world.operator_headers)).status_code == 200


# ---- schedules ------------------------------------------------------------------------------


async def test_schedule_crud_and_default_timezone(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    schedule = await make_schedule(client, world, holidays=["2025-12-25", "2025-01-01"])
    assert schedule["timezone"] == "Europe/Paris"  # the tenant's
    assert schedule["holidays"] == ["2025-01-01", "2025-12-25"]
    assert len(schedule["weekly"]) == 5
    url = f"{SCHEDULES}/{schedule['id']}"
    got = await client.get(url, headers=world.supervisor.headers)
    assert got.status_code == 200
    etag = got.headers["ETag"]
    patched = await client.patch(
        url,
        headers={**world.admin.headers, "If-Match": etag},
        json={
            "timezone": "America/New_York",
            "weekly": [{"day": 6, "open": "00:00", "close": "24:00"}],
        },
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["timezone"] == "America/New_York"
    assert patched.json()["weekly"] == [{"day": 6, "open": "00:00", "close": "24:00"}]
    stale = await client.patch(
        url, headers={**world.admin.headers, "If-Match": etag}, json={"holidays": []}
    )
    assert stale.status_code == 412
    twin = await client.post(
        SCHEDULES, headers=world.admin.headers, json={"name": schedule["name"]}
    )
    assert twin.status_code == 409
    assert (await client.delete(url, headers=world.admin.headers)).status_code == 204
    assert (await client.get(url, headers=world.admin.headers)).status_code == 404


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {
                "weekly": [
                    {"day": 0, "open": "09:00", "close": "12:00"},
                    {"day": 1, "open": "09:00", "close": "12:00"},
                    {"day": 0, "open": "11:00", "close": "14:00"},
                ]
            },
            "body.weekly.2",
        ),
        ({"weekly": [{"day": 0, "open": "12:00", "close": "09:00"}]}, "body.weekly.0"),
        ({"weekly": [{"day": 0, "open": "09:00", "close": "09:00"}]}, "body.weekly.0"),
        ({"weekly": [{"day": 7, "open": "09:00", "close": "10:00"}]}, "body.weekly.0.day"),
        ({"weekly": [{"day": 0, "open": "9:00", "close": "10:00"}]}, "body.weekly.0.open"),
        ({"weekly": [{"day": 0, "open": "24:00", "close": "24:00"}]}, "body.weekly.0.open"),
        ({"weekly": [{"day": 0, "open": "09:00", "close": "24:01"}]}, "body.weekly.0.close"),
        ({"holidays": ["2025-12-25", "2025-12-25"]}, "body.holidays"),
        ({"holidays": ["2025-02-30"]}, "body.holidays.0"),
        ({"timezone": "Mars/Olympus"}, "body.timezone"),
        ({"name": "Office Hours"}, "body.name"),
    ],
)
async def test_schedule_validation_names_the_field(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    changes: dict[str, Any],
    field: str,
) -> None:
    world = await make_world(client, sessions)
    response = await client.post(
        SCHEDULES, headers=world.admin.headers, json={"name": unique("s"), **changes}
    )
    assert response.status_code == 422, response.text
    assert fields_of(response) == {field}


async def test_schedules_are_tenant_scoped(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    schedule = await make_schedule(client, world)
    url = f"{SCHEDULES}/{schedule['id']}"
    assert (await client.get(url, headers=other.admin.headers)).status_code == 404
    assert (await client.patch(url, headers=other.admin.headers, json={})).status_code == 404
    assert (await client.delete(url, headers=other.admin.headers)).status_code == 404
    assert (await client.get(SCHEDULES, headers=other.admin.headers)).json()["items"] == []
    listed = await client.get(SCHEDULES, headers=world.operator_headers)
    assert [s["id"] for s in listed.json()["items"]] == [schedule["id"]]


# ---- inbound routes -------------------------------------------------------------------------


async def test_inbound_route_crud_with_schedule_and_destinations(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    number = await buy_number(client, world)
    schedule = await make_schedule(client, world)
    queue_id = await make_queue(sessions, world.tenant_id)
    created = await client.post(
        INBOUND,
        headers=world.admin.headers,
        json={
            "number_id": number["id"],
            "schedule_id": schedule["id"],
            "open_destination": {"type": "queue", "id": queue_id},
            "closed_destination": {"type": "hangup"},
        },
    )
    assert created.status_code == 201, created.text
    route = created.json()
    assert route["open_destination"] == {"type": "queue", "id": queue_id}
    assert route["closed_destination"] == {"type": "hangup", "id": None}
    url = f"{INBOUND}/{route['id']}"
    got = await client.get(url, headers=world.supervisor.headers)
    assert got.status_code == 200 and got.json() == route
    in_use = await client.delete(f"{SCHEDULES}/{schedule['id']}", headers=world.admin.headers)
    assert in_use.status_code == 409
    assert f"inbound route {route['id']}" in in_use.json()["message"]
    # Dropping the schedule drops the closed destination with it.
    half = await client.patch(url, headers=world.admin.headers, json={"schedule_id": None})
    assert half.status_code == 422 and fields_of(half) == {"body.closed_destination"}
    patched = await client.patch(
        url,
        headers={**world.admin.headers, "If-Match": created.headers["ETag"]},
        json={"schedule_id": None, "closed_destination": None},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["schedule_id"] is None
    assert patched.json()["closed_destination"] is None
    assert patched.json()["open_destination"] == {"type": "queue", "id": queue_id}
    stale = await client.patch(
        url,
        headers={**world.admin.headers, "If-Match": created.headers["ETag"]},
        json={"open_destination": {"type": "hangup"}},
    )
    assert stale.status_code == 412
    assert (await client.delete(url, headers=world.admin.headers)).status_code == 204
    assert (await client.get(url, headers=world.admin.headers)).status_code == 404
    gone = await client.delete(f"{SCHEDULES}/{schedule['id']}", headers=world.admin.headers)
    assert gone.status_code == 204


async def test_inbound_route_refusals(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    mine = await buy_number(client, world)
    theirs = await buy_number(client, other)
    their_schedule = await make_schedule(client, other)
    their_queue = await make_queue(sessions, other.tenant_id)
    my_schedule = await make_schedule(client, world)
    hangup = {"type": "hangup"}
    cases = [
        ({"number_id": theirs["id"], "open_destination": hangup}, "body.number_id"),
        ({"number_id": 2**62, "open_destination": hangup}, "body.number_id"),
        (
            {
                "number_id": mine["id"],
                "schedule_id": their_schedule["id"],
                "open_destination": hangup,
                "closed_destination": hangup,
            },
            "body.schedule_id",
        ),
        (
            {"number_id": mine["id"], "open_destination": {"type": "queue", "id": their_queue}},
            "body.open_destination",
        ),
        (
            {
                "number_id": mine["id"],
                "schedule_id": my_schedule["id"],
                "open_destination": hangup,
                "closed_destination": {"type": "queue", "id": their_queue},
            },
            "body.closed_destination",
        ),
        (
            {"number_id": mine["id"], "schedule_id": my_schedule["id"], "open_destination": hangup},
            "body.closed_destination",
        ),
        (
            {"number_id": mine["id"], "open_destination": hangup, "closed_destination": hangup},
            "body.closed_destination",
        ),
        ({"number_id": mine["id"]}, "body.open_destination"),
        (
            {"number_id": mine["id"], "open_destination": {"type": "queue"}},
            "body.open_destination",
        ),
        (
            {"number_id": mine["id"], "open_destination": {"type": "hangup", "id": 3}},
            "body.open_destination",
        ),
        (
            {"number_id": mine["id"], "open_destination": {"type": "queue", "id": 2**64}},
            "body.open_destination",
        ),
        (
            {"number_id": mine["id"], "open_destination": {"type": "dial", "id": 1}},
            "body.open_destination.type",
        ),
    ]
    for body, field in cases:
        response = await client.post(INBOUND, headers=world.admin.headers, json=body)
        assert response.status_code == 422, (body, response.text)
        assert fields_of(response) == {field}, (body, response.text)
    first = await client.post(
        INBOUND,
        headers=world.admin.headers,
        json={"number_id": mine["id"], "open_destination": hangup},
    )
    assert first.status_code == 201
    second = await client.post(
        INBOUND,
        headers=world.admin.headers,
        json={"number_id": mine["id"], "open_destination": hangup},
    )
    assert second.status_code == 409
    assert f"inbound route {first.json()['id']}" in second.json()["message"]


async def test_one_route_per_number_under_concurrency(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    number = await buy_number(client, world)
    body = {"number_id": number["id"], "open_destination": {"type": "hangup"}}
    responses = await asyncio.gather(
        *(client.post(INBOUND, headers=world.admin.headers, json=body) for _ in range(3))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409]


async def test_inbound_routes_are_tenant_scoped(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    number = await buy_number(client, world)
    created = await client.post(
        INBOUND,
        headers=world.operator_headers,
        json={"number_id": number["id"], "open_destination": {"type": "hangup"}},
    )
    assert created.status_code == 201
    url = f"{INBOUND}/{created.json()['id']}"
    for headers in (other.admin.headers, other.operator_headers):
        assert (await client.get(url, headers=headers)).status_code == 404
        assert (await client.patch(url, headers=headers, json={})).status_code == 404
        assert (await client.delete(url, headers=headers)).status_code == 404
        assert (await client.get(INBOUND, headers=headers)).json()["items"] == []
    listed = await client.get(INBOUND, headers=world.supervisor.headers)
    assert [r["id"] for r in listed.json()["items"]] == [created.json()["id"]]


# ---- roles ----------------------------------------------------------------------------------

TENANT_COLLECTIONS = [OUTBOUND, SCHEDULES, INBOUND, "/api/v1/numbers"]


async def test_agents_are_refused_everywhere_and_supervisors_only_read(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    number = await buy_number(client, world)
    route = await make_outbound(client, world)
    schedule = await make_schedule(client, world)
    inbound = await client.post(
        INBOUND,
        headers=world.admin.headers,
        json={"number_id": number["id"], "open_destination": {"type": "hangup"}},
    )
    objects = [
        f"{OUTBOUND}/{route['id']}",
        f"{SCHEDULES}/{schedule['id']}",
        f"{INBOUND}/{inbound.json()['id']}",
        f"/api/v1/numbers/{number['id']}",
    ]
    agent, supervisor = world.agent.headers, world.supervisor.headers
    for url in [*TENANT_COLLECTIONS, *objects, "/api/v1/numbers/available", TRUNKS]:
        assert (await client.get(url, headers=agent)).status_code == 403, url
    for url in TENANT_COLLECTIONS:
        assert (await client.get(url, headers=supervisor)).status_code == 200, url
        for headers in (agent, supervisor):
            assert (await client.post(url, headers=headers, json={})).status_code == 403, url
    for url in objects[:3]:
        assert (await client.get(url, headers=supervisor)).status_code == 200, url
        for headers in (agent, supervisor):
            assert (await client.patch(url, headers=headers, json={})).status_code == 403, url
            assert (await client.delete(url, headers=headers)).status_code == 403, url
    for headers in (agent, supervisor):
        released = await client.post(f"{objects[3]}/release", headers=headers, json={})
        assert released.status_code == 403


async def test_unknown_ids_are_404_and_huge_ones_422(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    for collection in [OUTBOUND, SCHEDULES, INBOUND, "/api/v1/numbers"]:
        missing = await client.get(f"{collection}/{2**62}", headers=world.admin.headers)
        assert missing.status_code == 404, collection
        huge = await client.get(f"{collection}/{2**64}", headers=world.admin.headers)
        assert huge.status_code == 422, collection
    assert (await client.get(f"{TRUNKS}/{2**64}", headers=world.admin.headers)).status_code == 422


# ---- hostile input --------------------------------------------------------------------------

# Fields whose documented alphabet is wide enough for some of the hostile strings (a SIP
# username may well be "+0"; "00331" is a fine object name; host names are read in any case):
# those values must be taken, every other one refused. Values are what each field's
# description promises.
LEGITIMATE = {
    "name": NAME_ALPHABET,
    "host": re.compile(
        r"(?i)(?=.{1,253}\Z)"  # a host name: at most 253 characters, labels of 63
        r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z]([a-z0-9-]{0,61}[a-z0-9])?"
    ),
    "username": re.compile(r"[A-Za-z0-9._+-]{1,80}"),
    "password": re.compile(r"[!#-&(-:<-\[\]-~]{1,128}"),
}


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
async def test_hostile_strings_are_refused_by_field(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], value: str
) -> None:
    world = await make_world(client, sessions)
    trunk_id = await make_trunk(client, world)
    number = await buy_number(client, world)
    outbound = {
        "name": unique("o"),
        "trunk_id": trunk_id,
        "caller_id_number_id": number["id"],
        "allowed_countries": ["FR"],
    }
    opening = {"day": 0, "open": "09:00", "close": "17:00"}
    schedule = {"name": unique("s"), "timezone": "Europe/Paris", "weekly": [opening]}
    inbound = {"number_id": number["id"], "open_destination": {"type": "hangup"}}
    admin, operator = world.admin.headers, world.operator.headers
    cases = [
        (TRUNKS, operator, trunk_body(name=value), "body.name"),
        (TRUNKS, operator, trunk_body(host=value), "body.host"),
        (TRUNKS, operator, trunk_body(country=value), "body.country"),
        (TRUNKS, operator, trunk_body(username=value), "body.username"),
        (TRUNKS, operator, trunk_body(password=value), "body.password"),
        (TRUNKS, operator, trunk_body(transport=value), "body.transport"),
        (OUTBOUND, admin, {**outbound, "name": value}, "body.name"),
        (OUTBOUND, admin, {**outbound, "allowed_countries": [value]}, "body.allowed_countries.0"),
        (SCHEDULES, admin, {**schedule, "name": value}, "body.name"),
        (SCHEDULES, admin, {**schedule, "timezone": value}, "body.timezone"),
        (
            SCHEDULES,
            admin,
            {**schedule, "weekly": [{**opening, "open": value}]},
            "body.weekly.0.open",
        ),
        (
            SCHEDULES,
            admin,
            {**schedule, "weekly": [{**opening, "close": value}]},
            "body.weekly.0.close",
        ),
        (SCHEDULES, admin, {**schedule, "holidays": [value]}, "body.holidays.0"),
        (
            INBOUND,
            admin,
            {**inbound, "open_destination": {"type": value}},
            "body.open_destination.type",
        ),
    ]
    for url, headers, body, field in cases:
        response = await client.post(url, headers=headers, json=body)
        legitimate = LEGITIMATE.get(field.removeprefix("body."))
        if legitimate is not None and legitimate.fullmatch(value):
            assert response.status_code == 201, (field, value, response.text)
            assert without_secrets(response.json())
            continue
        assert response.status_code == 422, (field, value, response.text)
        assert field in fields_of(response), (field, value, response.text)


# ---- what the API accepts renders (graam_pbx.sip_values) ----------------------------


async def test_trunks_take_ipv6_hosts_any_sip_username_and_each_match_mode(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    headers = world.operator.headers
    v6 = await client.post(
        TRUNKS,
        headers=headers,
        json=trunk_body(
            host="2001:DB8::10",
            username="+33100",
            match="ip_and_header",
            inbound_addresses=["2001:db8:1::1/48"],
            match_header="X-Carrier-Key:9f2c",
        ),
    )
    assert v6.status_code == 201, v6.text
    body = v6.json()
    assert (body["host"], body["username"], body["match"]) == (
        "2001:db8::10",
        "+33100",
        "ip_and_header",
    )
    assert body["inbound_addresses"] == ["2001:db8:1::/48"]
    assert body["match_header"] == "X-Carrier-Key: 9f2c"
    inbound_user = unique("+331")
    authenticated = await client.post(
        TRUNKS,
        headers=headers,
        json=trunk_body(
            username=".user",
            match="auth",
            inbound_username=inbound_user,
            inbound_password="s3cret-in",
        ),
    )
    assert authenticated.status_code == 201, authenticated.text
    assert authenticated.json()["has_inbound_password"] is True
    assert "s3cret-in" not in authenticated.text
    twin = await client.post(
        TRUNKS,
        headers=headers,
        json=trunk_body(match="auth", inbound_username=inbound_user, inbound_password="x-1"),
    )
    assert twin.status_code == 409 and "inbound_username" in twin.text
    url = f"{TRUNKS}/{authenticated.json()['id']}"
    incomplete = await client.patch(url, headers=headers, json={"inbound_password": None})
    assert incomplete.status_code == 422 and fields_of(incomplete) == {"body.inbound_password"}
    back = await client.patch(url, headers=headers, json={"match": "ip"})
    assert back.status_code == 200 and back.json()["match"] == "ip"
    audit = await client.get("/api/v1/audit", headers=headers, params={"limit": 200})
    assert "s3cret-in" not in audit.text


async def test_outbound_route_caller_name(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    route = await make_outbound(client, world, caller_id_name="Acme Société")
    assert route["caller_id_name"] == "Acme Société"
    url = f"{OUTBOUND}/{route['id']}"
    for hostile in ["a$b", "${CALLERID(num)}", "a,b", "x;y", '"q"', "", " a", "x" * 41]:
        refused = await client.patch(
            url, headers=world.admin.headers, json={"caller_id_name": hostile}
        )
        assert refused.status_code == 422, hostile
        assert fields_of(refused) == {"body.caller_id_name"}, hostile
    cleared = await client.patch(url, headers=world.admin.headers, json={"caller_id_name": None})
    assert cleared.status_code == 200 and cleared.json()["caller_id_name"] is None
