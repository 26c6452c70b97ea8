"""Hold music classes through the real API and database, and the queues that play them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import TenantWorld, fields_of, make_world, unique
from tests.integration.test_prompts_api import create_prompt

Sessions = async_sessionmaker[AsyncSession]
CLASSES = "/api/v1/moh-classes"


async def create_class(
    client: httpx.AsyncClient, world: TenantWorld, prompt_ids: list[int], name: str | None = None
) -> dict[str, Any]:
    response = await client.post(
        CLASSES,
        headers=world.admin.headers,
        json={"name": name or unique("m"), "prompt_ids": prompt_ids},
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def queue_with(
    client: httpx.AsyncClient, world: TenantWorld, music_on_hold: str
) -> httpx.Response:
    return await client.post(
        "/api/v1/queues",
        headers=world.admin.headers,
        json={"name": unique("q"), "music_on_hold": music_on_hold},
    )


def reason_of(response: httpx.Response, field: str) -> str:
    errors = response.json()["details"]["errors"]
    return next(str(e["reason"]) for e in errors if e["field"] == field)


async def test_create_list_get_replace_delete(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    first, second = await create_prompt(client, world), await create_prompt(client, world)
    response = await client.post(
        CLASSES,
        headers=world.admin.headers,
        json={"name": "jazz", "prompt_ids": [second["id"], first["id"]]},
    )
    assert response.status_code == 201, response.text
    made = response.json()
    assert response.headers["ETag"] == f'"{made["id"]}.1"'
    assert {k: v for k, v in made.items() if k not in ("id", "created_at", "updated_at")} == {
        "name": "jazz",
        "asterisk_class": f"t{world.tenant_id}-jazz",
        "prompt_ids": [second["id"], first["id"]],
        "version": 1,
    }
    url = f"{CLASSES}/{made['id']}"
    one = await client.get(url, headers=world.supervisor.headers)
    assert one.json() == made
    listed = await client.get(CLASSES, headers=world.supervisor.headers)
    assert listed.json()["items"] == [made]

    replaced = await client.patch(
        url,
        headers={**world.admin.headers, "If-Match": one.headers["ETag"]},
        json={"prompt_ids": [first["id"]]},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["prompt_ids"] == [first["id"]]
    assert replaced.json()["version"] == 2
    stale = await client.patch(
        url,
        headers={**world.admin.headers, "If-Match": one.headers["ETag"]},
        json={"prompt_ids": [second["id"]]},
    )
    assert stale.status_code == 412
    assert (await client.get(url, headers=world.admin.headers)).json()["prompt_ids"] == [
        first["id"]
    ]

    deleted = await client.delete(url, headers=world.admin.headers)
    assert deleted.status_code == 204
    assert (await client.get(url, headers=world.admin.headers)).status_code == 404
    # Its prompts are free again.
    freed = await client.delete(f"/api/v1/prompts/{second['id']}", headers=world.admin.headers)
    assert freed.status_code == 204


async def test_a_queue_plays_default_or_its_tenants_class_and_nothing_else(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    prompt = await create_prompt(client, world)
    await create_class(client, world, [prompt["id"]], name="calm")

    assert (await queue_with(client, world, "default")).status_code == 201
    own = await queue_with(client, world, "calm")
    assert own.status_code == 201, own.text
    assert own.json()["music_on_hold"] == "calm"

    refused = await queue_with(client, world, "jazz")
    assert refused.status_code == 422
    assert fields_of(refused) == {"body.music_on_hold"}
    assert "no hold music class 'jazz'" in reason_of(refused, "body.music_on_hold")

    url = f"/api/v1/queues/{own.json()['id']}"
    changed = await client.patch(url, headers=world.admin.headers, json={"music_on_hold": "jazz"})
    assert changed.status_code == 422
    assert fields_of(changed) == {"body.music_on_hold"}
    assert (await client.get(url, headers=world.admin.headers)).json()["music_on_hold"] == "calm"


async def test_a_class_a_queue_plays_cannot_be_deleted(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    prompt = await create_prompt(client, world)
    moh = await create_class(client, world, [prompt["id"]])
    queue = await queue_with(client, world, moh["name"])
    assert queue.status_code == 201, queue.text
    url = f"{CLASSES}/{moh['id']}"

    refused = await client.delete(url, headers=world.admin.headers)
    assert refused.status_code == 409
    assert refused.json()["error_id"] == "conflict"
    assert moh["name"] in refused.json()["message"]
    # Nor can the prompt it plays.
    in_use = await client.delete(f"/api/v1/prompts/{prompt['id']}", headers=world.admin.headers)
    assert in_use.status_code == 409
    assert f"hold music class {moh['id']}" in in_use.json()["message"]

    moved = await client.patch(
        f"/api/v1/queues/{queue.json()['id']}",
        headers=world.admin.headers,
        json={"music_on_hold": "default"},
    )
    assert moved.status_code == 200, moved.text
    assert (await client.delete(url, headers=world.admin.headers)).status_code == 204


async def test_another_tenants_class_and_prompts_do_not_exist(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    ours, theirs = await make_world(client, sessions), await make_world(client, sessions)
    their_prompt = await create_prompt(client, theirs)
    their_class = await create_class(client, theirs, [their_prompt["id"]], name="secret")
    url = f"{CLASSES}/{their_class['id']}"

    assert (await client.get(url, headers=ours.admin.headers)).status_code == 404
    assert (await client.delete(url, headers=ours.admin.headers)).status_code == 404
    patched = await client.patch(
        url, headers=ours.admin.headers, json={"prompt_ids": [their_prompt["id"]]}
    )
    assert patched.status_code == 404
    assert (await client.get(CLASSES, headers=ours.admin.headers)).json()["items"] == []

    borrowed = await queue_with(client, ours, "secret")
    assert borrowed.status_code == 422
    assert fields_of(borrowed) == {"body.music_on_hold"}
    stolen = await client.post(
        CLASSES,
        headers=ours.admin.headers,
        json={"name": "mine", "prompt_ids": [their_prompt["id"]]},
    )
    assert stolen.status_code == 422
    assert fields_of(stolen) == {"body.prompt_ids.0"}
    # Names are per tenant.
    our_prompt = await create_prompt(client, ours)
    await create_class(client, ours, [our_prompt["id"]], name="secret")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "default", "prompt_ids": [1]}, "body.name"),
        ({"name": "Jazz", "prompt_ids": [1]}, "body.name"),
        ({"name": "j" * 49, "prompt_ids": [1]}, "body.name"),
        ({"name": "jazz;--", "prompt_ids": [1]}, "body.name"),
        ({"name": "jazz", "prompt_ids": []}, "body.prompt_ids"),
        ({"name": "jazz", "prompt_ids": [0]}, "body.prompt_ids.0"),
        ({"name": "jazz", "prompt_ids": list(range(1, 52))}, "body.prompt_ids"),
        ({"name": "jazz"}, "body.prompt_ids"),
        ({"name": "jazz", "prompt_ids": [1], "mode": "custom"}, "body.mode"),
    ],
)
async def test_bad_classes_are_refused(
    client: httpx.AsyncClient, sessions: Sessions, body: dict[str, Any], field: str
) -> None:
    world = await make_world(client, sessions)
    response = await client.post(CLASSES, headers=world.admin.headers, json=body)
    assert response.status_code == 422, response.text
    assert fields_of(response) == {field}


async def test_duplicates_are_refused(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    prompt = await create_prompt(client, world)
    twice = await client.post(
        CLASSES,
        headers=world.admin.headers,
        json={"name": "jazz", "prompt_ids": [prompt["id"], prompt["id"]]},
    )
    assert twice.status_code == 422
    assert fields_of(twice) == {"body.prompt_ids"}
    await create_class(client, world, [prompt["id"]], name="jazz")
    taken = await client.post(
        CLASSES, headers=world.admin.headers, json={"name": "jazz", "prompt_ids": [prompt["id"]]}
    )
    assert taken.status_code == 409
    assert taken.json()["details"]["field"] == "name"


@pytest.mark.parametrize(("role", "status"), [("supervisor", 403), ("agent", 403)])
async def test_only_admins_change_classes(
    client: httpx.AsyncClient, sessions: Sessions, role: str, status: int
) -> None:
    world = await make_world(client, sessions)
    prompt = await create_prompt(client, world)
    made = await client.post(
        CLASSES, headers=world.headers(role), json={"name": "jazz", "prompt_ids": [prompt["id"]]}
    )
    assert made.status_code == status
    moh = await create_class(client, world, [prompt["id"]])
    deleted = await client.delete(f"{CLASSES}/{moh['id']}", headers=world.headers(role))
    assert deleted.status_code == status
    listed = await client.get(CLASSES, headers=world.headers(role))
    assert listed.status_code == (200 if role == "supervisor" else 403)
