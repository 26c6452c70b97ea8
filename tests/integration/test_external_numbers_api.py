"""External numbers through the real API and database: E.164 only, a destination of type
``external`` in any place that keeps destinations, refused for another tenant's number, and
not deletable while calls are still sent to it."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit.models import AuditEntry
from tests.factories import TenantWorld, fields_of, make_world
from tests.integration.test_numbers_api import buy_number
from tests.integration.test_routing_api import INBOUND, TRUNKS, make_queue, trunk_body

Sessions = async_sessionmaker[AsyncSession]
EXTERNAL = "/api/v1/external-numbers"


async def make_external(
    client: httpx.AsyncClient, world: TenantWorld, number: str = "+33612345678"
) -> dict[str, Any]:
    response = await client.post(
        EXTERNAL, headers=world.admin.headers, json={"name": "Night duty", "number": number}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_an_external_number_is_created_read_changed_and_deleted(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    response = await client.post(
        EXTERNAL,
        headers=world.admin.headers,
        json={"name": "Night duty", "number": "+447911123456"},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["ETag"] == f'"{created["id"]}.1"'
    assert (created["name"], created["number"], created["version"]) == (
        "Night duty",
        "+447911123456",
        1,
    )
    url = f"{EXTERNAL}/{created['id']}"
    assert (await client.get(url, headers=world.supervisor.headers)).json() == created
    listed = await client.get(EXTERNAL, headers=world.supervisor.headers)
    assert [item["id"] for item in listed.json()["items"]] == [created["id"]]
    changed = await client.patch(
        url,
        headers={**world.admin.headers, "If-Match": response.headers["ETag"]},
        json={"number": "+33612345678"},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["number"], changed.json()["version"]) == ("+33612345678", 2)
    stale = await client.patch(
        url,
        headers={**world.admin.headers, "If-Match": response.headers["ETag"]},
        json={"name": "Duty"},
    )
    assert stale.status_code == 412
    assert (await client.delete(url, headers=world.admin.headers)).status_code == 204
    assert (await client.get(url, headers=world.admin.headers)).status_code == 404
    async with sessions() as session:
        actions = await session.scalars(
            select(AuditEntry.action)
            .where(
                AuditEntry.object_type == "external_number",
                AuditEntry.object_id == str(created["id"]),
            )
            .order_by(AuditEntry.id)
        )
        assert list(actions) == ["create", "update", "delete"]


async def test_a_number_that_is_not_e164_or_a_missing_name_is_a_422_naming_the_field(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    for body, field in (
        ({"name": "x", "number": "0612345678"}, "body.number"),  # no country
        ({"name": "x", "number": "+3361234"}, "body.number"),  # not a valid number
        ({"name": "x", "number": "+33 6 12 34 56 78 90 12"}, "body.number"),
        ({"name": "", "number": "+33612345678"}, "body.name"),
        ({"number": "+33612345678"}, "body.name"),
        ({"name": "x", "number": "+33612345678", "extra": 1}, "body.extra"),
    ):
        response = await client.post(EXTERNAL, headers=world.admin.headers, json=body)
        assert response.status_code == 422, (body, response.text)
        assert fields_of(response) == {field}, (body, response.text)
    # A number of this switch: forwarded through a carrier, the call would come back in.
    ours = await buy_number(client, await make_world(client, sessions))
    looping = await client.post(
        EXTERNAL, headers=world.admin.headers, json={"name": "x", "number": ours["e164"]}
    )
    assert looping.status_code == 422 and fields_of(looping) == {"body.number"}
    made = await make_external(client, world)
    moved = await client.patch(
        f"{EXTERNAL}/{made['id']}", headers=world.admin.headers, json={"number": ours["e164"]}
    )
    assert moved.status_code == 422 and fields_of(moved) == {"body.number"}
    nulled = await client.patch(
        f"{EXTERNAL}/{made['id']}", headers=world.admin.headers, json={"number": None}
    )
    assert nulled.status_code == 422 and fields_of(nulled) == {"body.number"}


async def test_only_admins_write_and_other_tenants_see_nothing(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world, other = await make_world(client, sessions), await make_world(client, sessions)
    made = await make_external(client, world)
    url = f"{EXTERNAL}/{made['id']}"
    for headers in (world.supervisor.headers, world.agent.headers):
        refused = await client.post(
            EXTERNAL, headers=headers, json={"name": "x", "number": "+33612345678"}
        )
        assert refused.status_code == 403
    assert (await client.get(url, headers=other.admin.headers)).status_code == 404
    assert (await client.delete(url, headers=other.admin.headers)).status_code == 404
    listed = await client.get(EXTERNAL, headers=other.admin.headers)
    assert listed.json()["items"] == []


async def test_a_route_sends_calls_to_an_external_number_of_its_tenant_only(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world, other = await make_world(client, sessions), await make_world(client, sessions)
    mine, theirs = await make_external(client, world), await make_external(client, other)
    number = await buy_number(client, world)
    foreign = await client.post(
        INBOUND,
        headers=world.admin.headers,
        json={
            "number_id": number["id"],
            "open_destination": {"type": "external", "id": theirs["id"]},
        },
    )
    assert foreign.status_code == 422 and fields_of(foreign) == {"body.open_destination"}
    routed = await client.post(
        INBOUND,
        headers=world.admin.headers,
        json={
            "number_id": number["id"],
            "open_destination": {"type": "external", "id": mine["id"]},
        },
    )
    assert routed.status_code == 201, routed.text
    assert routed.json()["open_destination"] == {"type": "external", "id": mine["id"]}
    # A queue's fallback keeps one too.
    queue_id = await make_queue(sessions, world.tenant_id)
    fallback = await client.patch(
        f"/api/v1/queues/{queue_id}",
        headers=world.admin.headers,
        json={"fallback": {"type": "external", "id": mine["id"]}},
    )
    assert fallback.status_code == 200, fallback.text
    in_use = await client.delete(f"{EXTERNAL}/{mine['id']}", headers=world.admin.headers)
    assert in_use.status_code == 409, in_use.text
    message = in_use.json()["message"]
    assert f"inbound route {routed.json()['id']}" in message and f"queue {queue_id}" in message


async def test_a_trunk_shows_forwarded_callers_only_when_told(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    created = await client.post(TRUNKS, headers=world.operator.headers, json=trunk_body())
    assert created.status_code == 201, created.text
    assert created.json()["forwarded_caller_id"] is False
    url = f"{TRUNKS}/{created.json()['id']}"
    told = await client.patch(
        url, headers=world.operator.headers, json={"forwarded_caller_id": True}
    )
    assert told.status_code == 200 and told.json()["forwarded_caller_id"] is True
    for value in (None, "yes", 1):
        refused = await client.patch(
            url, headers=world.operator.headers, json={"forwarded_caller_id": value}
        )
        assert refused.status_code == 422 and fields_of(refused) == {"body.forwarded_caller_id"}
