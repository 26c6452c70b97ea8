"""Agent sessions through the real API and database: licence arithmetic, events, isolation.

The app runs with its agent worker against the real Asterisk (no generated configuration in
this module: the queues' membership is proven in tests/e2e/test_agent_login.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents.models import AgentSession, AgentStateEvent
from graam_pbx.app import Endpoints
from graam_pbx.audit.models import AuditEntry
from tests.conftest import Asterisk, RunningApp, start_app
from tests.factories import HOSTILE, PASSWORD, TenantWorld, fields_of, login, make_world, unique

Sessions = async_sessionmaker[AsyncSession]


@dataclass
class Agent:
    user_id: int
    device_id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def new_agent(client: httpx.AsyncClient, world: TenantWorld, *, token: bool = False) -> Agent:
    """Another agent of the tenant with one device (and, if asked, its own access token)."""
    email = f"{unique('agent')}@{world.slug}.example"
    user = await client.post(
        "/api/v1/users",
        headers=world.admin.headers,
        json={"email": email, "display_name": "Agent", "role": "agent", "password": PASSWORD},
    )
    assert user.status_code == 201, user.text
    user_id = user.json()["id"]
    device = await client.post(
        "/api/v1/devices",
        headers=world.admin.headers,
        json={"user_id": user_id, "name": unique("desk"), "extension": str(200 + user_id % 9000)},
    )
    assert device.status_code == 201, device.text
    access = await login(client, email, world.slug) if token else ""
    return Agent(user_id, device.json()["id"], access)


async def agents(client: httpx.AsyncClient, world: TenantWorld, count: int) -> list[Agent]:
    return [await new_agent(client, world) for _ in range(count)]


def session_url(agent: Agent | int) -> str:
    user_id = agent if isinstance(agent, int) else agent.user_id
    return f"/api/v1/agents/{user_id}/session"


async def log_in(
    client: httpx.AsyncClient, headers: dict[str, str], agent: Agent, **body: Any
) -> httpx.Response:
    return await client.post(session_url(agent), headers=headers, json=body or None)


async def set_licences(client: httpx.AsyncClient, world: TenantWorld, licences: int) -> None:
    response = await client.put(
        f"/api/v1/tenants/{world.tenant_id}/licences",
        headers=world.operator.headers,
        json={"licences": licences},
    )
    assert response.status_code == 200, response.text


async def in_use(client: httpx.AsyncClient, world: TenantWorld) -> int:
    response = await client.get(
        f"/api/v1/tenants/{world.tenant_id}/licences", headers=world.admin.headers
    )
    assert response.status_code == 200, response.text
    value: int = response.json()["in_use"]
    return value


async def events_of(sessions: Sessions, tenant_id: int) -> list[tuple[int, str, str | None, str]]:
    async with sessions() as session:
        rows = await session.execute(
            select(
                AgentStateEvent.user_id,
                AgentStateEvent.kind,
                AgentStateEvent.reason,
                AgentStateEvent.source,
            )
            .where(AgentStateEvent.tenant_id == tenant_id)
            .order_by(AgentStateEvent.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


# ---- licence arithmetic ---------------------------------------------------------------------


async def test_logins_take_licences_until_none_is_left_then_409_says_who(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=3)
    team = await agents(client, world, 4)
    supervisor = world.supervisor.headers
    for agent in team[:3]:
        response = await log_in(client, supervisor, agent)
        assert response.status_code == 201, response.text
        assert response.json()["device_id"] == agent.device_id
    assert await in_use(client, world) == 3

    refused = await log_in(client, supervisor, team[3])
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["error_id"] == "licence-exhausted"
    assert body["details"]["licences"] == 3
    assert body["details"]["in_use"] == 3
    connected = body["details"]["connected"]
    assert sorted(c["user_id"] for c in connected) == sorted(a.user_id for a in team[:3])
    assert all(c["since"] and c["display_name"] == "Agent" for c in connected)

    again = await log_in(client, supervisor, team[0])
    assert again.status_code == 200, again.text  # already logged in: its session, no licence
    assert await in_use(client, world) == 3

    out = await client.delete(session_url(team[1]), headers=supervisor)
    assert out.status_code == 204, out.text
    assert await in_use(client, world) == 2
    now_in = await log_in(client, supervisor, team[3])
    assert now_in.status_code == 201, now_in.text
    assert await in_use(client, world) == 3


async def test_lowering_licences_from_10_to_5_with_8_connected(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=10)
    team = await agents(client, world, 10)
    supervisor = world.supervisor.headers
    for agent in team[:8]:
        assert (await log_in(client, supervisor, agent)).status_code == 201

    await set_licences(client, world, 5)
    assert await in_use(client, world) == 8  # nobody is logged out
    live = await client.get("/api/v1/agents/sessions", headers=supervisor)
    assert len(live.json()["items"]) == 8

    ninth = await log_in(client, supervisor, team[8])
    assert ninth.status_code == 409, ninth.text
    assert ninth.json()["details"] | {"connected": None} == {
        "licences": 5,
        "in_use": 8,
        "connected": None,
    }
    for agent in team[:3]:
        assert (await client.delete(session_url(agent), headers=supervisor)).status_code == 204
    assert await in_use(client, world) == 5
    still = await log_in(client, supervisor, team[8])
    assert still.status_code == 409, still.text  # 5 in use: not below 5
    assert (await client.delete(session_url(team[3]), headers=supervisor)).status_code == 204
    assert await in_use(client, world) == 4
    assert (await log_in(client, supervisor, team[8])).status_code == 201
    assert (await log_in(client, supervisor, team[9])).status_code == 409

    await set_licences(client, world, 6)  # raised: at once
    assert (await log_in(client, supervisor, team[9])).status_code == 201
    async with sessions() as session:
        changes = (
            await session.scalars(
                select(AuditEntry.changes)
                .where(AuditEntry.tenant_id == world.tenant_id, AuditEntry.action == "set-licences")
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [c["licences"] for c in changes] == [{"from": 10, "to": 5}, {"from": 5, "to": 6}]


async def test_concurrent_logins_never_pass_the_limit(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=5)
    team = await agents(client, world, 12)
    supervisor = world.supervisor.headers
    # Each agent twice at once: one live session per agent, five in all.
    responses = await asyncio.gather(*(log_in(client, supervisor, agent) for agent in team + team))
    codes = sorted(r.status_code for r in responses)
    assert set(codes) <= {200, 201, 409}, [r.text for r in responses]
    assert codes.count(201) == 5
    assert await in_use(client, world) == 5
    async with sessions() as session:
        live = await session.scalar(
            text(
                "SELECT count(DISTINCT user_id) FROM agent_sessions "
                "WHERE tenant_id = :t AND ended_at IS NULL"
            ),
            {"t": world.tenant_id},
        )
    assert live == 5


async def test_two_control_planes_share_one_limit(
    client: httpx.AsyncClient, sessions: Sessions, database_url: str, asterisk: Asterisk
) -> None:
    # Two apps, two connection pools, one database: the limit is the database's.
    world = await make_world(client, sessions, licences=4)
    team = await agents(client, world, 10)
    supervisor = world.supervisor.headers
    async for other in start_app(Endpoints(database_url=database_url, ami=asterisk.ami_config())):
        clients = [client, other.client]
        responses = await asyncio.gather(
            *(
                clients[i % 2].post(session_url(agent), headers=supervisor)
                for i, agent in enumerate(team * 2)
            )
        )
    codes = [r.status_code for r in responses]
    assert codes.count(201) == 4, codes
    assert set(codes) <= {200, 201, 409}
    assert await in_use(client, world) == 4


# ---- who may do what ------------------------------------------------------------------------


async def test_an_agent_logs_itself_in_and_out_but_nobody_else(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=5)
    me = await new_agent(client, world, token=True)
    colleague = await new_agent(client, world)
    assert (await log_in(client, me.headers, me)).status_code == 201
    assert (await log_in(client, me.headers, colleague)).status_code == 403
    assert (await client.delete(session_url(colleague), headers=me.headers)).status_code == 403
    mine = await client.get(session_url(me), headers=me.headers)
    assert mine.status_code == 200, mine.text
    assert mine.json()["source"] == "api"
    # Agents do not read the tenant's live view.
    assert (await client.get("/api/v1/agents/sessions", headers=me.headers)).status_code == 403
    assert (await client.delete(session_url(me), headers=me.headers)).status_code == 204
    assert (await client.get(session_url(me), headers=me.headers)).status_code == 404
    assert (await client.delete(session_url(me), headers=me.headers)).status_code == 404


async def test_a_tenant_never_sees_or_touches_another_tenants_agents(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=2)
    other = await make_world(client, sessions, licences=2)
    mine = await new_agent(client, world)
    theirs = await new_agent(client, other)
    assert (await log_in(client, other.supervisor.headers, theirs)).status_code == 201
    for headers in (world.supervisor.headers, world.admin.headers, world.operator_headers):
        assert (await log_in(client, headers, theirs)).status_code == 404
        assert (await client.delete(session_url(theirs), headers=headers)).status_code == 404
        paused = await client.post(
            session_url(theirs) + "/pause", headers=headers, json={"paused": True}
        )
        assert paused.status_code == 404
    # Another tenant's device is not this agent's device.
    foreign_device = await log_in(
        client, world.supervisor.headers, mine, device_id=theirs.device_id
    )
    assert foreign_device.status_code == 422, foreign_device.text
    assert fields_of(foreign_device) == {"body.device_id"}
    live = await client.get("/api/v1/agents/sessions", headers=world.supervisor.headers)
    assert live.json()["items"] == []
    # Another tenant's logins use none of this tenant's licences.
    assert (await log_in(client, world.supervisor.headers, mine)).status_code == 201
    assert await in_use(client, world) == 1


# ---- pause, the live view, events -----------------------------------------------------------


async def test_pause_resume_and_the_live_view(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=2)
    agent = await new_agent(client, world)
    supervisor = world.supervisor.headers
    assert (await log_in(client, supervisor, agent)).status_code == 201
    paused = await client.post(
        session_url(agent) + "/pause", headers=supervisor, json={"paused": True, "reason": "lunch"}
    )
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True
    assert paused.json()["pause_reason"] == "lunch"
    assert paused.json()["paused_since"] is not None

    live = await client.get("/api/v1/agents/sessions", headers=supervisor)
    assert live.status_code == 200, live.text
    (row,) = live.json()["items"]
    assert row["user_id"] == agent.user_id
    assert row["paused"] is True
    assert row["on_call"] is False
    assert row["started_at"]
    assert row["sip_username"].startswith(world.slug)

    resumed = await client.post(
        session_url(agent) + "/pause", headers=supervisor, json={"paused": False}
    )
    assert resumed.json()["paused"] is False
    assert resumed.json()["pause_reason"] is None


async def test_a_pause_reason_is_plain_text_only(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=1)
    agent = await new_agent(client, world)
    assert (await log_in(client, world.supervisor.headers, agent)).status_code == 201
    for reason in HOSTILE:
        response = await client.post(
            session_url(agent) + "/pause",
            headers=world.supervisor.headers,
            json={"paused": True, "reason": reason},
        )
        if response.status_code == 200:
            assert response.json()["pause_reason"] == reason
            assert all(c.isalnum() or c in " _.-" for c in reason), reason
        else:
            assert response.status_code == 422, (reason, response.text)
            assert fields_of(response) == {"body.reason"}


async def test_every_login_logout_pause_and_refusal_is_an_event(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=1)
    first, second = await agents(client, world, 2)
    supervisor = world.supervisor.headers
    await log_in(client, supervisor, first)
    assert (await log_in(client, supervisor, second)).status_code == 409
    await client.post(
        session_url(first) + "/pause", headers=supervisor, json={"paused": True, "reason": "break"}
    )
    await client.post(session_url(first) + "/pause", headers=supervisor, json={"paused": False})
    await client.delete(session_url(first), headers=supervisor)
    assert await events_of(sessions, world.tenant_id) == [
        (first.user_id, "login", None, "api"),
        (second.user_id, "refused", "licence-exhausted", "api"),
        (first.user_id, "pause", "break", "api"),
        (first.user_id, "unpause", None, "api"),
        (first.user_id, "logout", "forced", "api"),
    ]


# ---- sessions that end by themselves --------------------------------------------------------


async def test_a_session_past_the_maximum_length_ends_and_frees_its_licence(
    running_app: RunningApp, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=1)
    old, waiting = await agents(client, world, 2)
    assert (await log_in(client, world.supervisor.headers, old)).status_code == 201
    async with sessions() as session, session.begin():
        await session.execute(
            update(AgentSession)
            .where(AgentSession.user_id == old.user_id)
            .values(started_at=text("now() - interval '13 hours'"))
        )
    worker = running_app.runtime.agents
    assert worker is not None
    await worker.sweep()
    assert await in_use(client, world) == 0
    assert (await log_in(client, world.supervisor.headers, waiting)).status_code == 201
    assert (old.user_id, "logout", "max-length", "system") in await events_of(
        sessions, world.tenant_id
    )


async def test_the_gauges_and_the_refusal_counter(
    running_app: RunningApp, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=1)
    first, second = await agents(client, world, 2)
    await log_in(client, world.supervisor.headers, first)
    await log_in(client, world.supervisor.headers, second)
    worker = running_app.runtime.agents
    assert worker is not None
    await worker.refresh_gauges()
    metrics = (await client.get("/metrics")).text
    tenant = f'tenant="{world.tenant_id}"'
    assert f"graam_licences_total{{{tenant}}} 1.0" in metrics
    assert f"graam_licences_in_use{{{tenant}}} 1.0" in metrics
    assert f"graam_licence_refusals_total{{{tenant}}} 1.0" in metrics
