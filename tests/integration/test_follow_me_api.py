"""Follow-me through the real API and database: steps kept in order, only an external number
asked to press 1, members of this tenant only, and what a follow-me rings, or what rings it,
cannot be deleted."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import make_world
from tests.integration.test_external_numbers_api import make_external
from tests.integration.test_user_forwarding_api import box, device

Sessions = async_sessionmaker[AsyncSession]
URL = "/api/v1/follow-me"


async def test_a_follow_me_is_kept_checked_and_protected(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    desk = await device(client, world, world.agent.user_id, "201")
    mobile = await make_external(client, world)
    voicemail = await box(client, world)
    body = {
        "name": "Desk, then mobile",
        "steps": [
            {"ring_seconds": 15, "ring": [{"type": "extension", "id": desk, "confirm": False}]},
            {
                "ring_seconds": 25,
                "ring": [
                    {"type": "agent", "id": world.agent.user_id, "confirm": False},
                    {"type": "external", "id": mobile["id"], "confirm": True},
                ],
            },
        ],
        "final": {"type": "voicemail", "id": voicemail},
    }
    made = await client.post(URL, headers=world.admin.headers, json=body)
    assert made.status_code == 201, made.text
    follow = made.json()
    assert {key: follow[key] for key in body} == body
    read = await client.get(f"{URL}/{follow['id']}", headers=world.supervisor.headers)
    assert read.json() == follow
    assert (await client.post(URL, headers=world.agent.headers, json=body)).status_code == 403
    foreign = await client.get(f"{URL}/{follow['id']}", headers=other.admin.headers)
    assert foreign.status_code == 404

    bad = [
        ({"type": "extension", "id": desk, "confirm": True}, "body.steps.0.ring.0"),
        ({"type": "queue", "id": 1}, "body.steps.0.ring.0.type"),
        ({"type": "external", "id": 10**9}, "body.steps.0.ring.0"),
    ]
    for member, field in bad:
        refused = await client.put(
            f"{URL}/{follow['id']}",
            headers=world.admin.headers,
            json={**body, "steps": [{"ring_seconds": 10, "ring": [member]}]},
        )
        assert refused.status_code == 422, refused.text
        fields = {error["field"] for error in refused.json()["details"]["errors"]}
        assert any(f.startswith(field) for f in fields), (member, refused.text)
    assert (await client.get(f"{URL}/{follow['id']}", headers=world.admin.headers)).json() == follow

    # What it rings cannot be deleted; nor it while a number is routed to it.
    held = await client.delete(
        f"/api/v1/external-numbers/{mobile['id']}", headers=world.admin.headers
    )
    assert held.status_code == 409 and "follow-me member" in held.text, held.text
    route = await client.post(
        "/api/v1/ivrs",
        headers=world.admin.headers,
        json={
            "name": "menu",
            "options": {"1": {"type": "follow_me", "id": follow["id"]}},
        },
    )
    assert route.status_code == 201, route.text
    used = await client.delete(f"{URL}/{follow['id']}", headers=world.admin.headers)
    assert used.status_code == 409, used.text
    assert (
        await client.delete(f"/api/v1/ivrs/{route.json()['id']}", headers=world.admin.headers)
    ).status_code == 204
    assert (
        await client.delete(f"{URL}/{follow['id']}", headers=world.admin.headers)
    ).status_code == 204
    freed = await client.delete(
        f"/api/v1/external-numbers/{mobile['id']}", headers=world.admin.headers
    )
    assert freed.status_code == 204, freed.text
