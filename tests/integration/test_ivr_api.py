"""IVR menus and their options through the real API and database."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import HOSTILE, NAME_ALPHABET, TenantWorld, fields_of, make_world, unique
from tests.unit.test_wav import make_wav

Sessions = async_sessionmaker[AsyncSession]
HANGUP = {"type": "hangup", "id": None}


async def create(
    client: httpx.AsyncClient, world: TenantWorld, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(path, headers=world.admin.headers, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def create_menu(client: httpx.AsyncClient, world: TenantWorld, **body: Any) -> dict[str, Any]:
    return await create(client, world, "/api/v1/ivrs", {"name": unique("m"), **body})


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


async def test_create_with_options_listed_in_keypad_order(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    queue = await create(client, world, "/api/v1/queues", {"name": "sales"})
    box = await create(
        client, world, "/api/v1/voicemail-boxes", {"number": "800", "name": "Box", "pin": "1234"}
    )
    prompt = await create_prompt(client, world)
    to_queue = {"type": "queue", "id": queue["id"]}
    to_box = {"type": "voicemail", "id": box["id"]}
    response = await client.post(
        "/api/v1/ivrs",
        headers=world.admin.headers,
        json={
            "name": "main",
            "greeting_prompt_id": prompt["id"],
            "timeout_s": 60,
            "repeat_count": 10,
            "timeout_destination": to_queue,
            "options": {
                "#": HANGUP,
                "2": to_box,
                "*": to_queue,
                "1": to_queue,
                "0": {"type": "agent", "id": world.agent.user_id},
            },
        },
    )
    assert response.status_code == 201, response.text
    menu = response.json()
    assert response.headers["ETag"] == f'"{menu["id"]}.1"'
    assert menu["greeting_prompt_id"] == prompt["id"]
    assert menu["timeout_destination"] == to_queue
    assert menu["invalid_destination"] == HANGUP
    assert [(o["digit"], o["destination"]) for o in menu["options"]] == [
        ("0", {"type": "agent", "id": world.agent.user_id}),
        ("1", to_queue),
        ("2", to_box),
        ("*", to_queue),
        ("#", HANGUP),
    ]
    url = f"/api/v1/ivrs/{menu['id']}"
    one = await client.get(url, headers=world.supervisor.headers)
    assert one.json() == menu
    assert one.headers["ETag"] == response.headers["ETag"]
    listed = await client.get("/api/v1/ivrs", headers=world.supervisor.headers)
    assert listed.json()["items"] == [menu]


async def test_defaults(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    menu = await create_menu(client, world)
    assert menu["greeting_prompt_id"] is None
    assert (menu["timeout_s"], menu["repeat_count"]) == (5, 2)
    assert menu["timeout_destination"] == menu["invalid_destination"] == HANGUP
    assert menu["options"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"options": {"x": HANGUP}}, "body.options.x"),
        ({"options": {"12": HANGUP}}, "body.options.12"),
        ({"options": {"": HANGUP}}, "body.options."),
        ({"options": {"1": HANGUP, "A": HANGUP}}, "body.options.A"),
        ({"options": {"1": {"type": "queue", "id": 10**9}}}, "body.options.1"),
        ({"options": {"1": {"type": "hangup", "id": 2}}}, "body.options.1"),
        ({"options": {"1": {"type": "queue"}}}, "body.options.1"),
        ({"options": {"1": {"type": "fax", "id": 1}}}, "body.options.1.type"),
        ({"options": ["1"]}, "body.options"),
        ({"timeout_destination": {"type": "ivr", "id": 10**9}}, "body.timeout_destination"),
        ({"invalid_destination": {"type": "queue", "id": 2**63}}, "body.invalid_destination"),
        ({"greeting_prompt_id": 10**9}, "body.greeting_prompt_id"),
        ({"greeting_prompt_id": 2**64}, "body.greeting_prompt_id"),
        ({"timeout_s": 0}, "body.timeout_s"),
        ({"timeout_s": 61}, "body.timeout_s"),
        ({"repeat_count": -1}, "body.repeat_count"),
        ({"repeat_count": 11}, "body.repeat_count"),
        ({"digits": {}}, "body.digits"),
    ],
)
async def test_invalid_fields_are_named(
    client: httpx.AsyncClient, sessions: Sessions, body: dict[str, Any], field: str
) -> None:
    world = await make_world(client, sessions)
    response = await client.post(
        "/api/v1/ivrs", headers=world.admin.headers, json={"name": "m", **body}
    )
    assert response.status_code == 422, response.text
    assert fields_of(response) == {field}
    assert (await client.get("/api/v1/ivrs", headers=world.admin.headers)).json()["items"] == []


async def test_destinations_and_greeting_must_be_the_tenants_own(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    their_queue = await create(client, other, "/api/v1/queues", {"name": "theirs"})
    their_menu = await create_menu(client, other)
    their_prompt = await create_prompt(client, other)
    to_their_menu = {"type": "ivr", "id": their_menu["id"]}
    for body, field in [
        ({"options": {"1": {"type": "queue", "id": their_queue["id"]}}}, "body.options.1"),
        ({"options": {"9": to_their_menu}}, "body.options.9"),
        ({"options": {"#": {"type": "announcement", "id": their_prompt["id"]}}}, "body.options.#"),
        ({"options": {"1": {"type": "agent", "id": other.agent.user_id}}}, "body.options.1"),
        ({"timeout_destination": to_their_menu}, "body.timeout_destination"),
        ({"greeting_prompt_id": their_prompt["id"]}, "body.greeting_prompt_id"),
    ]:
        response = await client.post(
            "/api/v1/ivrs", headers=world.admin.headers, json={"name": "m", **body}
        )
        assert response.status_code == 422, (body, response.text)
        assert fields_of(response) == {field}


async def test_update_replaces_options_and_moves_the_etag(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    queue = await create(client, world, "/api/v1/queues", {"name": "sales"})
    to_queue = {"type": "queue", "id": queue["id"]}
    menu = await create_menu(client, world, options={"1": to_queue, "2": HANGUP})
    url = f"/api/v1/ivrs/{menu['id']}"
    etag = f'"{menu["id"]}.1"'

    kept = await client.patch(url, headers=world.admin.headers, json={"timeout_s": 9})
    assert kept.status_code == 200, kept.text
    assert [o["digit"] for o in kept.json()["options"]] == ["1", "2"]
    assert kept.json()["timeout_s"] == 9

    stale = await client.patch(
        url, headers={**world.admin.headers, "If-Match": etag}, json={"options": {}}
    )
    assert stale.status_code == 412

    etag = kept.headers["ETag"]
    replaced = await client.patch(
        url, headers={**world.admin.headers, "If-Match": etag}, json={"options": {"5": to_queue}}
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["options"] == [{"digit": "5", "destination": to_queue}]
    assert replaced.headers["ETag"] != etag  # only options changed, the version still moves
    assert (await client.get(url, headers=world.admin.headers)).json() == replaced.json()

    emptied = await client.patch(url, headers=world.admin.headers, json={"options": {}})
    assert emptied.json()["options"] == []

    for body, field in [
        ({"options": None}, "body.options"),
        ({"name": None}, "body.name"),
        ({"timeout_destination": None}, "body.timeout_destination"),
        ({"options": {"**": HANGUP}}, "body.options.**"),
    ]:
        bad = await client.patch(url, headers=world.admin.headers, json=body)
        assert bad.status_code == 422, body
        assert fields_of(bad) == {field}


async def test_a_menu_may_lead_to_another_menu_but_not_to_itself(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    sub = await create_menu(client, world)
    main = await create_menu(client, world, options={"1": {"type": "ivr", "id": sub["id"]}})
    back = await client.patch(
        f"/api/v1/ivrs/{sub['id']}",
        headers=world.admin.headers,
        json={"options": {"0": {"type": "ivr", "id": main["id"]}}},
    )
    assert back.status_code == 200
    url = f"/api/v1/ivrs/{main['id']}"
    itself = {"type": "ivr", "id": main["id"]}
    for body, field in [
        ({"options": {"1": itself}}, "body.options.1"),
        ({"timeout_destination": itself}, "body.timeout_destination"),
        ({"invalid_destination": itself}, "body.invalid_destination"),
    ]:
        response = await client.patch(url, headers=world.admin.headers, json=body)
        assert response.status_code == 422, body
        assert fields_of(response) == {field}


async def test_greeting_can_be_set_and_cleared(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    prompt = await create_prompt(client, world)
    menu = await create_menu(client, world)
    url = f"/api/v1/ivrs/{menu['id']}"
    with_greeting = await client.patch(
        url, headers=world.admin.headers, json={"greeting_prompt_id": prompt["id"]}
    )
    assert with_greeting.json()["greeting_prompt_id"] == prompt["id"]
    cleared = await client.patch(
        url, headers=world.admin.headers, json={"greeting_prompt_id": None}
    )
    assert cleared.json()["greeting_prompt_id"] is None


async def test_name_is_unique_per_tenant(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    await create_menu(client, world, name="main")
    twin = await client.post("/api/v1/ivrs", headers=world.admin.headers, json={"name": "main"})
    assert twin.status_code == 409
    assert twin.json()["details"]["field"] == "name"
    await create_menu(client, other, name="main")


async def test_delete_refused_while_a_destination(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    sub = await create_menu(client, world, options={"1": HANGUP})
    main = await create_menu(client, world, options={"9": {"type": "ivr", "id": sub["id"]}})
    url = f"/api/v1/ivrs/{sub['id']}"
    refused = await client.delete(url, headers=world.admin.headers)
    assert refused.status_code == 409
    assert refused.json()["details"]["used_by"][0].startswith("IVR option ")
    await client.patch(
        f"/api/v1/ivrs/{main['id']}", headers=world.admin.headers, json={"options": {}}
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
    menu = await create_menu(client, world)
    headers = world.headers(role)
    url = f"/api/v1/ivrs/{menu['id']}"
    got = {
        "create": (
            await client.post("/api/v1/ivrs", headers=headers, json={"name": "x"})
        ).status_code,
        "list": (await client.get("/api/v1/ivrs", headers=headers)).status_code,
        "get": (await client.get(url, headers=headers)).status_code,
        "patch": (await client.patch(url, headers=headers, json={"timeout_s": 7})).status_code,
        "delete": (await client.delete(url, headers=headers)).status_code,
    }
    assert got == expected
    assert (await client.get("/api/v1/ivrs")).status_code == 401


async def test_other_tenants_menus_do_not_exist(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    menu = await create_menu(client, world, options={"1": HANGUP})
    url = f"/api/v1/ivrs/{menu['id']}"
    for headers in (other.admin.headers, other.supervisor.headers, other.operator_headers):
        listed = await client.get("/api/v1/ivrs", headers=headers)
        assert menu["id"] not in {m["id"] for m in listed.json()["items"]}
        assert (await client.get(url, headers=headers)).status_code == 404
    for headers in (other.admin.headers, other.operator_headers):
        patched = await client.patch(url, headers=headers, json={"options": {}})
        assert patched.status_code == 404
        assert (await client.delete(url, headers=headers)).status_code == 404
    assert (await client.get(url, headers=world.admin.headers)).json() == menu
    assert (
        await client.get(f"/api/v1/ivrs/{2**64}", headers=world.admin.headers)
    ).status_code == 422


@pytest.fixture(scope="module")
async def hostile_world(client: httpx.AsyncClient, sessions: Sessions) -> TenantWorld:
    return await make_world(client, sessions)


@pytest.mark.parametrize("text", HOSTILE, ids=lambda text: repr(text)[:24])
async def test_hostile_strings_are_refused_in_every_string_field(
    client: httpx.AsyncClient, hostile_world: TenantWorld, text: str
) -> None:
    for body, named in [
        ({"name": text}, "body.name"),
        ({"name": "m", "options": {text: HANGUP}}, f"body.options.{text}"),
        ({"name": "m", "options": {"1": {"type": text}}}, "body.options.1.type"),
        ({"name": "m", "timeout_destination": {"type": text}}, "body.timeout_destination.type"),
        ({"name": "m", "invalid_destination": {"type": text}}, "body.invalid_destination.type"),
    ]:
        response = await client.post("/api/v1/ivrs", headers=hostile_world.admin.headers, json=body)
        if named == "body.name" and NAME_ALPHABET.fullmatch(text):
            assert response.status_code == 201, (body, response.text)  # "00331" is a fine name
            continue
        assert response.status_code == 422, (body, response.text)
        assert fields_of(response) == {named}
