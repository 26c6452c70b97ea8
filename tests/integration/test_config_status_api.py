"""GET /api/v1/config/status: each committed change bumps its tenant's generation once, in
its own transaction; who may see which tenant's status. (No applier runs here: nothing is
applied, so every change stays pending; the e2e tests see changes become live.)"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import TenantWorld, fields_of, make_world

Sessions = async_sessionmaker[AsyncSession]
URL = "/api/v1/config/status"


async def status(client: httpx.AsyncClient, world: TenantWorld) -> dict[str, Any]:
    response = await client.get(URL, headers=world.admin.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_every_committed_change_bumps_the_generation_once(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    before, others = await status(client, world), await status(client, other)
    assert before["tenant_id"] == world.tenant_id

    made = await client.post("/api/v1/queues", headers=world.admin.headers, json={"name": "sales"})
    assert made.status_code == 201, made.text
    after = await status(client, world)
    assert after["committed_generation"] == before["committed_generation"] + 1
    assert after["pending"] is True
    assert after["committed_at"] is not None

    refused = await client.post(
        "/api/v1/queues", headers=world.admin.headers, json={"name": "sales"}
    )
    assert refused.status_code == 409, refused.text  # rolled back: no change, no bump
    assert (await status(client, world))["committed_generation"] == after["committed_generation"]
    assert (await status(client, other))["committed_generation"] == others["committed_generation"]


async def test_who_sees_which_status(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    supervisor = await client.get(URL, headers=world.supervisor.headers)
    assert supervisor.status_code == 200 and supervisor.json()["tenant_id"] == world.tenant_id
    agent = await client.get(URL, headers=world.agent.headers)
    assert agent.status_code == 403, agent.text
    # A tenant user's tenant comes from its token, never from the header.
    crossed = await client.get(
        URL, headers={**world.admin.headers, "X-Graam-Tenant": str(other.tenant_id)}
    )
    assert crossed.json()["tenant_id"] == world.tenant_id

    one = await client.get(URL, headers=world.operator_headers)
    assert one.status_code == 200 and one.json()["tenant_id"] == world.tenant_id
    every = (await client.get(URL, headers=world.operator.headers)).json()
    ids = {t["tenant_id"] for t in every["tenants"]}
    assert {world.tenant_id, other.tenant_id} <= ids
    assert every["pending_tenants"] >= 2
    assert every["failing_trunks"] == []

    missing = await client.get(URL, headers={**world.operator.headers, "X-Graam-Tenant": "999999"})
    assert missing.status_code == 404, missing.text
    bad = await client.get(URL, headers={**world.operator.headers, "X-Graam-Tenant": "abc"})
    assert bad.status_code == 422, bad.text
    assert fields_of(bad) == {"header.x-graam-tenant"}
    anonymous = await client.get(URL)
    assert anonymous.status_code == 401
