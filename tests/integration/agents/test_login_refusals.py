"""The refusals ``agent_login()`` (migration 0023) makes before counting licences, each with
the error the API answers, and nothing written: the device registered with another node than
the tenant's, no node to take the tenant, an agent already logged in on another device.

Node rows are changed inside the test's own transaction, rolled back at its end: the
session's Postgres is shared with every other test, whose tenants live on the local node."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents import sessions as agent_sessions
from graam_pbx.auth.principal import Principal, Role, Scope
from tests.factories import TenantWorld, make_world, unique
from tests.integration.test_agent_sessions import new_agent

LIVE = text("SELECT count(*) FROM agent_sessions WHERE tenant_id = :t AND ended_at IS NULL")
EVENTS = text("SELECT count(*) FROM agent_state_events WHERE tenant_id = :t")


def supervisor_scope(world: TenantWorld) -> Scope:
    return Scope(
        world.tenant_id,
        Principal(world.supervisor.user_id, Role.SUPERVISOR, world.tenant_id, "supervisor"),
    )


async def test_a_device_registered_with_another_node_is_refused_and_nothing_written(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions, licences=2)
    agent = await new_agent(client, world)
    other = unique("n")[:20]
    async with sessions() as session, session.begin():
        # The tenant's node: its placement's, else the active node with the lowest id.
        home = await session.scalar(
            text(
                "SELECT name FROM asterisk_nodes WHERE id = coalesce((SELECT node_id FROM "
                "tenant_placements WHERE tenant_id = :t), (SELECT id FROM asterisk_nodes WHERE "
                "state = 'active' ORDER BY id LIMIT 1))"
            ),
            {"t": world.tenant_id},
        )
        assert home is not None
        await session.execute(
            text(
                "INSERT INTO asterisk_nodes (name, systemname, ami_host, ami_port, ami_username, "
                "ami_secret, sip_host, sip_port, state, version) VALUES (:n, :n, '127.0.0.1', "
                "5038, 'x', 'x', '127.0.0.1', 5060, 'down', 1)"
            ),
            {"n": other},
        )
        await session.execute(
            text(
                "INSERT INTO ps_contacts (id, uri, endpoint, reg_server) SELECT :id, "
                "'sip:x@127.0.0.1', sip_username, :n FROM agent_devices WHERE id = :d"
            ),
            {"id": unique("contact"), "n": other, "d": agent.device_id},
        )
        with pytest.raises(agent_sessions.DeviceOnOtherNode) as refused:
            await agent_sessions.login(session, supervisor_scope(world), agent.user_id)
        assert refused.value.status_code == 409
        assert refused.value.details == {
            "field": "body.device_id",
            "reason": "the tenant lives on another node",
            "tenant_node": home,
        }
        assert await session.scalar(LIVE, {"t": world.tenant_id}) == 0
        assert await session.scalar(EVENTS, {"t": world.tenant_id}) == 0

        # Without a placement and with no active node, no node can take the tenant.
        await session.execute(
            text("DELETE FROM tenant_placements WHERE tenant_id = :t"), {"t": world.tenant_id}
        )
        await session.execute(text("UPDATE asterisk_nodes SET state = 'down'"))
        with pytest.raises(agent_sessions.NoNodeActive) as nowhere:
            await agent_sessions.login(session, supervisor_scope(world), agent.user_id)
        assert nowhere.value.error_id == "no-active-node"
        assert await session.scalar(LIVE, {"t": world.tenant_id}) == 0
        await session.rollback()


async def test_an_agent_logged_in_gets_its_session_back_and_a_409_for_another_device(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions, licences=2)
    agent = await new_agent(client, world)
    url = f"/api/v1/agents/{agent.user_id}/session"
    made = await client.post(url, headers=world.supervisor.headers)
    assert made.status_code == 201, made.text
    again = await client.post(url, headers=world.supervisor.headers)
    assert again.status_code == 200, again.text
    assert again.json() == made.json()
    named = await client.post(
        url, headers=world.supervisor.headers, json={"device_id": agent.device_id}
    )
    assert named.status_code == 200, named.text
    second = await client.post(
        "/api/v1/devices",
        headers=world.admin.headers,
        json={"user_id": agent.user_id, "name": unique("desk"), "extension": "299"},
    )
    assert second.status_code == 201, second.text
    elsewhere = await client.post(
        url, headers=world.supervisor.headers, json={"device_id": second.json()["id"]}
    )
    assert elsewhere.status_code == 409, elsewhere.text
    assert elsewhere.json()["details"] == {"device_id": agent.device_id}
    async with sessions() as session:
        assert await session.scalar(LIVE, {"t": world.tenant_id}) == 1
