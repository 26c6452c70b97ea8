"""Users' forwarding rules through the real API and database: who may set whose, which
targets are accepted, the targets a rule names cannot be deleted, the rules reach the
snapshot the dialplan is rendered from."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.asterisk.snapshot import Dest, ForwardingConf, load_snapshot
from tests.factories import TenantWorld, make_world
from tests.integration.test_external_numbers_api import make_external

Sessions = async_sessionmaker[AsyncSession]


def rules_url(user_id: int) -> str:
    return f"/api/v1/users/{user_id}/forwarding"


async def device(client: httpx.AsyncClient, world: TenantWorld, user_id: int, ext: str) -> int:
    made = await client.post(
        "/api/v1/devices",
        headers=world.admin.headers,
        json={"user_id": user_id, "name": f"desk{ext}", "extension": ext},
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


async def box(
    client: httpx.AsyncClient, world: TenantWorld, number: str = "800", name: str = "Ana's box"
) -> int:
    made = await client.post(
        "/api/v1/voicemail-boxes",
        headers=world.admin.headers,
        json={"number": number, "name": name, "pin": "4711"},
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def errors_of(response: httpx.Response) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = response.json()["details"]["errors"]
    return errors


async def test_an_agent_sets_their_own_rules_which_reach_the_dialplans_snapshot(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    agent = world.agent.user_id
    other = await device(client, world, world.supervisor.user_id, "202")
    voicemail = await box(client, world)
    mobile = await make_external(client, world)
    url = rules_url(agent)
    initial = await client.get(url, headers=world.agent.headers)
    assert initial.status_code == 200, initial.text
    assert initial.json() == {
        "user_id": agent,
        "version": 0,
        "do_not_disturb": False,
        "do_not_disturb_to": None,
        "unconditional": None,
        "busy": None,
        "no_answer": None,
        "no_answer_seconds": 20,
        "unreachable": None,
    }
    rules = {
        "do_not_disturb": True,
        "do_not_disturb_to": {"type": "voicemail", "id": voicemail},
        "busy": {"type": "extension", "id": other},
        "no_answer": {"type": "external", "id": mobile["id"]},
        "no_answer_seconds": 12,
        "unreachable": {"type": "voicemail", "id": voicemail},
    }
    saved = await client.put(url, headers=world.agent.headers, json=rules)
    assert saved.status_code == 200, saved.text
    assert saved.json() == {**initial.json(), **rules, "version": 1}
    assert saved.headers["ETag"] == f'"{agent}.1"'
    stale = await client.put(
        url, headers={**world.agent.headers, "If-Match": f'"{agent}.0"'}, json={}
    )
    assert stale.status_code == 412, stale.text
    # An admin reads and changes anyone's; the change is a new version.
    read = await client.get(url, headers=world.admin.headers)
    assert read.json() == saved.json()
    cleared = await client.put(
        url, headers={**world.admin.headers, "If-Match": f'"{agent}.1"'}, json={"busy": None}
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["version"] == 2 and cleared.json()["do_not_disturb"] is False
    await client.put(url, headers=world.admin.headers, json=rules)
    async with sessions() as session, session.begin():
        snapshot = await load_snapshot(await session.connection(), [world.tenant_id])
    (tenant,) = snapshot.tenants
    assert tenant.forwarding == {
        agent: ForwardingConf(
            True,
            Dest("voicemail", voicemail),
            None,
            Dest("extension", other),
            Dest("external", mobile["id"]),
            12,
            Dest("voicemail", voicemail),
        )
    }


async def test_only_admins_set_another_users_rules(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    for actor in (world.agent, world.supervisor):
        refused = await client.put(
            rules_url(world.admin.user_id), headers=actor.headers, json={"do_not_disturb": True}
        )
        assert refused.status_code == 403, refused.text
        assert (
            await client.get(rules_url(world.admin.user_id), headers=actor.headers)
        ).status_code == 403
    own = await client.put(
        rules_url(world.supervisor.user_id),
        headers=world.supervisor.headers,
        json={"do_not_disturb": True},
    )
    assert own.status_code == 200, own.text
    # Another tenant's user does not exist for this tenant's admin.
    foreign = await client.get(rules_url(other.agent.user_id), headers=world.admin.headers)
    assert foreign.status_code == 404, foreign.text


async def test_bad_targets_are_refused_naming_the_rule_and_nothing_changes(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    voicemail = await box(client, world)
    foreign_box = await box(client, other)
    url = rules_url(world.agent.user_id)
    saved = await client.put(
        url, headers=world.agent.headers, json={"busy": {"type": "voicemail", "id": voicemail}}
    )
    assert saved.status_code == 200, saved.text
    cases = [
        ({"unconditional": {"type": "queue", "id": 1}}, "body.unconditional"),
        ({"busy": {"type": "voicemail", "id": foreign_box}}, "body.busy"),
        ({"do_not_disturb_to": {"type": "external", "id": 1}}, "body.do_not_disturb_to"),
        ({"unreachable": {"type": "agent", "id": world.agent.user_id}}, "body.unreachable"),
        ({"no_answer_seconds": 2}, "body.no_answer_seconds"),
        ({"no_answer_seconds": 121}, "body.no_answer_seconds"),
        ({"busy": {"type": "hangup"}}, "body.busy"),
    ]
    for body, field in cases:
        refused = await client.put(url, headers=world.agent.headers, json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert field in {error["field"] for error in errors_of(refused)}, (body, refused.text)
    assert (await client.get(url, headers=world.agent.headers)).json() == saved.json()


async def test_a_rules_target_cannot_be_deleted_and_the_users_deletion_drops_the_rules(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    voicemail = await box(client, world)
    url = rules_url(world.agent.user_id)
    saved = await client.put(
        url,
        headers=world.agent.headers,
        json={"unconditional": {"type": "voicemail", "id": voicemail}},
    )
    assert saved.status_code == 200, saved.text
    refused = await client.delete(
        f"/api/v1/voicemail-boxes/{voicemail}", headers=world.admin.headers
    )
    assert refused.status_code == 409, refused.text
    assert f"forwarding of user {world.agent.user_id}" in refused.text
    cleared = await client.put(url, headers=world.agent.headers, json={})
    assert cleared.status_code == 200, cleared.text
    deleted = await client.delete(
        f"/api/v1/voicemail-boxes/{voicemail}", headers=world.admin.headers
    )
    assert deleted.status_code == 204, deleted.text
