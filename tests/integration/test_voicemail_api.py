"""Voicemail boxes through the real API and database: write-only PINs, uniqueness, roles."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit.models import AuditEntry
from graam_pbx.fields import DisplayText
from graam_pbx.voicemail.models import VoicemailBox
from tests.factories import HOSTILE, PIN_ALPHABET, TenantWorld, fields_of, make_world, unique
from tests.unit.test_wav import make_wav

Sessions = async_sessionmaker[AsyncSession]
PIN = "739104"


async def create_box(
    client: httpx.AsyncClient, world: TenantWorld, number: str, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/voicemail-boxes",
        headers=world.admin.headers,
        json={"number": number, "name": "Support", "pin": PIN, **body},
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def create_prompt(client: httpx.AsyncClient, world: TenantWorld) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/prompts",
        headers=world.admin.headers,
        data={"name": unique("p")},
        files={"file": ("g.wav", make_wav(seconds=0.2), "audio/wav")},
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def stored_pin(sessions: Sessions, box_id: int) -> str | None:
    async with sessions() as session:
        return await session.scalar(select(VoicemailBox.pin).where(VoicemailBox.id == box_id))


async def test_create_and_read_never_show_the_pin(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    prompt = await create_prompt(client, world)
    response = await client.post(
        "/api/v1/voicemail-boxes",
        headers=world.admin.headers,
        json={
            "number": "800",
            "name": "Après-vente ; Ünïcode",
            "pin": PIN,
            "email": "  Support@ACME.example ",
            "greeting_prompt_id": prompt["id"],
        },
    )
    assert response.status_code == 201, response.text
    box = response.json()
    assert response.headers["ETag"] == f'"{box["id"]}.1"'
    assert {k: v for k, v in box.items() if k not in ("id", "created_at", "updated_at")} == {
        "number": "800",
        "name": "Après-vente ; Ünïcode",
        "email": "support@acme.example",
        "greeting_prompt_id": prompt["id"],
        "version": 1,
    }
    assert await stored_pin(sessions, box["id"]) == PIN
    url = f"/api/v1/voicemail-boxes/{box['id']}"
    one = await client.get(url, headers=world.supervisor.headers)
    assert one.json() == box
    assert one.headers["ETag"] == response.headers["ETag"]
    listed = await client.get("/api/v1/voicemail-boxes", headers=world.supervisor.headers)
    assert listed.json()["items"] == [box]
    changed = await client.patch(url, headers=world.admin.headers, json={"pin": "5550123"})
    assert changed.status_code == 200
    assert await stored_pin(sessions, box["id"]) == "5550123"
    audit = await client.get(
        "/api/v1/audit", headers=world.admin.headers, params={"object_type": "voicemail_box"}
    )
    for read in (response, one, listed, changed, audit):
        assert PIN not in read.text and "5550123" not in read.text
        assert '"pin"' not in read.text or read is audit
    async with sessions() as session:
        changes = (
            await session.scalars(
                select(AuditEntry.changes)
                .where(AuditEntry.object_type == "voicemail_box")
                .where(AuditEntry.object_id == str(box["id"]))
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [c["pin"] for c in changes] == ["set", "changed"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"number": "0800"}, "body.number"),
        ({"number": "8"}, "body.number"),
        ({"number": "1234567"}, "body.number"),
        # *<number> would be a phone's feature code: *45, *47<reason>, *72<number>, *79.
        ({"number": "45"}, "body.number"),
        ({"number": "4701"}, "body.number"),
        ({"number": "7203"}, "body.number"),
        ({"number": "79"}, "body.number"),
        ({"pin": "123"}, "body.pin"),
        ({"pin": "1234567890123"}, "body.pin"),
        ({"pin": "12a4"}, "body.pin"),
        ({"pin": 1234}, "body.pin"),
        ({"name": ""}, "body.name"),
        ({"name": "x" * 101}, "body.name"),
        ({"name": "Line\nbreak"}, "body.name"),
        ({"email": "not-an-email"}, "body.email"),
        ({"email": "a@b"}, "body.email"),
        ({"greeting_prompt_id": 10**9}, "body.greeting_prompt_id"),
        ({"greeting_prompt_id": 2**63}, "body.greeting_prompt_id"),
        ({"greeting_prompt_id": 0}, "body.greeting_prompt_id"),
        ({"attach": True}, "body.attach"),
    ],
)
async def test_invalid_fields_are_named(
    client: httpx.AsyncClient, sessions: Sessions, body: dict[str, Any], field: str
) -> None:
    world = await make_world(client, sessions)
    response = await client.post(
        "/api/v1/voicemail-boxes",
        headers=world.admin.headers,
        json={"number": "800", "name": "Box", "pin": PIN, **body},
    )
    assert response.status_code == 422, response.text
    assert fields_of(response) == {field}
    assert PIN not in response.text  # errors name fields, never echo values


async def test_names_up_to_100_characters(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    box = await create_box(client, world, "810", name="é" * 100)
    assert box["name"] == "é" * 100


async def test_number_is_unique_per_tenant(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    await create_box(client, world, "820")
    twin = await client.post(
        "/api/v1/voicemail-boxes",
        headers=world.admin.headers,
        json={"number": "820", "name": "Twin", "pin": PIN},
    )
    assert twin.status_code == 409
    assert twin.json()["details"]["field"] == "number"
    await create_box(client, other, "820")
    second = await create_box(client, world, "821")
    clash = await client.patch(
        f"/api/v1/voicemail-boxes/{second['id']}",
        headers=world.admin.headers,
        json={"number": "820"},
    )
    assert clash.status_code == 409


async def test_update_with_etags_and_nulls(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    their_prompt = await create_prompt(client, other)
    box = await create_box(client, world, "830", email="ana@acme.example")
    url = f"/api/v1/voicemail-boxes/{box['id']}"
    etag = f'"{box["id"]}.1"'
    changed = await client.patch(
        url,
        headers={**world.admin.headers, "If-Match": etag},
        json={"name": "Night line", "email": None},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["email"] is None
    assert changed.json()["name"] == "Night line"
    assert changed.headers["ETag"] == f'"{box["id"]}.2"'
    stale = await client.patch(
        url, headers={**world.admin.headers, "If-Match": etag}, json={"pin": "0000"}
    )
    assert stale.status_code == 412
    assert await stored_pin(sessions, box["id"]) == PIN
    for body, field in [
        ({"pin": None}, "body.pin"),
        ({"number": None}, "body.number"),
        ({"name": None}, "body.name"),
        ({"greeting_prompt_id": their_prompt["id"]}, "body.greeting_prompt_id"),
    ]:
        bad = await client.patch(url, headers=world.admin.headers, json=body)
        assert bad.status_code == 422, body
        assert fields_of(bad) == {field}


async def test_delete_refused_while_a_destination(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    box = await create_box(client, world, "840")
    menu = await client.post(
        "/api/v1/ivrs",
        headers=world.admin.headers,
        json={"name": "main", "invalid_destination": {"type": "voicemail", "id": box["id"]}},
    )
    assert menu.status_code == 201
    url = f"/api/v1/voicemail-boxes/{box['id']}"
    refused = await client.delete(url, headers=world.admin.headers)
    assert refused.status_code == 409
    assert refused.json()["details"]["used_by"] == [f"IVR menu {menu.json()['id']}"]
    await client.patch(
        f"/api/v1/ivrs/{menu.json()['id']}",
        headers=world.admin.headers,
        json={"invalid_destination": {"type": "hangup"}},
    )
    assert (await client.delete(url, headers=world.admin.headers)).status_code == 204
    assert (await client.get(url, headers=world.admin.headers)).status_code == 404


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("admin", {"create": 201, "list": 200, "get": 200, "patch": 200, "delete": 204}),
        ("operator", {"create": 201, "list": 200, "get": 200, "patch": 200, "delete": 204}),
        ("supervisor", {"create": 403, "list": 200, "get": 200, "patch": 403, "delete": 403}),
        ("agent", {"create": 403, "list": 403, "get": 403, "patch": 403, "delete": 403}),
    ],
)
async def test_role_matrix(
    client: httpx.AsyncClient, sessions: Sessions, role: str, expected: dict[str, int]
) -> None:
    world = await make_world(client, sessions)
    box = await create_box(client, world, "850")
    headers = world.headers(role)
    url = f"/api/v1/voicemail-boxes/{box['id']}"
    got = {
        "create": (
            await client.post(
                "/api/v1/voicemail-boxes",
                headers=headers,
                json={"number": "851", "name": "Box", "pin": PIN},
            )
        ).status_code,
        "list": (await client.get("/api/v1/voicemail-boxes", headers=headers)).status_code,
        "get": (await client.get(url, headers=headers)).status_code,
        "patch": (await client.patch(url, headers=headers, json={"name": "New"})).status_code,
        "delete": (await client.delete(url, headers=headers)).status_code,
    }
    assert got == expected
    assert (await client.get("/api/v1/voicemail-boxes")).status_code == 401


async def test_other_tenants_boxes_do_not_exist(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    box = await create_box(client, world, "860")
    url = f"/api/v1/voicemail-boxes/{box['id']}"
    for headers in (other.admin.headers, other.supervisor.headers, other.operator_headers):
        listed = await client.get("/api/v1/voicemail-boxes", headers=headers)
        assert box["id"] not in {b["id"] for b in listed.json()["items"]}
        assert (await client.get(url, headers=headers)).status_code == 404
    for headers in (other.admin.headers, other.operator_headers):
        assert (await client.patch(url, headers=headers, json={"pin": "0000"})).status_code == 404
        assert (await client.delete(url, headers=headers)).status_code == 404
        route = await client.post(
            "/api/v1/queues",
            headers=headers,
            json={"name": unique("q"), "fallback": {"type": "voicemail", "id": box["id"]}},
        )
        assert route.status_code == 422
    assert await stored_pin(sessions, box["id"]) == PIN
    assert (
        await client.get(f"/api/v1/voicemail-boxes/{2**64}", headers=world.admin.headers)
    ).status_code == 422


# ---- hostile input --------------------------------------------------------------------------


def display_text_accepts(text: str) -> bool:
    """fields.DisplayText's rule, capped at the column's 100 characters."""
    try:
        TypeAdapter(DisplayText).validate_python(text)
    except ValidationError:
        return False
    return len(text) <= 100


@pytest.fixture(scope="module")
async def hostile_world(client: httpx.AsyncClient, sessions: Sessions) -> TenantWorld:
    return await make_world(client, sessions)


@pytest.mark.parametrize("text", HOSTILE, ids=lambda text: repr(text)[:24])
async def test_hostile_strings_are_refused_in_every_string_field(
    client: httpx.AsyncClient, sessions: Sessions, hostile_world: TenantWorld, text: str
) -> None:
    world = hostile_world
    number = str(100_000 + HOSTILE.index(text))
    valid = {"number": number, "name": "Box", "pin": PIN, "email": "box@acme.example"}
    for field in ("number", "pin", "email"):
        response = await client.post(
            "/api/v1/voicemail-boxes", headers=world.admin.headers, json={**valid, field: text}
        )
        if field == "pin" and PIN_ALPHABET.fullmatch(text):
            # "00331" is a fine PIN: taken, then removed so the number is free again.
            assert response.status_code == 201, (field, response.text)
            box_url = f"/api/v1/voicemail-boxes/{response.json()['id']}"
            assert (await client.delete(box_url, headers=world.admin.headers)).status_code == 204
            continue
        assert response.status_code == 422, (field, response.text)
        assert fields_of(response) == {f"body.{field}"}

    # Display names may hold punctuation and letters of any script (the config renderer
    # escapes them), never control characters.
    named = await client.post(
        "/api/v1/voicemail-boxes", headers=world.admin.headers, json={**valid, "name": text}
    )
    if display_text_accepts(text):
        assert named.status_code == 201, named.text
        assert named.json()["name"] == text
        async with sessions() as session:
            stored = await session.scalar(
                select(VoicemailBox.name).where(VoicemailBox.id == named.json()["id"])
            )
        assert stored == text
    else:
        assert named.status_code == 422, named.text
        assert fields_of(named) == {"body.name"}
