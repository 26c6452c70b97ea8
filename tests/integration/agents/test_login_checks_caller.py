"""A login checks its caller in its own statement (migration 0039).

The login's route does not read the caller's account before ``agent_login()``: a tenant
user's access token gives the scope from its signed claims, and the function checks the
account first (it exists, is not disabled, its ``token_epoch`` is still the token's), in the
login's one round trip. A token whose account is disabled, gone or revoked gets the same 401
as on every other route and nothing is written: no session, no event, not even a refusal's.
An API key and an operator are read as on every route.
"""

from __future__ import annotations

import httpx
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.auth.principal import ACCOUNT_GONE, TOKEN_REVOKED
from tests.factories import TenantWorld, make_world, unique
from tests.integration.test_agent_sessions import log_in, new_agent, session_url

Sessions = async_sessionmaker[AsyncSession]

WRITTEN = text(
    "SELECT (SELECT count(*) FROM agent_sessions WHERE tenant_id = :t), "
    "(SELECT count(*) FROM agent_state_events WHERE tenant_id = :t), "
    "(SELECT count(*) FROM agent_state_intervals WHERE tenant_id = :t)"
)


async def written(sessions: Sessions, world: TenantWorld) -> tuple[int, int, int]:
    async with sessions() as session:
        row = (await session.execute(WRITTEN, {"t": world.tenant_id})).one()
    return (row[0], row[1], row[2])


# Disabled without its epoch moving (the API moves both): the account's own check.
DISABLE = text("UPDATE users SET disabled = true WHERE id = :u")
# A role taken away, its epoch moved as the API moves it.
DEMOTE = text("UPDATE users SET role = 'agent', token_epoch = token_epoch + 1 WHERE id = :u")


async def change_account(sessions: Sessions, user_id: int, change: TextClause) -> None:
    async with sessions() as session, session.begin():
        await session.execute(change, {"u": user_id})


async def test_a_disabled_callers_token_is_refused_by_the_login_and_nothing_written(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=1)
    agent = await new_agent(client, world)
    before = await written(sessions, world)
    await change_account(sessions, world.supervisor.user_id, DISABLE)
    refused = await log_in(client, world.supervisor.headers, agent)
    assert refused.status_code == 401, refused.text
    assert refused.json()["message"] == ACCOUNT_GONE
    assert await written(sessions, world) == before
    # The same token on a route that reads the account first says the same.
    me = await client.get("/api/v1/auth/me", headers=world.supervisor.headers)
    assert (me.status_code, me.json()["message"]) == (401, ACCOUNT_GONE)


async def test_a_revoked_token_is_refused_by_the_login_and_nothing_written(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=1)
    agent = await new_agent(client, world, token=True)
    taken = await new_agent(client, world)
    # The only licence held: a valid caller would get a refusal, and its event written.
    assert (await log_in(client, world.supervisor.headers, taken)).status_code == 201
    before = await written(sessions, world)
    # A new password: the agent's tokens are revoked, its old one refused.
    reset = await client.patch(
        f"/api/v1/users/{agent.user_id}",
        headers=world.admin.headers,
        json={"password": f"{unique('Pw')}-Renewed-42"},
    )
    assert reset.status_code == 200, reset.text
    own = {"Authorization": f"Bearer {agent.token}"}
    refused = await client.post(session_url(agent), headers=own)
    assert refused.status_code == 401, refused.text
    assert refused.json()["message"] == TOKEN_REVOKED
    assert await written(sessions, world) == before
    # A role taken away moves the epoch too: the claims' role is never trusted past it.
    await change_account(sessions, world.supervisor.user_id, DEMOTE)
    demoted = await log_in(client, world.supervisor.headers, agent)
    assert (demoted.status_code, demoted.json()["message"]) == (401, TOKEN_REVOKED)
    assert await written(sessions, world) == before


async def test_an_agent_a_supervisor_an_api_key_and_an_operator_log_in(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=4)
    itself, by_supervisor, by_key, by_operator = [
        await new_agent(client, world, token=True) for _ in range(4)
    ]
    own = {"Authorization": f"Bearer {itself.token}"}
    made = await client.post(session_url(itself), headers=own)
    assert made.status_code == 201, made.text
    # An agent acts for itself only: its token's role says so before any statement.
    other = await client.post(session_url(by_supervisor), headers=own)
    assert other.status_code == 403, other.text
    supervised = await log_in(client, world.supervisor.headers, by_supervisor)
    assert supervised.status_code == 201, supervised.text
    key = await client.post(
        "/api/v1/auth/api-keys",
        headers=world.admin.headers,
        json={"name": unique("k"), "read_only": False, "areas": ["agent sessions"]},
    )
    assert key.status_code == 201, key.text
    with_key = await client.post(
        session_url(by_key), headers={"Authorization": f"Bearer {key.json()['key']}"}
    )
    assert with_key.status_code == 201, with_key.text
    operated = await client.post(
        session_url(by_operator),
        headers={**world.operator.headers, "X-Graam-Tenant": str(world.tenant_id)},
    )
    assert operated.status_code == 201, operated.text
    for response, actor in (
        (made, itself.user_id),
        (supervised, world.supervisor.user_id),
        (with_key, world.admin.user_id),
        (operated, world.operator.user_id),
    ):
        async with sessions() as session:
            started_by = await session.scalar(
                text("SELECT started_by FROM agent_sessions WHERE id = :s"),
                {"s": response.json()["id"]},
            )
        assert started_by == actor
    # A revoked key is refused before the login, as on every route.
    revoked = await client.delete(
        f"/api/v1/auth/api-keys/{key.json()['id']}", headers=world.admin.headers
    )
    assert revoked.status_code == 204
    again = await client.post(
        session_url(by_key), headers={"Authorization": f"Bearer {key.json()['key']}"}
    )
    assert again.status_code == 401, again.text
