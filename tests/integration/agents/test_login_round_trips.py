"""What one agent login costs the database, counted: its round trips, not its time.

The login path is held to one statement and no BEGIN or COMMIT: ``agent_login()``
(migrations 0023 and 0039), which does it all in one round trip: the caller's account (the
route takes the caller from its access token's signed claims and the function checks the
account still stands: deps.allow_checked_by_statement), the tenant's lock with the agent and
its device, the check that the device is not registered with another node than the
tenant's, the login itself with its event and its state move, or the refusal with who holds
the licences (for the 409's body). That function is atomic by itself, so its route runs its
statement as its own transaction (``deps.one_statement``). The authenticated no-op
(``GET /api/v1/auth/me``) is counted beside it: one transaction of one statement (the
caller's account, which every other route reads first), three round trips, two more than
the login; the pool's checkout ping left out: graam_pbx.db pings a connection only when it
sat idle for ``IDLE_BEFORE_PING``, which a request on a warm pool never pays, and which says
nothing of the request it precedes. In an API process the login's commit is then told to the
active worker (``pg_notify``) with the others of the next 20 ms, in a statement of their own
(graam_pbx.cluster.agent_signals): a round trip shared by a storm's logins, not the login's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.login_round_trips import Tally, counting, instrumented
from graam_pbx.app import Endpoints
from graam_pbx.cluster import signals
from graam_pbx.db import plain_url
from graam_pbx.sandbox.ports import free_port
from graam_pbx.settings import ProcessRole
from tests.conftest import Asterisk, RunningApp, start_app
from tests.factories import PASSWORD, TenantWorld, make_world, unique

# The login's own statement: ``agent_login()``, the caller's account checked in it.
LOGIN_STATEMENTS = 1
NOOP_STATEMENTS = 1

# (agent, kind, whether it has an open ``available`` interval) of some agents' events.
EVENTS = text(
    "SELECT e.user_id, e.kind, EXISTS (SELECT 1 FROM agent_state_intervals i "
    "WHERE i.agent_id = e.user_id AND i.ended_at IS NULL AND i.state = 'available') "
    "FROM agent_state_events e WHERE e.tenant_id = :tenant AND e.user_id = ANY(:agents)"
)


@pytest.fixture(scope="module")
async def running_app(database_url: str, asterisk: Asterisk) -> AsyncIterator[RunningApp]:
    # Instrumented before the app's engine makes its first connection.
    with instrumented():
        async for running in start_app(
            Endpoints(database_url=database_url, ami=asterisk.ami_config())
        ):
            await running.runtime.ami.wait_connected(timeout=20)
            yield running


async def new_agent(client: httpx.AsyncClient, world: TenantWorld) -> int:
    """Another agent of the tenant, with one device."""
    made = await client.post(
        "/api/v1/users",
        headers=world.admin.headers,
        json={
            "email": f"{unique('agent')}@{world.slug}.example",
            "display_name": "Agent",
            "role": "agent",
            "password": PASSWORD,
        },
    )
    assert made.status_code == 201, made.text
    user_id: int = made.json()["id"]
    device = await client.post(
        "/api/v1/devices",
        headers=world.admin.headers,
        json={"user_id": user_id, "name": unique("desk"), "extension": str(200 + user_id % 9000)},
    )
    assert device.status_code == 201, device.text
    return user_id


async def counted_login(
    client: httpx.AsyncClient, world: TenantWorld, user_id: int, expected: int
) -> Tally:
    with counting() as tally:
        response = await client.post(
            f"/api/v1/agents/{user_id}/session", headers=world.supervisor.headers
        )
    assert response.status_code == expected, response.text
    return tally


def own_round_trips(tally: Tally) -> int:
    """A request's round trips but a checkout ping's, made only on a connection left idle."""
    return tally.round_trips - tally.pings


def assert_one_statement_login(login: Tally, noop: Tally) -> None:
    """The login's one statement, its own transaction: no BEGIN, no COMMIT; the no-op's one
    statement in a transaction of its own (BEGIN and COMMIT)."""
    assert login.statements == LOGIN_STATEMENTS, login.sent
    assert login.transactions == 0, login.sent
    assert own_round_trips(login) == LOGIN_STATEMENTS, login.sent
    assert noop.statements == NOOP_STATEMENTS, noop.sent
    assert own_round_trips(noop) == NOOP_STATEMENTS + 2, noop.sent
    assert own_round_trips(noop) - own_round_trips(login) == 2, (login.sent, noop.sent)


async def counted_noop(client: httpx.AsyncClient, world: TenantWorld) -> Tally:
    with counting() as tally:
        response = await client.get("/api/v1/auth/me", headers=world.supervisor.headers)
    assert response.status_code == 200, response.text
    return tally


async def test_a_login_is_one_statement_with_no_begin_nor_commit_two_round_trips_below_a_noop(
    running_app: RunningApp,
) -> None:
    client = running_app.client
    sessions: async_sessionmaker[AsyncSession] = running_app.app.state.sessions
    world = await make_world(client, sessions, licences=2)
    first, second, third = [await new_agent(client, world) for _ in range(3)]

    noop = await counted_noop(client, world)
    assert noop.statements == NOOP_STATEMENTS, noop.sent
    assert noop.transactions == 1, noop.sent

    login = await counted_login(client, world, first, 201)
    assert_one_statement_login(login, noop)

    # The counted login did all a login does: its session, its event, its state.
    await counted_login(client, world, second, 201)
    refused = await counted_login(client, world, third, 409)
    assert_one_statement_login(refused, noop)
    async with sessions() as session:
        events = (
            await session.execute(
                EVENTS, {"tenant": world.tenant_id, "agents": [first, second, third]}
            )
        ).all()
    assert sorted(events) == sorted(
        [(first, "login", True), (second, "login", True), (third, "refused", False)]
    )


async def test_in_an_api_process_the_login_is_told_to_the_worker_after_its_commit(
    running_app: RunningApp, database_url: str, asterisk: Asterisk
) -> None:
    sessions: async_sessionmaker[AsyncSession] = running_app.app.state.sessions
    world = await make_world(running_app.client, sessions, licences=2)
    agent = await new_agent(running_app.client, world)
    heard: asyncio.Queue[str] = asyncio.Queue()

    def note(*notification: Any) -> None:
        heard.put_nowait(notification[3])  # (connection, pid, channel, payload)

    listener = await asyncpg.connect(plain_url(database_url))
    await listener.add_listener(signals.AGENTS_CHANNEL, note)
    # The same signing key (and data directory) as the module's app: its tokens hold here.
    settings = running_app.runtime.settings.model_copy(
        update={"role": ProcessRole.API, "agi_port": free_port()}
    )
    try:
        with instrumented():
            async for api in start_app(
                Endpoints(database_url=database_url, ami=asterisk.ami_config()), settings
            ):
                await counted_noop(api.client, world)  # the connection's setup
                noop = await counted_noop(api.client, world)
                login = await counted_login(api.client, world, agent, 201)
                # Told while the process runs, not only by its stop's last gathering.
                async with asyncio.timeout(10):
                    while world.tenant_id not in (signals.decode(await heard.get()) or set()):
                        pass
    finally:
        await listener.close()
    assert_one_statement_login(login, noop)
