"""A login that is its transaction's first statement (as the phone's ``*45`` is: no caller's
account read before it) still runs in that transaction: the tenant's lock is held until the
commit, and a refusal names who holds the licences as the count saw them."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents import sessions as agent_sessions
from graam_pbx.auth.principal import Principal, Role, Scope
from graam_pbx.db import plain_url
from tests.factories import make_world
from tests.integration.test_agent_sessions import new_agent


async def test_a_first_statement_login_holds_the_tenants_lock_until_its_commit(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    world = await make_world(client, sessions, licences=1)
    first, second = await new_agent(client, world), await new_agent(client, world)
    scope = Scope(
        world.tenant_id,
        Principal(world.supervisor.user_id, Role.SUPERVISOR, world.tenant_id, "supervisor"),
    )
    other = await asyncpg.connect(plain_url(database_url))
    try:
        async with sessions() as session, session.begin():
            made = await agent_sessions.login(session, scope, first.user_id)
            assert made.created
            # Another transaction cannot take the lock while this one is open.
            with pytest.raises(asyncpg.LockNotAvailableError):
                async with other.transaction():
                    await other.execute(
                        "SELECT 1 FROM tenants WHERE id = $1 FOR NO KEY UPDATE NOWAIT",
                        world.tenant_id,
                    )
        async with other.transaction():
            await other.execute(
                "SELECT 1 FROM tenants WHERE id = $1 FOR NO KEY UPDATE NOWAIT", world.tenant_id
            )

        async with sessions() as session, session.begin():
            with pytest.raises(agent_sessions.LicenceExhausted) as refused:
                await agent_sessions.login(session, scope, second.user_id)
    finally:
        await other.close()
    details = refused.value.details
    assert details["licences"] == 1
    assert details["in_use"] == 1
    (holder,) = details["connected"]
    assert holder["user_id"] == first.user_id
    assert holder["display_name"] == "Agent"
    assert holder["since"] == made.session.started_at.isoformat()
