"""The operator's licence ceiling through the real API: who sets it, what it limits, the audit."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit.models import AuditEntry
from tests.factories import TenantWorld, fields_of, make_world, unique

Sessions = async_sessionmaker[AsyncSession]


def licences_url(world: TenantWorld) -> str:
    return f"/api/v1/tenants/{world.tenant_id}/licences"


async def set_ceiling(client: httpx.AsyncClient, world: TenantWorld, ceiling: int | None) -> None:
    answer = await client.patch(
        f"/api/v1/tenants/{world.tenant_id}",
        headers=world.operator.headers,
        json={"licence_ceiling": ceiling},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["licence_ceiling"] == ceiling


async def admin_sets(client: httpx.AsyncClient, world: TenantWorld, count: int) -> httpx.Response:
    return await client.put(
        licences_url(world), headers=world.admin.headers, json={"licences": count}
    )


async def licence_changes(sessions: Sessions, tenant_id: int) -> list[dict[str, object]]:
    async with sessions() as session:
        rows = await session.scalars(
            select(AuditEntry.changes)
            .where(
                AuditEntry.tenant_id == tenant_id,
                AuditEntry.action == "set-licences",
            )
            .order_by(AuditEntry.id)
        )
        return list(rows)


async def test_an_admin_may_hold_up_to_the_ceiling_and_no_more(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=5)
    await set_ceiling(client, world, 8)
    below = await admin_sets(client, world, 7)
    assert below.status_code == 200, below.text
    assert below.json() == {
        "tenant_id": world.tenant_id,
        "licences": 7,
        "in_use": 0,
        "licence_ceiling": 8,
    }
    at = await admin_sets(client, world, 8)
    assert at.status_code == 200 and at.json()["licences"] == 8
    above = await admin_sets(client, world, 9)
    assert above.status_code == 409, above.text
    body = above.json()
    assert body["error_id"] == "licence-ceiling"
    assert fields_of(above) == {"body.licences"}
    assert "ceiling of 8" in body["details"]["errors"][0]["reason"]
    assert body["details"]["licence_ceiling"] == 8
    # Nothing changed, and the refusal left no audit entry; the two changes did.
    seen = await client.get(licences_url(world), headers=world.admin.headers)
    assert seen.json()["licences"] == 8 and seen.json()["licence_ceiling"] == 8
    assert await licence_changes(sessions, world.tenant_id) == [
        {"licences": {"from": 5, "to": 7}},
        {"licences": {"from": 7, "to": 8}},
    ]


async def test_the_operator_may_go_above_and_the_admin_may_then_only_lower(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=2)
    await set_ceiling(client, world, 4)
    granted = await client.put(
        licences_url(world), headers=world.operator_headers, json={"licences": 10}
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["licences"] == 10
    # Above the ceiling already: a lowering is always allowed, a raise is not.
    assert (await admin_sets(client, world, 6)).status_code == 200
    assert (await admin_sets(client, world, 7)).status_code == 409
    assert (await admin_sets(client, world, 3)).status_code == 200
    assert (await admin_sets(client, world, 5)).status_code == 409
    # Removing the ceiling (null) lifts the limit.
    await set_ceiling(client, world, None)
    assert (await admin_sets(client, world, 50)).status_code == 200


async def test_only_the_operator_sets_the_ceiling(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    refused = await client.patch(
        f"/api/v1/tenants/{world.tenant_id}",
        headers=world.admin.headers,
        json={"licence_ceiling": 1000},
    )
    assert refused.status_code == 403
    seen = await client.get(f"/api/v1/tenants/{world.tenant_id}", headers=world.admin.headers)
    assert seen.status_code == 200 and seen.json()["licence_ceiling"] is None
    for bad in (-1, 100_001, "5", True, 2.5):
        answer = await client.patch(
            f"/api/v1/tenants/{world.tenant_id}",
            headers=world.operator.headers,
            json={"licence_ceiling": bad},
        )
        assert answer.status_code == 422, (bad, answer.text)
        assert fields_of(answer) == {"body.licence_ceiling"}
    # The change is audited like every change of a tenant.
    await set_ceiling(client, world, 12)
    async with sessions() as session:
        details = await session.scalar(
            select(AuditEntry.changes)
            .where(AuditEntry.tenant_id == world.tenant_id, AuditEntry.action == "update")
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )
    assert details == {"licence_ceiling": 12}


async def test_a_tenant_is_created_with_its_ceiling(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    slug = unique("c")
    body = {
        "slug": slug,
        "name": "Ceiling Co",
        "country": "FR",
        "timezone": "Europe/Paris",
        "licences": 3,
        "licence_ceiling": 6,
    }
    created = await client.post("/api/v1/tenants", headers=world.operator.headers, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["licence_ceiling"] == 6
    seen = await client.get(
        f"/api/v1/tenants/{created.json()['id']}", headers=world.operator.headers
    )
    assert seen.json()["licence_ceiling"] == 6
    negative = await client.post(
        "/api/v1/tenants",
        headers=world.operator.headers,
        json={**body, "slug": unique("c"), "licence_ceiling": -3},
    )
    assert negative.status_code == 422 and fields_of(negative) == {"body.licence_ceiling"}
