"""Agents' SIP devices through the real API and database: passwords, uniqueness, roles."""

from __future__ import annotations

import hashlib
import json
import string
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents.models import AgentDevice
from graam_pbx.agents.service import SIP_REALM
from graam_pbx.audit.models import AuditEntry
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

Sessions = async_sessionmaker[AsyncSession]


def device_body(world: TenantWorld, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_id": world.agent.user_id,
        "name": unique("desk"),
        "extension": str(200 + len(world.extra)),
        "codecs": ["g722", "ulaw"],
        "transport": "udp",
        "max_contacts": 2,
    }
    body.update(overrides)
    return body


async def create_device(
    client: httpx.AsyncClient, world: TenantWorld, **overrides: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/devices", headers=world.admin.headers, json=device_body(world, **overrides)
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def add_user(client: httpx.AsyncClient, world: TenantWorld, role: str) -> Actor:
    """Another logged-in user of the world's tenant."""
    email = f"{unique(role)}@{world.slug}.example"
    made = await client.post(
        "/api/v1/users",
        headers=world.admin.headers,
        json={"email": email, "display_name": role.title(), "role": role, "password": PASSWORD},
    )
    assert made.status_code == 201, made.text
    actor = Actor(made.json()["id"], email, role, await login(client, email, world.slug))
    world.extra[email] = actor
    return actor


async def tenant_with_agent(
    client: httpx.AsyncClient, operator: Actor, slug: str
) -> tuple[dict[str, str], int]:
    """A tenant with a chosen slug and one agent: the operator's headers in it, the agent's id."""
    made = await client.post(
        "/api/v1/tenants",
        headers=operator.headers,
        json={"slug": slug, "name": "Neighbour", "country": "FR", "timezone": "Europe/Paris"},
    )
    assert made.status_code == 201, made.text
    headers = {**operator.headers, "X-Graam-Tenant": str(made.json()["id"])}
    agent = await client.post(
        "/api/v1/users",
        headers=headers,
        json={
            "email": f"agent@{slug}.example",
            "display_name": "Agent",
            "role": "agent",
            "password": PASSWORD,
        },
    )
    assert agent.status_code == 201, agent.text
    return headers, int(agent.json()["id"])


def ha1(sip_username: str, password: str) -> str:
    return hashlib.md5(f"{sip_username}:graam:{password}".encode()).hexdigest()  # noqa: S324


async def stored_ha1(sessions: Sessions, device_id: int) -> str:
    async with sessions() as session:
        value = await session.scalar(
            select(AgentDevice.password_ha1).where(AgentDevice.id == device_id)
        )
    assert value is not None
    return value


# ---- creation and passwords -----------------------------------------------------------------


async def test_create_returns_the_password_once_and_keeps_only_its_ha1(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    name = unique("desk")
    response = await client.post(
        "/api/v1/devices", headers=world.admin.headers, json=device_body(world, name=name)
    )
    assert response.status_code == 201, response.text
    assert response.headers["ETag"] == f'"{response.json()["id"]}.1"'
    assert response.headers["Cache-Control"] == "no-store"
    device = response.json()
    password = device["password"]
    assert len(password) >= 20
    assert set(password) <= set(string.ascii_letters + string.digits)
    assert device["sip_username"] == f"{world.slug}-{name}"
    assert device["codecs"] == ["g722", "ulaw"]
    assert "password_ha1" not in device
    assert SIP_REALM == "graam"
    digest = await stored_ha1(sessions, device["id"])
    assert digest == ha1(device["sip_username"], password)
    assert digest != password

    # Nothing read back later shows the password or its digest.
    one = await client.get(f"/api/v1/devices/{device['id']}", headers=world.admin.headers)
    listed = await client.get("/api/v1/devices", headers=world.admin.headers)
    audit = await client.get(
        "/api/v1/audit", headers=world.admin.headers, params={"object_type": "agent_device"}
    )
    for read in (one, listed, audit):
        assert read.status_code == 200
        assert password not in read.text
        assert digest not in read.text
        assert "password_ha1" not in read.text
    assert "password" not in one.json()
    assert one.headers["ETag"] == response.headers["ETag"]
    async with sessions() as session:
        changes = (
            await session.scalars(
                select(AuditEntry.changes).where(AuditEntry.object_type == "agent_device")
            )
        ).all()
    assert all(password not in json.dumps(c) and digest not in json.dumps(c) for c in changes)


async def test_default_codecs_transport_and_contacts(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    response = await client.post(
        "/api/v1/devices",
        headers=world.admin.headers,
        json={"user_id": world.agent.user_id, "name": "softphone", "extension": "301"},
    )
    assert response.status_code == 201, response.text
    device = response.json()
    assert device["codecs"] == ["ulaw", "alaw"]
    assert device["transport"] == "udp"
    assert device["max_contacts"] == 1


async def test_reset_password_replaces_the_digest(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    device = await create_device(client, world)
    before = await stored_ha1(sessions, device["id"])
    url = f"/api/v1/devices/{device['id']}/reset-password"

    reset = await client.post(url, headers=world.admin.headers)
    assert reset.status_code == 200, reset.text
    assert reset.headers["Cache-Control"] == "no-store"
    new_password = reset.json()["password"]
    assert new_password != device["password"]
    after = await stored_ha1(sessions, device["id"])
    assert after != before
    assert after == ha1(device["sip_username"], new_password)
    assert reset.headers["ETag"] == f'"{device["id"]}.2"'

    # The agent owning the device may reset it too; the supervisor may not.
    own = await client.post(url, headers=world.agent.headers)
    assert own.status_code == 200
    assert await stored_ha1(sessions, device["id"]) == ha1(
        device["sip_username"], own.json()["password"]
    )
    assert (await client.post(url, headers=world.supervisor.headers)).status_code == 403
    assert (await client.post(url, headers=world.operator_headers)).status_code == 200
    async with sessions() as session:
        entries = (
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.object_type == "agent_device",
                    AuditEntry.object_id == str(device["id"]),
                    AuditEntry.action == "reset-password",
                )
            )
        ).all()
    assert [e.changes for e in entries] == [{"password": "changed"}] * 3


# ---- validation -----------------------------------------------------------------------------


async def test_user_must_be_an_agent_supervisor_or_admin_of_the_tenant(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    # Supervisors and admins own devices too: they are called on them to supervise calls.
    for role in ("supervisor", "admin"):
        owned = await client.post(
            "/api/v1/devices",
            headers=world.admin.headers,
            json=device_body(world, user_id=world.actor(role).user_id, extension=f"{len(role)}00"),
        )
        assert owned.status_code == 201, (role, owned.text)
        assert owned.json()["user_id"] == world.actor(role).user_id
    for user_id in (
        other.agent.user_id,
        other.supervisor.user_id,
        world.operator.user_id,
        10**12,
    ):
        response = await client.post(
            "/api/v1/devices", headers=world.admin.headers, json=device_body(world, user_id=user_id)
        )
        assert response.status_code == 422, (user_id, response.text)
        assert fields_of(response) == {"body.user_id"}
    huge = await client.post(
        "/api/v1/devices", headers=world.admin.headers, json=device_body(world, user_id=2**70)
    )
    assert huge.status_code == 422
    assert fields_of(huge) == {"body.user_id"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"codecs": []}, "body.codecs"),
        ({"codecs": ["ulaw", "ulaw"]}, "body.codecs"),
        ({"codecs": ["ulaw", "alaw", "g722", "gsm", "opus", "ulaw"]}, "body.codecs"),
        ({"codecs": ["g729"]}, "body.codecs.0"),
        ({"codecs": "ulaw"}, "body.codecs"),
        ({"transport": "ws"}, "body.transport"),
        ({"max_contacts": 0}, "body.max_contacts"),
        ({"max_contacts": 11}, "body.max_contacts"),
        ({"extension": "0201"}, "body.extension"),
        ({"extension": "1234567"}, "body.extension"),
        ({"name": "x" * 65}, "body.name"),
        ({"password": "chosen-by-me"}, "body.password"),
        ({"password_ha1": "0" * 32}, "body.password_ha1"),
        ({"sip_username": "acme-ana"}, "body.sip_username"),
    ],
)
async def test_invalid_fields_are_named(
    client: httpx.AsyncClient, sessions: Sessions, overrides: dict[str, Any], field: str
) -> None:
    world = await make_world(client, sessions)
    response = await client.post(
        "/api/v1/devices", headers=world.admin.headers, json=device_body(world, **overrides)
    )
    assert response.status_code == 422, response.text
    assert response.json()["error_id"] == "validation-failed"
    assert fields_of(response) == {field}


async def test_all_five_codecs_in_any_order_are_accepted(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    codecs = ["opus", "g722", "gsm", "alaw", "ulaw"]
    device = await create_device(client, world, codecs=codecs, transport="tls", max_contacts=10)
    assert device["codecs"] == codecs
    assert device["transport"] == "tls"


async def test_longest_slug_and_name_make_a_sip_username_that_fits(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    slug = f"{world.slug}-" + "l" * (62 - len(world.slug))  # 63 characters: the longest
    headers, agent_id = await tenant_with_agent(client, world.operator, slug)
    body = {"user_id": agent_id, "extension": "240", "name": "d" * 64}
    response = await client.post("/api/v1/devices", headers=headers, json=body)
    assert response.status_code == 201, response.text
    assert len(response.json()["sip_username"]) == 128


async def test_extension_is_unique_per_tenant(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    await create_device(client, world, extension="250")
    twin = await client.post(
        "/api/v1/devices", headers=world.admin.headers, json=device_body(world, extension="250")
    )
    assert twin.status_code == 409
    assert twin.json()["details"]["field"] == "extension"
    await create_device(client, other, extension="250")  # another tenant: no conflict


async def test_sip_username_is_globally_unique(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    await create_device(client, world, name="front-desk", extension="260")
    same = await client.post(
        "/api/v1/devices",
        headers=world.admin.headers,
        json=device_body(world, name="front-desk", extension="261"),
    )
    assert same.status_code == 409
    assert same.json()["details"]["field"] == "sip_username"

    # Tenant "<slug>-front" naming a device "desk" collides with "<slug>" + "front-desk".
    headers, agent_id = await tenant_with_agent(client, world.operator, f"{world.slug}-front")
    collision = await client.post(
        "/api/v1/devices",
        headers=headers,
        json={"user_id": agent_id, "name": "desk", "extension": "260"},
    )
    assert collision.status_code == 409
    assert collision.json()["details"]["field"] == "sip_username"


# ---- update and delete ----------------------------------------------------------------------


async def test_update_with_etags(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    second = await add_user(client, world, "agent")
    device = await create_device(client, world, extension="270")
    await create_device(client, world, extension="271")
    url = f"/api/v1/devices/{device['id']}"
    etag = (await client.get(url, headers=world.admin.headers)).headers["ETag"]

    changed = await client.patch(
        url,
        headers={**world.admin.headers, "If-Match": etag},
        json={"user_id": second.user_id, "codecs": ["opus"], "transport": "tcp"},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["user_id"] == second.user_id
    assert changed.json()["codecs"] == ["opus"]
    assert changed.json()["sip_username"] == device["sip_username"]
    assert "password" not in changed.json()
    assert changed.headers["ETag"] != etag

    stale = await client.patch(
        url, headers={**world.admin.headers, "If-Match": etag}, json={"max_contacts": 3}
    )
    assert stale.status_code == 412
    assert stale.json()["error_id"] == "precondition-failed"

    for body, field in [
        ({"extension": "271"}, None),
        ({"name": "renamed"}, "body.name"),
        ({"extension": None}, "body.extension"),
        ({"codecs": None}, "body.codecs"),
        ({"user_id": world.operator.user_id}, "body.user_id"),
        ({"codecs": ["ulaw", "ulaw"]}, "body.codecs"),
    ]:
        response = await client.patch(url, headers=world.admin.headers, json=body)
        if field is None:
            assert response.status_code == 409, response.text
            assert response.json()["details"]["field"] == "extension"
        else:
            assert response.status_code == 422, (body, response.text)
            assert fields_of(response) == {field}


async def test_delete_and_deleting_a_destination(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    device = await create_device(client, world, extension="280")
    queue = await client.post(
        "/api/v1/queues",
        headers=world.admin.headers,
        json={"name": "overflow", "fallback": {"type": "extension", "id": device["id"]}},
    )
    assert queue.status_code == 201, queue.text
    url = f"/api/v1/devices/{device['id']}"
    refused = await client.delete(url, headers=world.admin.headers)
    assert refused.status_code == 409
    assert refused.json()["details"]["used_by"] == [f"queue {queue.json()['id']}"]

    cleared = await client.patch(
        f"/api/v1/queues/{queue.json()['id']}", headers=world.admin.headers, json={"fallback": None}
    )
    assert cleared.status_code == 200
    assert (await client.delete(url, headers=world.admin.headers)).status_code == 204
    assert (await client.get(url, headers=world.admin.headers)).status_code == 404
    assert (await client.delete(url, headers=world.admin.headers)).status_code == 404


async def test_out_of_range_ids_are_refused_not_crashing(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    for device_id in ("0", str(2**63), str(2**80), "abc"):
        response = await client.get(f"/api/v1/devices/{device_id}", headers=world.admin.headers)
        assert response.status_code == 422, response.text
        assert fields_of(response) == {"path.device_id"}
    missing = await client.get(f"/api/v1/devices/{2**63 - 1}", headers=world.admin.headers)
    assert missing.status_code == 404


# ---- roles and tenants ----------------------------------------------------------------------


async def test_agents_see_and_reset_only_their_own_devices(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    colleague = await add_user(client, world, "agent")
    mine = await create_device(client, world, extension="290")
    theirs = await create_device(client, world, extension="291", user_id=colleague.user_id)

    listed = await client.get("/api/v1/devices", headers=world.agent.headers)
    assert [d["id"] for d in listed.json()["items"]] == [mine["id"]]
    filtered = await client.get(
        "/api/v1/devices", headers=world.agent.headers, params={"user_id": colleague.user_id}
    )
    assert filtered.json()["items"] == []
    assert (
        await client.get(f"/api/v1/devices/{mine['id']}", headers=world.agent.headers)
    ).status_code == 200
    for method, path in [
        ("GET", f"/api/v1/devices/{theirs['id']}"),
        ("POST", f"/api/v1/devices/{theirs['id']}/reset-password"),
    ]:
        response = await client.request(method, path, headers=world.agent.headers)
        assert response.status_code == 404, (method, path)

    everyone = await client.get("/api/v1/devices", headers=world.supervisor.headers)
    assert {d["id"] for d in everyone.json()["items"]} == {mine["id"], theirs["id"]}
    by_user = await client.get(
        "/api/v1/devices", headers=world.admin.headers, params={"user_id": colleague.user_id}
    )
    assert [d["id"] for d in by_user.json()["items"]] == [theirs["id"]]


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("admin", {"create": 201, "list": 200, "get": 200, "patch": 200, "delete": 204}),
        ("operator", {"create": 201, "list": 200, "get": 200, "patch": 200, "delete": 204}),
        ("supervisor", {"create": 403, "list": 200, "get": 200, "patch": 403, "delete": 403}),
        ("agent", {"create": 403, "list": 200, "get": 404, "patch": 403, "delete": 403}),
    ],
)
async def test_role_matrix(
    client: httpx.AsyncClient, sessions: Sessions, role: str, expected: dict[str, int]
) -> None:
    world = await make_world(client, sessions)
    colleague = await add_user(client, world, "agent")
    device = await create_device(client, world, extension="310", user_id=colleague.user_id)
    headers = world.headers(role)
    url = f"/api/v1/devices/{device['id']}"
    got = {
        "create": (
            await client.post(
                "/api/v1/devices", headers=headers, json=device_body(world, extension="311")
            )
        ).status_code,
        "list": (await client.get("/api/v1/devices", headers=headers)).status_code,
        "get": (await client.get(url, headers=headers)).status_code,
        "patch": (await client.patch(url, headers=headers, json={"max_contacts": 4})).status_code,
        "delete": (await client.delete(url, headers=headers)).status_code,
    }
    assert got == expected
    assert (await client.get("/api/v1/devices")).status_code == 401


async def test_other_tenants_devices_do_not_exist(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    device = await create_device(client, world, extension="320")
    url = f"/api/v1/devices/{device['id']}"
    for headers in (other.admin.headers, other.operator_headers, other.supervisor.headers):
        assert (await client.get(url, headers=headers)).status_code == 404
        listed = await client.get("/api/v1/devices", headers=headers)
        assert device["id"] not in {d["id"] for d in listed.json()["items"]}
    for headers in (other.admin.headers, other.operator_headers):
        assert (
            await client.patch(url, headers=headers, json={"max_contacts": 3})
        ).status_code == 404
        assert (await client.post(f"{url}/reset-password", headers=headers)).status_code == 404
        assert (await client.delete(url, headers=headers)).status_code == 404
    still = await client.get(url, headers=world.admin.headers)
    assert still.json()["max_contacts"] == device["max_contacts"]
    assert await stored_ha1(sessions, device["id"]) == ha1(
        device["sip_username"], device["password"]
    )


# ---- hostile input --------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def hostile_world(client: httpx.AsyncClient, sessions: Sessions) -> TenantWorld:
    return await make_world(client, sessions)


@pytest.mark.parametrize("text", HOSTILE, ids=lambda text: repr(text)[:24])
async def test_hostile_strings_are_refused_in_every_string_field(
    client: httpx.AsyncClient, hostile_world: TenantWorld, text: str
) -> None:
    world = hostile_world
    for field, value, named in [
        ("name", text, "body.name"),
        ("extension", text, "body.extension"),
        ("transport", text, "body.transport"),
        ("codecs", [text], "body.codecs.0"),
        ("codecs", ["ulaw", text], "body.codecs.1"),
    ]:
        response = await client.post(
            "/api/v1/devices",
            headers=world.admin.headers,
            json=device_body(world, **{field: value}),
        )
        if field == "name" and NAME_ALPHABET.fullmatch(text):
            # "00331" is a fine name: taken, then removed so its extension is free again.
            assert response.status_code == 201, (field, response.text)
            device_url = f"/api/v1/devices/{response.json()['id']}"
            assert (await client.delete(device_url, headers=world.admin.headers)).status_code == 204
            continue
        assert response.status_code == 422, (field, response.text)
        assert fields_of(response) == {named}, field
