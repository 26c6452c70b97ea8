"""Support requests through the API: filing, due times by priority, overdue, the operator's
queue across tenants, the conversation, and isolation between tenants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.support.models import SupportRequest
from tests.factories import TenantWorld, fields_of, make_world

URL = "/api/v1/support-requests"
DELAYS = {"high": timedelta(hours=24), "medium": timedelta(hours=48), "low": timedelta(days=5)}


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


async def file(
    client: httpx.AsyncClient, world: TenantWorld, priority: str = "high", role: str = "admin"
) -> dict[str, Any]:
    answer = await client.post(
        URL,
        headers=world.headers(role),
        json={
            "subject": f"Help ({priority})",
            "body": "Nothing rings.\nPlease.",
            "priority": priority,
        },
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def make_overdue(sessions: async_sessionmaker[AsyncSession], request_id: int) -> None:
    past = datetime.now(UTC) - timedelta(hours=30)
    async with sessions() as session, session.begin():
        await session.execute(
            update(SupportRequest)
            .where(SupportRequest.id == request_id)
            .values(created_at=past, due_at=past + timedelta(hours=24))
        )


@pytest.mark.parametrize("priority", ["high", "medium", "low"])
async def test_a_request_is_due_by_its_prioritys_delay(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], priority: str
) -> None:
    world = await make_world(client, sessions)
    before = datetime.now(UTC)
    filed = await file(client, world, priority, role="supervisor")
    created, due = parse(str(filed["created_at"])), parse(str(filed["due_at"]))
    assert before - timedelta(seconds=1) <= created <= datetime.now(UTC)
    assert due - created == DELAYS[priority]
    assert filed["status"] == "open"
    assert filed["overdue"] is False
    assert filed["requester_email"] == world.supervisor.email
    assert filed["tenant_id"] == world.tenant_id
    [message] = filed["messages"]
    assert message["body"] == "Nothing rings.\nPlease."
    assert message["from_operator"] is False
    assert message["author"] == world.supervisor.email


async def test_a_request_filed_with_an_api_key_is_answered_to_its_users_address(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    made = await client.post(
        "/api/v1/auth/api-keys",
        headers=world.admin.headers,
        json={"name": "helpdesk-sync", "read_only": False},
    )
    assert made.status_code == 201, made.text
    answer = await client.post(
        URL,
        headers={"Authorization": f"Bearer {made.json()['key']}"},
        json={"subject": "From our helpdesk", "body": "Nothing rings.", "priority": "low"},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["requester_email"] == world.admin.email


async def test_the_operator_answers_and_closes_and_overdue_goes_first(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    low = await file(client, world, "low")
    late = await file(client, world, "medium")
    await make_overdue(sessions, int(str(late["id"])))

    mine = await client.get(URL, headers=world.admin.headers)
    assert mine.status_code == 200
    items = mine.json()["items"]
    assert [i["id"] for i in items] == [late["id"], low["id"]]
    assert [i["overdue"] for i in items] == [True, False]

    queue = await client.get(
        URL, headers=world.operator.headers, params={"tenant_id": world.tenant_id}
    )
    assert [i["id"] for i in queue.json()["items"]] == [late["id"], low["id"]]

    answer = await client.post(
        f"{URL}/{late['id']}/messages",
        headers=world.operator.headers,
        json={"body": "We are on it."},
    )
    assert answer.status_code == 201, answer.text
    answered = answer.json()
    assert answered["status"] == "answered"
    assert answered["overdue"] is False  # answered, although after its due time
    assert answered["answered_at"] is not None
    assert [(m["from_operator"], m["body"]) for m in answered["messages"]] == [
        (False, "Nothing rings.\nPlease."),
        (True, "We are on it."),
    ]

    again = await client.post(
        f"{URL}/{late['id']}/messages", headers=world.admin.headers, json={"body": "Thanks."}
    )
    assert again.json()["status"] == "open"
    assert again.json()["answered_at"] == answered["answered_at"]

    refused = await client.post(f"{URL}/{late['id']}/close", headers=world.admin.headers)
    assert refused.status_code == 403
    closed = await client.post(f"{URL}/{late['id']}/close", headers=world.operator.headers)
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed"
    after = await client.post(
        f"{URL}/{late['id']}/messages", headers=world.admin.headers, json={"body": "More."}
    )
    assert after.status_code == 409

    only_closed = await client.get(URL, headers=world.admin.headers, params={"status": "closed"})
    assert [i["id"] for i in only_closed.json()["items"]] == [late["id"]]


async def test_tenants_never_see_each_others_requests_and_operators_see_all(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a = await make_world(client, sessions)
    b = await make_world(client, sessions)
    filed_a = await file(client, a)
    filed_b = await file(client, b)

    seen_by_b = await client.get(URL, headers=b.admin.headers, params={"tenant_id": a.tenant_id})
    assert [i["id"] for i in seen_by_b.json()["items"]] == [filed_b["id"]]
    for method, path, body in [
        ("GET", f"{URL}/{filed_a['id']}", None),
        ("POST", f"{URL}/{filed_a['id']}/messages", {"body": "peek"}),
    ]:
        answer = await client.request(method, path, headers=b.supervisor.headers, json=body)
        assert answer.status_code == 404, (path, answer.text)

    everything = await client.get(URL, headers=a.operator.headers, params={"limit": 200})
    ids = set()
    page = everything.json()
    ids |= {i["id"] for i in page["items"]}
    while page["next_cursor"]:
        page = (
            await client.get(
                URL,
                headers=a.operator.headers,
                params={"limit": 200, "cursor": page["next_cursor"]},
            )
        ).json()
        ids |= {i["id"] for i in page["items"]}
    assert {filed_a["id"], filed_b["id"]} <= ids

    for_agent = await client.get(URL, headers=a.agent.headers)
    assert for_agent.status_code == 403
    by_agent = await client.post(
        URL,
        headers=a.agent.headers,
        json={"subject": "x", "body": "y", "priority": "low"},
    )
    assert by_agent.status_code == 403
    by_operator = await client.post(
        URL,
        headers=a.operator_headers,
        json={"subject": "x", "body": "y", "priority": "low"},
    )
    assert by_operator.status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"subject": "", "body": "y", "priority": "low"}, "body.subject"),
        ({"subject": "a\nb", "body": "y", "priority": "low"}, "body.subject"),
        ({"subject": "x" * 201, "body": "y", "priority": "low"}, "body.subject"),
        ({"subject": "x", "body": "   ", "priority": "low"}, "body.body"),
        ({"subject": "x", "body": "y" * 10_001, "priority": "low"}, "body.body"),
        ({"subject": "x", "body": "y", "priority": "urgent"}, "body.priority"),
        ({"subject": "x", "body": "y"}, "body.priority"),
        ({"subject": "x", "body": "y", "priority": "low", "status": "closed"}, "body.status"),
    ],
)
async def test_bad_requests_are_refused_naming_the_field(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    body: dict[str, str],
    field: str,
) -> None:
    world = await make_world(client, sessions)
    answer = await client.post(URL, headers=world.admin.headers, json=body)
    assert answer.status_code == 422, answer.text
    assert field in fields_of(answer)
    assert (await client.get(URL, headers=world.admin.headers)).json()["items"] == []
    bad_status = await client.get(URL, headers=world.admin.headers, params={"status": "late"})
    assert bad_status.status_code == 422
    assert "query.status" in fields_of(bad_status)
