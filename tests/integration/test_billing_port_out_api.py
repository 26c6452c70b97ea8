"""Port-out requests through the API against the real Postgres: the client asks, the operator
accepts and completes (the number leaves, ``ported_out``, never sold again), a routed number
cannot leave, the client cancels while requested, and each tenant sees its own requests."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit.models import AuditEntry
from graam_pbx.billing.models import Holding
from graam_pbx.numbers.models import PhoneNumber
from tests.factories import TenantWorld, fields_of, make_world

Sessions = async_sessionmaker[AsyncSession]
URL = "/api/v1/billing/port-outs"
_suffix = itertools.count(secrets.randbelow(10_000) * 100)


async def buy_number(client: httpx.AsyncClient, world: TenantWorld) -> dict[str, Any]:
    """A new French geographic number, loaded by the operator and bought by the admin."""
    e164 = f"+3316{next(_suffix):07d}"
    loaded = await client.post(
        "/api/v1/catalogue/numbers",
        headers=world.operator.headers,
        json=[{"e164": e164, "monthly_price": "1.50", "currency": "EUR"}],
    )
    assert loaded.status_code == 201, loaded.text
    bought = await client.post("/api/v1/numbers", headers=world.admin.headers, json={"e164": e164})
    assert bought.status_code == 201, bought.text
    body: dict[str, Any] = bought.json()
    return body


async def ask(client: httpx.AsyncClient, world: TenantWorld, number_id: int) -> httpx.Response:
    return await client.post(URL, headers=world.admin.headers, json={"number_id": number_id})


async def move(
    client: httpx.AsyncClient, headers: dict[str, str], request_id: int, state: str, **more: str
) -> httpx.Response:
    return await client.patch(f"{URL}/{request_id}", headers=headers, json={"state": state, **more})


async def number_row(sessions: Sessions, number_id: int) -> PhoneNumber:
    async with sessions() as session:
        number = await session.get(PhoneNumber, number_id)
        assert number is not None
        return number


async def test_a_port_out_goes_from_requested_to_completed_and_the_number_leaves(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    number = await buy_number(client, world)
    route = await client.post(
        "/api/v1/inbound-routes",
        headers=world.admin.headers,
        json={"number_id": number["id"], "open_destination": {"type": "hangup"}},
    )
    assert route.status_code == 201, route.text

    asked = await ask(client, world, number["id"])
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert request["state"] == "requested"
    assert (request["tenant_id"], request["number_id"], request["e164"]) == (
        world.tenant_id,
        number["id"],
        number["e164"],
    )
    assert request["requested_by"] == world.admin.email
    twice = await ask(client, world, number["id"])
    assert twice.status_code == 409, twice.text
    assert twice.json()["error_id"] == "port-out-pending"

    # The client may not move it on but to cancelled; the operator accepts.
    refused = await move(client, world.admin.headers, request["id"], "accepted")
    assert refused.status_code == 403, refused.text
    accepted = await move(client, world.operator.headers, request["id"], "accepted")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["state"] == "accepted"
    too_late = await move(client, world.admin.headers, request["id"], "cancelled")
    assert too_late.status_code == 409, too_late.text
    assert too_late.json()["error_id"] == "port-out-state"

    # A number that still routes calls cannot leave: the routes are named.
    in_use = await move(client, world.operator.headers, request["id"], "completed")
    assert in_use.status_code == 409, in_use.text
    assert in_use.json()["error_id"] == "number-in-use"
    assert f"inbound route {route.json()['id']}" in in_use.json()["message"]
    assert (await number_row(sessions, number["id"])).status == "assigned"

    deleted = await client.delete(
        f"/api/v1/inbound-routes/{route.json()['id']}", headers=world.admin.headers
    )
    assert deleted.status_code == 204, deleted.text
    completed = await move(
        client, world.operator.headers, request["id"], "completed", note="Ported on 12 March."
    )
    assert completed.status_code == 200, completed.text
    assert (completed.json()["state"], completed.json()["note"]) == (
        "completed",
        "Ported on 12 March.",
    )
    row = await number_row(sessions, number["id"])
    assert (row.status, row.tenant_id) == ("ported_out", None)
    async with sessions() as session:
        holdings = (
            await session.scalars(
                select(Holding).where(Holding.item == "number", Holding.ref_id == number["id"])
            )
        ).all()
    assert [h.tenant_id for h in holdings] == [world.tenant_id]
    assert holdings[0].held_until is not None

    # Never sold again, and the request is final.
    other = await make_world(client, sessions)
    resold = await client.post(
        "/api/v1/numbers", headers=other.admin.headers, json={"e164": number["e164"]}
    )
    assert resold.status_code == 409, resold.text
    final = await move(client, world.operator.headers, request["id"], "rejected")
    assert final.status_code == 409, final.text
    assert (await client.get("/api/v1/numbers", headers=world.admin.headers)).json()["items"] == []

    async with sessions() as session:
        actions = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(
                    AuditEntry.object_type == "port_out_request",
                    AuditEntry.object_id == str(request["id"]),
                )
                .order_by(AuditEntry.id)
            )
        )
    assert actions == ["request-port-out", "port-out-accepted", "port-out-completed"]


async def test_the_client_cancels_while_requested_and_may_ask_again(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    number = await buy_number(client, world)
    first = (await ask(client, world, number["id"])).json()
    forbidden = await move(client, world.supervisor.headers, first["id"], "cancelled")
    assert forbidden.status_code == 403, forbidden.text
    cancelled = await move(client, world.admin.headers, first["id"], "cancelled")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    again = await ask(client, world, number["id"])
    assert again.status_code == 201, again.text
    rejected = await move(
        client, world.operator.headers, again.json()["id"], "rejected", note="Wrong RIO."
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["note"] == "Wrong RIO."
    row = await number_row(sessions, number["id"])
    assert (row.status, row.tenant_id) == ("assigned", world.tenant_id)


async def test_requests_are_the_tenants_own(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    mine = await buy_number(client, world)
    theirs = await buy_number(client, other)

    foreign = await ask(client, world, theirs["id"])
    assert foreign.status_code == 422, foreign.text
    assert fields_of(foreign) == {"body.number_id"}
    by_supervisor = await client.post(
        URL, headers=world.supervisor.headers, json={"number_id": mine["id"]}
    )
    assert by_supervisor.status_code == 403, by_supervisor.text
    by_operator = await client.post(
        URL, headers=world.operator_headers, json={"number_id": mine["id"]}
    )
    assert by_operator.status_code == 201, by_operator.text
    request_id = by_operator.json()["id"]
    other_request = (await ask(client, other, theirs["id"])).json()

    listed = await client.get(URL, headers=world.supervisor.headers)
    assert listed.status_code == 200, listed.text
    assert [r["id"] for r in listed.json()["items"]] == [request_id]
    assert (await client.get(URL, headers=world.agent.headers)).status_code == 403
    assert (await client.get(f"{URL}/{request_id}", headers=other.admin.headers)).status_code == 404
    cancel_foreign = await move(client, other.admin.headers, request_id, "cancelled")
    assert cancel_foreign.status_code == 404, cancel_foreign.text

    by_tenant = await client.get(
        URL, headers=world.operator.headers, params={"tenant_id": other.tenant_id}
    )
    assert [r["id"] for r in by_tenant.json()["items"]] == [other_request["id"]]
    requested = await client.get(
        URL,
        headers=world.operator.headers,
        params={"state": "requested", "tenant_id": world.tenant_id},
    )
    assert [r["id"] for r in requested.json()["items"]] == [request_id]
    shown = await client.get(f"{URL}/{request_id}", headers=world.admin.headers)
    assert shown.status_code == 200, shown.text
    assert shown.json()["e164"] == mine["e164"]

    bad = await client.patch(
        f"{URL}/{request_id}", headers=world.operator.headers, json={"state": "gone"}
    )
    assert bad.status_code == 422, bad.text
    assert fields_of(bad) == {"body.state"}
