"""POST /api/v1/supervision refused as it must be: the input, the role, the tenant, the
supervisor's device and the agent's call, against the real Asterisk. An agent of another
tenant is 404 before any AMI action; no refusal leaves an audit entry. (Calls supervised for
real, with audio: tests/e2e/test_supervision.py.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit.models import AuditEntry
from tests.ami_actions import actions_sent
from tests.factories import TenantWorld, fields_of, make_world, unique

Sessions = async_sessionmaker[AsyncSession]
URL = "/api/v1/supervision"


async def device_of(
    client: httpx.AsyncClient, world: TenantWorld, user_id: int, extension: str
) -> dict[str, Any]:
    made = await client.post(
        "/api/v1/devices",
        headers=world.admin.headers,
        json={"user_id": user_id, "name": unique("desk"), "extension": extension},
    )
    assert made.status_code == 201, made.text
    device: dict[str, Any] = made.json()
    return device


async def supervisions_audited(sessions: Sessions, tenant_id: int) -> int:
    async with sessions() as session:
        count = await session.scalar(
            select(func.count()).where(
                AuditEntry.tenant_id == tenant_id, AuditEntry.action == "supervise"
            )
        )
    return int(count or 0)


async def test_bad_input_is_a_422_naming_the_field(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    agent = world.agent.user_id
    for body, field in [
        ({"mode": "listen"}, "body.agent_user_id"),
        ({"agent_user_id": agent}, "body.mode"),
        ({"agent_user_id": agent, "mode": "spy"}, "body.mode"),
        ({"agent_user_id": str(agent), "mode": "listen"}, "body.agent_user_id"),
        ({"agent_user_id": 0, "mode": "listen"}, "body.agent_user_id"),
        ({"agent_user_id": 2**70, "mode": "listen"}, "body.agent_user_id"),
        ({"agent_user_id": agent, "mode": "listen", "device_id": "1"}, "body.device_id"),
        ({"agent_user_id": agent, "mode": "listen", "device_id": -1}, "body.device_id"),
        ({"agent_user_id": agent, "mode": "listen", "tone": False}, "body.tone"),
    ]:
        response = await client.post(URL, headers=world.supervisor.headers, json=body)
        assert response.status_code == 422, (body, response.text)
        assert fields_of(response) == {field}, body


async def test_agents_may_not_supervise_and_credentials_are_needed(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    body = {"agent_user_id": world.agent.user_id, "mode": "listen"}
    assert (await client.post(URL, headers=world.agent.headers, json=body)).status_code == 403
    assert (await client.post(URL, json=body)).status_code == 401


@pytest.mark.parametrize("role", ["supervisor", "admin", "operator"])
async def test_an_agent_of_another_tenant_is_not_found_and_nothing_reaches_asterisk(
    client: httpx.AsyncClient,
    sessions: Sessions,
    monkeypatch: pytest.MonkeyPatch,
    role: str,
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    await device_of(client, world, world.supervisor.user_id, "301")
    await device_of(client, world, world.admin.user_id, "302")
    await device_of(client, other, other.agent.user_id, "201")
    for agent in (other.agent.user_id, world.supervisor.user_id, 10**12):
        with actions_sent(monkeypatch) as sent:
            response = await client.post(
                URL, headers=world.headers(role), json={"agent_user_id": agent, "mode": "barge"}
            )
        assert response.status_code == 404, response.text
        assert response.json()["error_id"] == "not-found"
        assert sent == []
    assert await supervisions_audited(sessions, world.tenant_id) == 0
    assert await supervisions_audited(sessions, other.tenant_id) == 0


async def test_a_supervisor_without_a_device_is_a_409(
    client: httpx.AsyncClient, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_world(client, sessions)
    await device_of(client, world, world.agent.user_id, "201")
    body = {"agent_user_id": world.agent.user_id, "mode": "listen"}
    with actions_sent(monkeypatch) as sent:
        response = await client.post(URL, headers=world.supervisor.headers, json=body)
        # An operator owns no device in a tenant: it names one.
        by_operator = await client.post(URL, headers=world.operator_headers, json=body)
    for refused in (response, by_operator):
        assert refused.status_code == 409, refused.text
        assert refused.json()["error_id"] == "supervisor-has-no-device"
    assert sent == []


async def test_a_device_that_is_not_the_supervisors_is_a_422(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    agents = await device_of(client, world, world.agent.user_id, "201")
    admins = await device_of(client, world, world.admin.user_id, "202")
    foreign = await device_of(client, other, other.supervisor.user_id, "301")
    for device in (agents, admins, foreign):
        response = await client.post(
            URL,
            headers=world.supervisor.headers,
            json={
                "agent_user_id": world.agent.user_id,
                "mode": "listen",
                "device_id": device["id"],
            },
        )
        assert response.status_code == 422, response.text
        assert fields_of(response) == {"body.device_id"}
    # An operator may name any of the tenant's devices, but not the agent's own.
    response = await client.post(
        URL,
        headers=world.operator_headers,
        json={"agent_user_id": world.agent.user_id, "mode": "listen", "device_id": agents["id"]},
    )
    assert response.status_code == 422, response.text
    assert fields_of(response) == {"body.device_id"}


async def test_an_agent_on_no_call_is_a_409_after_asking_asterisk(
    client: httpx.AsyncClient, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_world(client, sessions)
    supervisors = await device_of(client, world, world.supervisor.user_id, "301")
    body = {"agent_user_id": world.agent.user_id, "mode": "whisper"}
    # No device: no call.
    response = await client.post(URL, headers=world.supervisor.headers, json=body)
    assert response.status_code == 409, response.text
    assert response.json()["error_id"] == "agent-not-on-call"

    await device_of(client, world, world.agent.user_id, "201")
    with actions_sent(monkeypatch) as sent:
        response = await client.post(URL, headers=world.supervisor.headers, json=body)
        by_operator = await client.post(
            URL, headers=world.operator_headers, json={**body, "device_id": supervisors["id"]}
        )
    for refused in (response, by_operator):
        assert refused.status_code == 409, refused.text
        assert refused.json()["error_id"] == "agent-not-on-call"
    # Asterisk's channels were read, and no call was placed.
    assert [name for name, _ in sent] == ["CoreShowChannels", "CoreShowChannels"]
    assert await supervisions_audited(sessions, world.tenant_id) == 0
