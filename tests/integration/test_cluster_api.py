"""Asterisk nodes and tenants' placements through the operator's API, against real Postgres.

The tests of this module share one database (the module's): each makes its own nodes and
tenants, and reads only those. The node ``local`` (the control plane's own Asterisk, as
``ensure_local_node`` registers it) is the lowest node, so the default one while active.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit.models import AuditEntry
from graam_pbx.cluster import placement
from graam_pbx.cluster.models import AsteriskNode, NodeState, TenantPlacement
from graam_pbx.cluster.nodes import ensure_local_node
from graam_pbx.cluster.placement import TenantOnOtherNode
from graam_pbx.tenants.models import Tenant
from tests.conftest import Asterisk
from tests.factories import TenantWorld, fields_of, make_world, unique
from tests.schema import differences_after_migrating

Sessions = async_sessionmaker[AsyncSession]
SECRET = "node-secret-0123456789"


def _node_body(**overrides: Any) -> dict[str, Any]:
    name = unique("n")[:32].replace("_", "-")
    body = {
        "name": name,
        "systemname": name.replace("-", "_"),
        "ami_host": "127.0.0.122",
        "ami_port": 5038,
        "ami_username": "graam",
        "ami_secret": SECRET,
        "sip_host": "127.0.0.122",
        "sip_port": 5060,
    }
    body.update(overrides)
    return body


@pytest.fixture(scope="module")
async def world(client: httpx.AsyncClient, sessions: Sessions, asterisk: Asterisk) -> TenantWorld:
    world = await make_world(client, sessions)
    async with sessions() as session, session.begin():
        await ensure_local_node(session, asterisk.ami_config(), sip_host="127.0.0.1", sip_port=5060)
    return world


async def _create(client: httpx.AsyncClient, world: TenantWorld, **overrides: Any) -> Any:
    response = await client.post(
        "/api/v1/nodes", headers=world.operator.headers, json=_node_body(**overrides)
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _new_tenant(sessions: Sessions) -> int:
    async with sessions() as session, session.begin():
        slug = unique("c")[:40]
        tenant = Tenant(slug=slug, name=slug, country="FR", timezone="Europe/Paris")
        session.add(tenant)
        await session.flush()
        return tenant.id


async def _set_state(
    client: httpx.AsyncClient, world: TenantWorld, node_id: int, state: str
) -> Any:
    return await client.patch(
        f"/api/v1/nodes/{node_id}", headers=world.operator.headers, json={"state": state}
    )


async def test_the_local_node_is_registered_once(
    sessions: Sessions, world: TenantWorld, asterisk: Asterisk
) -> None:
    configured = asterisk.ami_config()
    elsewhere = dataclasses.replace(configured, host="127.0.0.123", secret="other-secret")
    async with sessions() as session, session.begin():
        same = await ensure_local_node(session, configured, sip_host="127.0.0.1", sip_port=5060)
        other = await ensure_local_node(session, elsewhere, sip_host="127.0.0.123", sip_port=5)
        locals_ = await session.scalar(
            select(func.count()).select_from(AsteriskNode).where(AsteriskNode.name == "local")
        )
    assert same is not None
    assert (same.name, same.systemname, same.ami_host) == ("local", "graam", "127.0.0.1")
    assert same.ami_port == configured.port and same.ami_secret == configured.secret
    assert other is None  # nodes exist, none of them at that AMI address: nothing written
    assert locals_ == 1


async def test_an_operator_registers_lists_and_changes_nodes(
    client: httpx.AsyncClient, world: TenantWorld
) -> None:
    created = await client.post(
        "/api/v1/nodes", headers=world.operator.headers, json=_node_body(ami_port=5039)
    )
    assert created.status_code == 201, created.text
    node = created.json()
    assert SECRET not in created.text and "ami_secret" not in node
    assert node["state"] == "active" and node["tenants"] == 0 and node["default"] is False
    etag = created.headers["etag"]

    listed = await client.get("/api/v1/nodes", headers=world.operator.headers)
    assert listed.status_code == 200
    assert SECRET not in listed.text
    names = [item["name"] for item in listed.json()["items"]]
    assert "local" in names and node["name"] in names
    local = next(item for item in listed.json()["items"] if item["name"] == "local")
    assert local["default"] is True

    shown = await client.get(f"/api/v1/nodes/{node['id']}", headers=world.operator.headers)
    assert shown.status_code == 200 and shown.json()["ami_port"] == 5039

    changed = await client.patch(
        f"/api/v1/nodes/{node['id']}",
        headers={**world.operator.headers, "If-Match": etag},
        json={"sip_port": 5070, "ami_secret": "another-secret-42"},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["sip_port"] == 5070 and "another-secret-42" not in changed.text
    stale = await client.patch(
        f"/api/v1/nodes/{node['id']}",
        headers={**world.operator.headers, "If-Match": etag},
        json={"sip_port": 5071},
    )
    assert stale.status_code == 412

    taken = await client.post(
        "/api/v1/nodes", headers=world.operator.headers, json=_node_body(name=node["name"])
    )
    assert taken.status_code == 409 and taken.json()["details"]["field"] == "name"
    taken = await client.post(
        "/api/v1/nodes",
        headers=world.operator.headers,
        json=_node_body(systemname=node["systemname"]),
    )
    assert taken.status_code == 409 and taken.json()["details"]["field"] == "systemname"
    missing = await client.get("/api/v1/nodes/999999999", headers=world.operator.headers)
    assert missing.status_code == 404


async def test_the_ami_secret_is_stored_and_audited_as_set_only(
    client: httpx.AsyncClient, sessions: Sessions, world: TenantWorld
) -> None:
    node = await _create(client, world)
    async with sessions() as session:
        stored = await session.get_one(AsteriskNode, node["id"])
        entry = await session.scalar(
            select(AuditEntry).where(
                AuditEntry.object_type == "node", AuditEntry.object_id == str(node["id"])
            )
        )
    assert stored.ami_secret == SECRET
    assert entry is not None and entry.action == "create" and entry.tenant_id is None
    assert entry.changes["ami_secret"] == "set" and SECRET not in str(entry.changes)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "Upper"}, "body.name"),
        ({"name": "x" * 33}, "body.name"),
        ({"systemname": "has space"}, "body.systemname"),
        ({"ami_host": "bad host"}, "body.ami_host"),
        ({"sip_host": "999.1.1.1"}, "body.sip_host"),
        ({"ami_port": 0}, "body.ami_port"),
        ({"sip_port": 65536}, "body.sip_port"),
        ({"ami_port": "5038"}, "body.ami_port"),
        ({"ami_username": "with:colon"}, "body.ami_username"),
        ({"ami_secret": "short"}, "body.ami_secret"),
        ({"ami_secret": "has a space in it"}, "body.ami_secret"),
        ({"state": "asleep"}, "body.state"),
        ({"extra": 1}, "body.extra"),
    ],
)
async def test_bad_node_input_is_a_422_naming_the_field(
    client: httpx.AsyncClient, world: TenantWorld, overrides: dict[str, Any], field: str
) -> None:
    response = await client.post(
        "/api/v1/nodes", headers=world.operator.headers, json=_node_body(**overrides)
    )
    assert response.status_code == 422, response.text
    assert field in fields_of(response)


async def test_a_null_for_a_required_field_is_a_422(
    client: httpx.AsyncClient, world: TenantWorld
) -> None:
    node = await _create(client, world)
    for field in ("name", "ami_secret", "state", "sip_port"):
        response = await client.patch(
            f"/api/v1/nodes/{node['id']}", headers=world.operator.headers, json={field: None}
        )
        assert response.status_code == 422, response.text
        assert f"body.{field}" in fields_of(response)


async def test_tenant_users_may_not_see_nor_touch_nodes_and_placements(
    client: httpx.AsyncClient, world: TenantWorld
) -> None:
    node = await _create(client, world)
    for role in ("admin", "supervisor", "agent"):
        headers = world.actor(role).headers
        calls = [
            ("GET", "/api/v1/nodes", None),
            ("POST", "/api/v1/nodes", _node_body()),
            ("GET", f"/api/v1/nodes/{node['id']}", None),
            ("PATCH", f"/api/v1/nodes/{node['id']}", {"state": "draining"}),
            ("DELETE", f"/api/v1/nodes/{node['id']}", None),
            ("GET", f"/api/v1/tenants/{world.tenant_id}/placement", None),
            ("PUT", f"/api/v1/tenants/{world.tenant_id}/placement", {"node": node["name"]}),
        ]
        for method, path, body in calls:
            response = await client.request(method, path, headers=headers, json=body)
            assert response.status_code == 403, (role, method, path, response.text)
            assert response.json()["error_id"] == "forbidden"
    unauthenticated = await client.get("/api/v1/nodes")
    assert unauthenticated.status_code == 401


async def test_node_states_move_only_the_documented_ways(
    client: httpx.AsyncClient, world: TenantWorld
) -> None:
    node = await _create(client, world)
    moves = [
        ("draining", 200),
        ("active", 200),
        ("down", 200),
        ("draining", 409),  # a down node comes back active
        ("active", 200),
        ("draining", 200),
        ("draining", 200),  # staying is no move
        ("down", 200),
        ("active", 200),
    ]
    for state, status in moves:
        response = await _set_state(client, world, node["id"], state)
        assert response.status_code == status, (state, response.text)
        if status == 409:
            details = response.json()["details"]
            assert details["field"] == "body.state" and details["reason"]
        else:
            assert response.json()["state"] == state


async def test_a_tenant_without_placement_lives_on_the_default_node(
    client: httpx.AsyncClient, sessions: Sessions, world: TenantWorld
) -> None:
    tenant_id = await _new_tenant(sessions)
    response = await client.get(
        f"/api/v1/tenants/{tenant_id}/placement", headers=world.operator.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["node"]["name"] == "local" and body["placed"] is False
    assert body["standby"] is None
    async with sessions() as session:
        assert (await placement.node_of_tenant(session, tenant_id)).name == "local"
        local = await placement.default_node(session)
        assert local is not None
        assert tenant_id in await placement.tenants_of_node(session, local.id)
    missing = await client.get(
        "/api/v1/tenants/999999999/placement", headers=world.operator.headers
    )
    assert missing.status_code == 404


async def test_an_operator_places_and_moves_a_tenant(
    client: httpx.AsyncClient, sessions: Sessions, world: TenantWorld
) -> None:
    first, second, drained, down = [await _create(client, world) for _ in range(4)]
    assert (await _set_state(client, world, drained["id"], "draining")).status_code == 200
    assert (await _set_state(client, world, down["id"], "down")).status_code == 200
    tenant_id = await _new_tenant(sessions)
    url = f"/api/v1/tenants/{tenant_id}/placement"
    headers = world.operator.headers

    placed = await client.put(url, headers=headers, json={"node": first["name"]})
    assert placed.status_code == 200, placed.text
    assert placed.json()["node"]["name"] == first["name"] and placed.json()["placed"] is True

    moved = await client.put(
        url, headers=headers, json={"node": second["name"], "standby": first["name"]}
    )
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert (body["node"]["name"], body["standby"]["name"]) == (second["name"], first["name"])
    shown = await client.get(url, headers=headers)
    assert shown.json() == body
    async with sessions() as session:
        assert (await placement.node_of_tenant(session, tenant_id)).id == second["id"]
        assert await placement.tenants_of_node(session, second["id"]) == [tenant_id]

    same = await client.put(url, headers=headers, json={"node": second["name"], "standby": None})
    assert same.status_code == 200 and same.json()["standby"] is None

    refusals = [
        ({"node": drained["name"]}, 409, "body.node"),
        ({"node": down["name"]}, 409, "body.node"),
        ({"node": second["name"], "standby": down["name"]}, 409, "body.standby"),
        ({"node": second["name"], "standby": second["name"]}, 422, "body.standby"),
        ({"node": "no-such-node"}, 422, "body.node"),
        ({"node": second["name"], "standby": "no-such-node"}, 422, "body.standby"),
        ({"node": "Not A Name"}, 422, "body.node"),
        ({}, 422, "body.node"),
        ({"node": second["name"], "other": 1}, 422, "body.other"),
    ]
    for body_sent, status, field in refusals:
        response = await client.put(url, headers=headers, json=body_sent)
        assert response.status_code == status, (body_sent, response.text)
        if status == 409:
            assert response.json()["details"]["field"] == field
        else:
            assert field in fields_of(response), (body_sent, response.text)

    # A tenant on a node that is then drained stays there, and may be re-put there.
    assert (await _set_state(client, world, second["id"], "draining")).status_code == 200
    kept = await client.put(url, headers=headers, json={"node": second["name"]})
    assert kept.status_code == 200, kept.text
    assert kept.json()["node"]["state"] == "draining"
    assert (await _set_state(client, world, second["id"], "active")).status_code == 200

    async with sessions() as session:
        entries = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.object_type == "placement", AuditEntry.tenant_id == tenant_id)
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [entry.action for entry in entries] == ["move", "move", "update"]
    assert entries[1].changes == {"node": second["name"], "standby": first["name"]}


async def test_a_node_with_tenants_or_standing_by_cannot_be_deleted(
    client: httpx.AsyncClient, sessions: Sessions, world: TenantWorld
) -> None:
    home, standby, empty = [await _create(client, world) for _ in range(3)]
    tenant_id = await _new_tenant(sessions)
    url = f"/api/v1/tenants/{tenant_id}/placement"
    placed = await client.put(
        url, headers=world.operator.headers, json={"node": home["name"], "standby": standby["name"]}
    )
    assert placed.status_code == 200, placed.text

    for node, reason in ((home, "tenants live"), (standby, "standby")):
        refused = await client.delete(f"/api/v1/nodes/{node['id']}", headers=world.operator.headers)
        assert refused.status_code == 409, refused.text
        details = refused.json()["details"]
        assert details["field"] == "path.node_id" and reason in details["reason"]
        assert details["tenants"] == [tenant_id] and details["tenant_count"] == 1

    local = next(
        item
        for item in (await client.get("/api/v1/nodes", headers=world.operator.headers)).json()[
            "items"
        ]
        if item["name"] == "local"
    )
    refused = await client.delete(f"/api/v1/nodes/{local['id']}", headers=world.operator.headers)
    assert refused.status_code == 409  # the default node: every unplaced tenant lives there

    deleted = await client.delete(f"/api/v1/nodes/{empty['id']}", headers=world.operator.headers)
    assert deleted.status_code == 204
    gone = await client.get(f"/api/v1/nodes/{empty['id']}", headers=world.operator.headers)
    assert gone.status_code == 404


async def test_draining_the_default_node_moves_none_of_its_tenants(
    client: httpx.AsyncClient, sessions: Sessions, world: TenantWorld
) -> None:
    tenant_id = await _new_tenant(sessions)
    async with sessions() as session:
        local = await placement.default_node(session)
    assert local is not None and local.name == "local"
    try:
        drained = await _set_state(client, world, local.id, "draining")
        assert drained.status_code == 200, drained.text
        async with sessions() as session:
            row = await session.get(TenantPlacement, tenant_id)
            assert row is not None and row.node_id == local.id
            assert (await placement.node_of_tenant(session, tenant_id)).id == local.id
            new_default = await placement.default_node(session)
        assert new_default is None or new_default.id != local.id
        entry_changes = await _last_node_audit(sessions, local.id)
        assert entry_changes["state"] == "draining" and entry_changes["pinned_tenants"] >= 1
    finally:
        assert (await _set_state(client, world, local.id, "active")).status_code == 200
    async with sessions() as session:
        assert (await placement.node_of_tenant(session, tenant_id)).id == local.id


async def _last_node_audit(sessions: Sessions, node_id: int) -> dict[str, Any]:
    async with sessions() as session:
        entry = await session.scalar(
            select(AuditEntry)
            .where(AuditEntry.object_type == "node", AuditEntry.object_id == str(node_id))
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )
    assert entry is not None
    return dict(entry.changes)


async def _least_loaded(sessions: Sessions) -> int:
    """The active node with the fewest tenants (the lowest id among equals), counted here."""
    async with sessions() as session:
        active = (
            await session.scalars(
                select(AsteriskNode).where(AsteriskNode.state == NodeState.ACTIVE.value)
            )
        ).all()
        loads = {node.id: len(await placement.tenants_of_node(session, node.id)) for node in active}
    return min(loads, key=lambda node_id: (loads[node_id], node_id))


async def test_a_new_tenant_goes_to_the_least_loaded_active_node(
    client: httpx.AsyncClient, sessions: Sessions, world: TenantWorld
) -> None:
    drained = await _create(client, world)
    assert (await _set_state(client, world, drained["id"], "draining")).status_code == 200
    tenant_id = await _new_tenant(sessions)
    expected = await _least_loaded(sessions)
    async with sessions() as session, session.begin():
        row = await placement.place_new_tenant(session, tenant_id)
    assert row.node_id == expected
    assert row.node_id != drained["id"]


async def test_a_tenant_created_through_the_api_is_placed_when_there_are_several_nodes(
    client: httpx.AsyncClient, sessions: Sessions, world: TenantWorld
) -> None:
    await _create(client, world)  # several nodes, whatever the tests before made
    expected = await _least_loaded(sessions)
    slug = unique("p")[:40]
    response = await client.post(
        "/api/v1/tenants",
        headers=world.operator.headers,
        json={"slug": slug, "name": slug, "country": "FR", "timezone": "Europe/Paris"},
    )
    assert response.status_code == 201, response.text
    where = await client.get(
        f"/api/v1/tenants/{response.json()['id']}/placement", headers=world.operator.headers
    )
    assert where.status_code == 200
    assert where.json()["placed"] is True
    assert where.json()["node"]["id"] == expected


async def test_a_tenants_queue_member_through_another_node_is_refused(
    client: httpx.AsyncClient, sessions: Sessions, world: TenantWorld
) -> None:
    home, other = [await _create(client, world) for _ in range(2)]
    tenant_id = await _new_tenant(sessions)
    placed = await client.put(
        f"/api/v1/tenants/{tenant_id}/placement",
        headers=world.operator.headers,
        json={"node": home["name"]},
    )
    assert placed.status_code == 200
    async with sessions() as session:
        node = await placement.require_tenant_on_node(session, tenant_id, home["id"])
        assert node.name == home["name"]
        with pytest.raises(TenantOnOtherNode) as refused:
            await placement.require_tenant_on_node(
                session, tenant_id, other["id"], field="body.node"
            )
    assert refused.value.status_code == 409
    assert refused.value.details["field"] == "body.node"
    assert refused.value.details["tenant_node"] == home["name"]


async def test_the_cluster_migration_makes_the_models_tables(empty_database_url: str) -> None:
    tables = {AsteriskNode.__tablename__, TenantPlacement.__tablename__}
    assert await differences_after_migrating(empty_database_url, tables) == []
