"""Queues and their members through the real API and database."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import (
    HOSTILE,
    NAME_ALPHABET,
    PASSWORD,
    Actor,
    TenantWorld,
    fields_of,
    login,
    make_world,
    unique,
)
from tests.integration.test_prompts_api import create_prompt

Sessions = async_sessionmaker[AsyncSession]


async def create(
    client: httpx.AsyncClient, world: TenantWorld, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(path, headers=world.admin.headers, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def create_queue(
    client: httpx.AsyncClient, world: TenantWorld, **body: Any
) -> dict[str, Any]:
    return await create(client, world, "/api/v1/queues", {"name": unique("q"), **body})


async def add_agent(client: httpx.AsyncClient, world: TenantWorld) -> Actor:
    email = f"{unique('agent')}@{world.slug}.example"
    made = await client.post(
        "/api/v1/users",
        headers=world.admin.headers,
        json={"email": email, "display_name": "Agent", "role": "agent", "password": PASSWORD},
    )
    assert made.status_code == 201, made.text
    return Actor(made.json()["id"], email, "agent", await login(client, email, world.slug))


# ---- queues ---------------------------------------------------------------------------------


async def test_create_get_list_with_defaults(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    response = await client.post(
        "/api/v1/queues", headers=world.admin.headers, json={"name": "support"}
    )
    assert response.status_code == 201, response.text
    queue = response.json()
    assert response.headers["ETag"] == f'"{queue["id"]}.1"'
    assert {k: v for k, v in queue.items() if k not in ("id", "created_at", "updated_at")} == {
        "name": "support",
        "strategy": "ringall",
        "ring_timeout": 15,
        "retry": 5,
        "wrapup_time": 0,
        "max_wait": None,
        "fallback": None,
        "music_on_hold": "default",
        "announce_position": False,
        "announce_holdtime": False,
        "announce_frequency": 0,
        "weight": 0,
        "service_level_seconds": 20,
        "short_abandon_seconds": 5,
        "join_empty": "yes",
        "leave_when_empty": "no",
        "wallboard_waiting_warn": 3,
        "wallboard_waiting_alarm": 6,
        "wallboard_wait_warn_seconds": 30,
        "wallboard_wait_alarm_seconds": 90,
        "version": 1,
    }
    one = await client.get(f"/api/v1/queues/{queue['id']}", headers=world.admin.headers)
    assert one.json() == queue
    assert one.headers["ETag"] == response.headers["ETag"]
    listed = await client.get("/api/v1/queues", headers=world.admin.headers)
    assert [q["id"] for q in listed.json()["items"]] == [queue["id"]]


async def test_every_setting_and_a_fallback(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    box = await create(
        client, world, "/api/v1/voicemail-boxes", {"number": "800", "name": "Box", "pin": "1234"}
    )
    prompt = await create_prompt(client, world)
    await create(
        client, world, "/api/v1/moh-classes", {"name": "jazz_2", "prompt_ids": [prompt["id"]]}
    )
    body = {
        "name": "sales",
        "strategy": "wrandom",
        "ring_timeout": 300,
        "retry": 0,
        "wrapup_time": 3600,
        "max_wait": 86400,
        "fallback": {"type": "voicemail", "id": box["id"]},
        "music_on_hold": "jazz_2",
        "announce_position": True,
        "announce_holdtime": True,
        "announce_frequency": 3600,
        "weight": 100,
        "join_empty": "strict",
        "leave_when_empty": "loose",
    }
    queue = await create(client, world, "/api/v1/queues", body)
    assert {k: queue[k] for k in body} == body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"strategy": "roundrobin"}, "body.strategy"),
        ({"ring_timeout": 0}, "body.ring_timeout"),
        ({"ring_timeout": 301}, "body.ring_timeout"),
        ({"retry": -1}, "body.retry"),
        ({"retry": 301}, "body.retry"),
        ({"wrapup_time": 3601}, "body.wrapup_time"),
        ({"max_wait": 0}, "body.max_wait"),
        ({"max_wait": 86401}, "body.max_wait"),
        ({"announce_frequency": -1}, "body.announce_frequency"),
        ({"announce_frequency": 3601}, "body.announce_frequency"),
        ({"weight": 101}, "body.weight"),
        ({"announce_position": "sometimes"}, "body.announce_position"),
        ({"fallback": {"type": "hangup", "id": 3}}, "body.fallback"),
        ({"fallback": {"type": "queue"}}, "body.fallback"),
        ({"fallback": {"type": "queue", "id": 10**9}}, "body.fallback"),
        ({"fallback": {"type": "queue", "id": 2**64}}, "body.fallback"),
        ({"fallback": {"type": "ivr", "id": 0}}, "body.fallback.id"),
        ({"fallback": {"type": "teleport", "id": 1}}, "body.fallback.type"),
        ({"fallback": {"type": "voicemail", "id": 1, "extra": 1}}, "body.fallback.extra"),
        ({"members": []}, "body.members"),
        ({"join_empty": "no"}, "body.join_empty"),
        ({"join_empty": None}, "body.join_empty"),
        ({"leave_when_empty": "yes"}, "body.leave_when_empty"),
        ({"wallboard_waiting_warn": 0}, "body.wallboard_waiting_warn"),
        ({"wallboard_waiting_alarm": 10001}, "body.wallboard_waiting_alarm"),
        ({"wallboard_wait_alarm_seconds": 86401}, "body.wallboard_wait_alarm_seconds"),
        # A warning after its alarm (the other at its default: 6 callers, 90 seconds).
        ({"wallboard_waiting_warn": 7}, "body.wallboard_waiting_warn"),
        ({"wallboard_wait_warn_seconds": 91}, "body.wallboard_wait_warn_seconds"),
    ],
)
async def test_invalid_fields_are_named(
    client: httpx.AsyncClient, sessions: Sessions, body: dict[str, Any], field: str
) -> None:
    world = await make_world(client, sessions)
    response = await client.post(
        "/api/v1/queues", headers=world.admin.headers, json={"name": "q", **body}
    )
    assert response.status_code == 422, response.text
    assert fields_of(response) == {field}


async def test_fallback_must_be_the_tenants_own(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    theirs = await create_queue(client, other)
    for fallback in (
        {"type": "queue", "id": theirs["id"]},
        {"type": "agent", "id": other.agent.user_id},
        {"type": "agent", "id": world.supervisor.user_id},
    ):
        response = await client.post(
            "/api/v1/queues",
            headers=world.admin.headers,
            json={"name": "q", "fallback": fallback},
        )
        assert response.status_code == 422, fallback
        assert fields_of(response) == {"body.fallback"}
    mine = await create_queue(client, world, fallback={"type": "agent", "id": world.agent.user_id})
    assert mine["fallback"] == {"type": "agent", "id": world.agent.user_id}


async def test_name_is_unique_per_tenant(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    await create_queue(client, world, name="billing")
    twin = await client.post(
        "/api/v1/queues", headers=world.admin.headers, json={"name": "billing"}
    )
    assert twin.status_code == 409
    assert twin.json()["details"]["field"] == "name"
    await create_queue(client, other, name="billing")
    renamed = await create_queue(client, world, name="billing-2")
    clash = await client.patch(
        f"/api/v1/queues/{renamed['id']}", headers=world.admin.headers, json={"name": "billing"}
    )
    assert clash.status_code == 409


async def test_update_with_etags_nulls_and_no_fallback_to_itself(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    queue = await create_queue(client, world, max_wait=60)
    other = await create_queue(client, world)
    url = f"/api/v1/queues/{queue['id']}"
    etag = (await client.get(url, headers=world.admin.headers)).headers["ETag"]

    changed = await client.patch(
        url,
        headers={**world.admin.headers, "If-Match": etag},
        json={"strategy": "leastrecent", "fallback": {"type": "queue", "id": other["id"]}},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["strategy"] == "leastrecent"
    assert changed.json()["fallback"] == {"type": "queue", "id": other["id"]}
    assert changed.json()["max_wait"] == 60
    assert changed.headers["ETag"] == f'"{queue["id"]}.2"'

    stale = await client.patch(
        url, headers={**world.admin.headers, "If-Match": etag}, json={"weight": 3}
    )
    assert stale.status_code == 412
    assert (await client.get(url, headers=world.admin.headers)).json()["weight"] == 0

    cleared = await client.patch(
        url, headers=world.admin.headers, json={"max_wait": None, "fallback": None}
    )
    assert cleared.json()["max_wait"] is None
    assert cleared.json()["fallback"] is None

    for body, field in [
        ({"fallback": {"type": "queue", "id": queue["id"]}}, "body.fallback"),
        ({"name": None}, "body.name"),
        ({"strategy": None}, "body.strategy"),
        ({"ring_timeout": None}, "body.ring_timeout"),
        ({"weight": 1000}, "body.weight"),
        ({"id": 5}, "body.id"),
        ({"wallboard_waiting_alarm": 2}, "body.wallboard_waiting_warn"),
        ({"wallboard_wait_alarm_seconds": 29}, "body.wallboard_wait_warn_seconds"),
        ({"wallboard_waiting_warn": None}, "body.wallboard_waiting_warn"),
    ]:
        response = await client.patch(url, headers=world.admin.headers, json=body)
        assert response.status_code == 422, (body, response.text)
        assert fields_of(response) == {field}

    # Both thresholds moved together: a warning no later than its alarm.
    thresholds = {
        "wallboard_waiting_warn": 1,
        "wallboard_waiting_alarm": 2,
        "wallboard_wait_warn_seconds": 10,
        "wallboard_wait_alarm_seconds": 10,
    }
    moved = await client.patch(url, headers=world.admin.headers, json=thresholds)
    assert moved.status_code == 200, moved.text
    assert {k: moved.json()[k] for k in thresholds} == thresholds


async def test_delete_refused_while_a_destination(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    queue = await create_queue(client, world)
    overflow = await create_queue(client, world, fallback={"type": "queue", "id": queue["id"]})
    menu = await create(
        client,
        world,
        "/api/v1/ivrs",
        {"name": "main", "options": {"1": {"type": "queue", "id": queue["id"]}}},
    )
    url = f"/api/v1/queues/{queue['id']}"
    refused = await client.delete(url, headers=world.admin.headers)
    assert refused.status_code == 409
    used_by = refused.json()["details"]["used_by"]
    assert f"queue {overflow['id']}" in used_by
    assert any(label.startswith("IVR option") for label in used_by)
    assert f"queue {overflow['id']}" in refused.json()["message"]

    await client.patch(
        f"/api/v1/queues/{overflow['id']}", headers=world.admin.headers, json={"fallback": None}
    )
    await client.patch(
        f"/api/v1/ivrs/{menu['id']}", headers=world.admin.headers, json={"options": {}}
    )
    await create(client, world, f"{url}/members", {"user_id": world.agent.user_id})
    assert (await client.delete(url, headers=world.admin.headers)).status_code == 204
    assert (await client.get(url, headers=world.admin.headers)).status_code == 404
    assert (await client.get(f"{url}/members", headers=world.admin.headers)).status_code == 404


# ---- members --------------------------------------------------------------------------------


async def test_members_add_list_update_remove(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    second = await add_agent(client, world)
    queue = await create_queue(client, world)
    url = f"/api/v1/queues/{queue['id']}/members"

    first = await create(client, world, url, {"user_id": world.agent.user_id})
    assert first == {
        "id": first["id"],
        "queue_id": queue["id"],
        "user_id": world.agent.user_id,
        "penalty": 0,
    }
    other = await create(client, world, url, {"user_id": second.user_id, "penalty": 100})
    listed = await client.get(url, headers=world.supervisor.headers)
    assert [m["id"] for m in listed.json()["items"]] == [first["id"], other["id"]]

    twice = await client.post(
        url, headers=world.admin.headers, json={"user_id": world.agent.user_id}
    )
    assert twice.status_code == 409
    assert twice.json()["details"]["field"] == "user_id"

    changed = await client.patch(
        f"{url}/{first['id']}", headers=world.admin.headers, json={"penalty": 7}
    )
    assert changed.status_code == 200
    assert changed.json()["penalty"] == 7
    for body, field in [({"penalty": 101}, "body.penalty"), ({"penalty": -1}, "body.penalty")]:
        bad = await client.patch(f"{url}/{first['id']}", headers=world.admin.headers, json=body)
        assert bad.status_code == 422
        assert fields_of(bad) == {field}

    assert (
        await client.delete(f"{url}/{first['id']}", headers=world.admin.headers)
    ).status_code == 204
    assert (
        await client.delete(f"{url}/{first['id']}", headers=world.admin.headers)
    ).status_code == 404
    listed = await client.get(url, headers=world.admin.headers)
    assert [m["id"] for m in listed.json()["items"]] == [other["id"]]


async def test_members_must_be_the_tenants_agents(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    queue = await create_queue(client, world)
    url = f"/api/v1/queues/{queue['id']}/members"
    for body, field in [
        ({"user_id": world.supervisor.user_id}, "body.user_id"),
        ({"user_id": world.admin.user_id}, "body.user_id"),
        ({"user_id": other.agent.user_id}, "body.user_id"),
        ({"user_id": 10**12}, "body.user_id"),
        ({"user_id": 2**64}, "body.user_id"),
        ({"user_id": world.agent.user_id, "penalty": 101}, "body.penalty"),
        ({"user_id": world.agent.user_id, "penalty": -1}, "body.penalty"),
        ({"user_id": "ana"}, "body.user_id"),
        ({"penalty": 1}, "body.user_id"),
    ]:
        response = await client.post(url, headers=world.admin.headers, json=body)
        assert response.status_code == 422, (body, response.text)
        assert fields_of(response) == {field}


async def test_a_member_belongs_to_its_queue(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    queue = await create_queue(client, world)
    elsewhere = await create_queue(client, world)
    member = await create(
        client, world, f"/api/v1/queues/{queue['id']}/members", {"user_id": world.agent.user_id}
    )
    wrong = f"/api/v1/queues/{elsewhere['id']}/members/{member['id']}"
    assert (
        await client.patch(wrong, headers=world.admin.headers, json={"penalty": 1})
    ).status_code == 404
    assert (await client.delete(wrong, headers=world.admin.headers)).status_code == 404


# ---- roles and tenants ----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "supervisor", "operator"])
async def test_admins_supervisors_and_operators_manage_queues(
    client: httpx.AsyncClient, sessions: Sessions, role: str
) -> None:
    world = await make_world(client, sessions)
    headers = world.headers(role)
    made = await client.post("/api/v1/queues", headers=headers, json={"name": "by-" + role})
    assert made.status_code == 201, made.text
    url = f"/api/v1/queues/{made.json()['id']}"
    assert (await client.get("/api/v1/queues", headers=headers)).status_code == 200
    assert (await client.get(url, headers=headers)).status_code == 200
    patched = await client.patch(url, headers=headers, json={"weight": 9})
    assert patched.status_code == 200
    member = await client.post(
        f"{url}/members", headers=headers, json={"user_id": world.agent.user_id}
    )
    assert member.status_code == 201
    member_url = f"{url}/members/{member.json()['id']}"
    assert (await client.get(f"{url}/members", headers=headers)).status_code == 200
    assert (await client.patch(member_url, headers=headers, json={"penalty": 2})).status_code == 200
    assert (await client.delete(member_url, headers=headers)).status_code == 204
    assert (await client.delete(url, headers=headers)).status_code == 204


async def test_agents_may_not_touch_queues(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    queue = await create_queue(client, world)
    member = await create(
        client, world, f"/api/v1/queues/{queue['id']}/members", {"user_id": world.agent.user_id}
    )
    url = f"/api/v1/queues/{queue['id']}"
    member_url = f"{url}/members/{member['id']}"
    for method, path, body in [
        ("POST", "/api/v1/queues", {"name": "mine"}),
        ("GET", "/api/v1/queues", None),
        ("GET", url, None),
        ("PATCH", url, {"weight": 1}),
        ("DELETE", url, None),
        ("GET", f"{url}/members", None),
        ("POST", f"{url}/members", {"user_id": world.agent.user_id}),
        ("PATCH", member_url, {"penalty": 3}),
        ("DELETE", member_url, None),
    ]:
        response = await client.request(method, path, headers=world.agent.headers, json=body)
        assert response.status_code == 403, (method, path)
        assert response.json()["error_id"] == "forbidden"
    assert (await client.get("/api/v1/queues")).status_code == 401


async def test_other_tenants_queues_do_not_exist(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    queue = await create_queue(client, world)
    member = await create(
        client, world, f"/api/v1/queues/{queue['id']}/members", {"user_id": world.agent.user_id}
    )
    url = f"/api/v1/queues/{queue['id']}"
    member_url = f"{url}/members/{member['id']}"
    for headers in (other.admin.headers, other.supervisor.headers, other.operator_headers):
        listed = await client.get("/api/v1/queues", headers=headers)
        assert queue["id"] not in {q["id"] for q in listed.json()["items"]}
        for method, path, body in [
            ("GET", url, None),
            ("PATCH", url, {"weight": 1}),
            ("GET", f"{url}/members", None),
            ("POST", f"{url}/members", {"user_id": other.agent.user_id}),
            ("PATCH", member_url, {"penalty": 3}),
            ("DELETE", member_url, None),
            ("DELETE", url, None),
        ]:
            response = await client.request(method, path, headers=headers, json=body)
            assert response.status_code == 404, (method, path)
    members = await client.get(f"{url}/members", headers=world.admin.headers)
    assert [m["penalty"] for m in members.json()["items"]] == [0]
    assert (await client.get(url, headers=world.admin.headers)).json()["weight"] == 0


async def test_out_of_range_ids_are_refused_not_crashing(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    for method, path, field in [
        ("GET", f"/api/v1/queues/{2**64}", "path.queue_id"),
        ("DELETE", f"/api/v1/queues/{2**63}", "path.queue_id"),
        ("GET", f"/api/v1/queues/{2**64}/members", "path.queue_id"),
        ("DELETE", f"/api/v1/queues/1/members/{2**64}", "path.member_id"),
    ]:
        response = await client.request(method, path, headers=world.admin.headers)
        assert response.status_code == 422, path
        assert fields_of(response) == {field}


# ---- hostile input --------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def hostile_world(client: httpx.AsyncClient, sessions: Sessions) -> TenantWorld:
    return await make_world(client, sessions)


@pytest.mark.parametrize("text", HOSTILE, ids=lambda text: repr(text)[:24])
async def test_hostile_strings_are_refused_in_every_string_field(
    client: httpx.AsyncClient, hostile_world: TenantWorld, text: str
) -> None:
    for body, named in [
        ({"name": text}, "body.name"),
        ({"name": "q", "strategy": text}, "body.strategy"),
        ({"name": "q", "music_on_hold": text}, "body.music_on_hold"),
        ({"name": "q", "fallback": {"type": text, "id": 1}}, "body.fallback.type"),
    ]:
        response = await client.post(
            "/api/v1/queues", headers=hostile_world.admin.headers, json=body
        )
        # A well-formed music_on_hold names no class of this tenant: refused all the same.
        if named == "body.name" and NAME_ALPHABET.fullmatch(text):
            # "00331" is a fine name: taken, then removed so the name "q" is free again.
            assert response.status_code == 201, (body, response.text)
            queue_url = f"/api/v1/queues/{response.json()['id']}"
            deleted = await client.delete(queue_url, headers=hostile_world.admin.headers)
            assert deleted.status_code == 204
            continue
        assert response.status_code == 422, (body, response.text)
        assert fields_of(response) == {named}
