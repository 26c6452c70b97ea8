"""The live view (``/api/v1/agents/sessions`` and the console's Agents page) reads each
device's state on the node of the session's tenant, through a real agent worker and the real
Asterisk: the routes it is given only note which tenant was asked for, then hand over the
app's own connection to that tenant's node."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents.worker import AgentWorker
from graam_pbx.ami import AmiSupervisor
from graam_pbx.ami.supervisor import AmiRoutes, OneAsterisk
from graam_pbx.cluster.nodes import NodeUnavailable
from tests.conftest import RunningApp
from tests.factories import make_world
from tests.integration.test_agent_sessions import log_in, new_agent
from tests.integration.test_console_auth import console_client
from tests.integration.test_console_auth import log_in as console_log_in


class NotedRoutes:
    """The app's own routes to its nodes, noting each tenant a connection is asked for;
    ``down``: tenants whose node is down."""

    def __init__(self, routes: AmiRoutes, down: set[int] | None = None) -> None:
        self._routes = routes
        self._down = down or set()
        self.asked: list[int] = []

    async def for_tenant(self, tenant_id: int) -> AmiSupervisor:
        self.asked.append(tenant_id)
        if tenant_id in self._down:
            raise NodeUnavailable(f"tenant {tenant_id}'s node is down", node="test")
        return await self._routes.for_tenant(tenant_id)

    async def partition(
        self, tenant_ids: set[int] | None
    ) -> list[tuple[AmiSupervisor, set[int] | None]]:
        return await self._routes.partition(tenant_ids)


@pytest.fixture
async def noted(
    running_app: RunningApp, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[NotedRoutes]:
    """The app's live view served by an agent worker (never started: as in an API process)
    whose routes note the tenants asked for."""
    runtime = running_app.runtime
    routes = NotedRoutes(runtime.nodes or OneAsterisk(runtime.ami))
    worker = AgentWorker(runtime.engine, runtime.ami, runtime.bus, runtime.settings, routes=routes)
    monkeypatch.setattr(runtime, "agents", worker)
    yield routes


async def test_the_live_view_reads_devices_on_the_tenants_node(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    noted: NotedRoutes,
) -> None:
    world = await make_world(client, sessions)
    agent = await new_agent(client, world)
    assert (await log_in(client, world.supervisor.headers, agent)).status_code == 201

    live = await client.get("/api/v1/agents/sessions", headers=world.supervisor.headers)
    assert live.status_code == 200, live.text
    (row,) = live.json()["items"]
    # Read on the tenant's node: Asterisk answered for this device (it is not registered).
    assert noted.asked == [world.tenant_id]
    assert row["device_state"] is not None
    assert row["on_call"] is False

    # An operator acting in the tenant: the tenant's node too, never its own default.
    acting = {**world.operator.headers, "X-Graam-Tenant": str(world.tenant_id)}
    noted.asked.clear()
    as_operator = await client.get("/api/v1/agents/sessions", headers=acting)
    assert as_operator.status_code == 200, as_operator.text
    assert noted.asked == [world.tenant_id]
    assert as_operator.json()["items"][0]["device_state"] == row["device_state"]

    noted.asked.clear()
    async with console_client(client) as browser:
        assert (await console_log_in(browser, world, "supervisor")).status_code == 303
        page = await browser.get("/agents")
        assert page.status_code == 200, page.text[:500]
    assert noted.asked == [world.tenant_id]


async def test_a_tenant_whose_node_is_down_is_listed_without_device_states(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    running_app: RunningApp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = await make_world(client, sessions)
    runtime = running_app.runtime
    routes = NotedRoutes(runtime.nodes or OneAsterisk(runtime.ami), down={world.tenant_id})
    worker = AgentWorker(runtime.engine, runtime.ami, runtime.bus, runtime.settings, routes=routes)
    monkeypatch.setattr(runtime, "agents", worker)
    agent = await new_agent(client, world)
    assert (await log_in(client, world.supervisor.headers, agent)).status_code == 201

    live = await client.get("/api/v1/agents/sessions", headers=world.supervisor.headers)
    assert live.status_code == 200, live.text
    (row,) = live.json()["items"]
    assert row["user_id"] == agent.user_id
    assert row["device_state"] is None
    assert row["on_call"] is False
    assert routes.asked == [world.tenant_id]
    async with console_client(client) as browser:
        assert (await console_log_in(browser, world, "supervisor")).status_code == 303
        assert (await browser.get("/agents")).status_code == 200
