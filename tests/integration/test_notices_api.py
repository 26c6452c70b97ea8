"""The operator's notices through the API: the month of notice, the audience, isolation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.notices.models import Notice
from graam_pbx.notices.service import SHOWN_AFTER_EFFECT, one_month_after
from tests.factories import fields_of, make_world, unique

URL = "/api/v1/notices"


def today() -> date:
    return datetime.now(UTC).date()


async def test_a_notice_earlier_than_a_month_ahead_is_refused(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    earliest = one_month_after(today())
    for day in (today(), earliest - timedelta(days=1), date(2020, 1, 1)):
        answer = await client.post(
            URL,
            headers=world.operator.headers,
            json={"title": "Too soon", "body": "x", "effective_on": day.isoformat()},
        )
        assert answer.status_code == 422, answer.text
        assert fields_of(answer) == {"body.effective_on"}
    taken = await client.post(
        URL,
        headers=world.operator.headers,
        json={
            "title": "Just in time",
            "body": "x",
            "effective_on": earliest.isoformat(),
            "tenant_ids": [world.tenant_id],
        },
    )
    assert taken.status_code == 201, taken.text
    assert taken.json()["shown_until"] == (earliest + SHOWN_AFTER_EFFECT).isoformat()

    for body, field in [
        ({"title": "", "body": "x", "effective_on": earliest.isoformat()}, "body.title"),
        ({"title": "t", "body": "", "effective_on": earliest.isoformat()}, "body.body"),
        ({"title": "t", "body": "x", "effective_on": "soon"}, "body.effective_on"),
        (
            {"title": "t", "body": "x", "effective_on": earliest.isoformat(), "tenant_ids": []},
            "body.tenant_ids",
        ),
        (
            {
                "title": "t",
                "body": "x",
                "effective_on": earliest.isoformat(),
                "tenant_ids": [2**62],
            },
            "body.tenant_ids",
        ),
    ]:
        answer = await client.post(URL, headers=world.operator.headers, json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert field in fields_of(answer)

    by_admin = await client.post(
        URL,
        headers=world.admin.headers,
        json={"title": "t", "body": "x", "effective_on": earliest.isoformat()},
    )
    assert by_admin.status_code == 403


async def test_a_tenant_sees_only_the_notices_meant_for_it(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a = await make_world(client, sessions)
    b = await make_world(client, sessions)
    effective = (one_month_after(today()) + timedelta(days=3)).isoformat()
    to_a = await client.post(
        URL,
        headers=a.operator.headers,
        json={
            "title": unique("only-a"),
            "body": "for a",
            "effective_on": effective,
            "tenant_ids": [a.tenant_id],
        },
    )
    to_all = await client.post(
        URL,
        headers=a.operator.headers,
        json={"title": unique("all"), "body": "for all", "effective_on": effective},
    )
    assert to_a.status_code == to_all.status_code == 201
    seen_a = {n["id"] for n in (await client.get(URL, headers=a.agent.headers)).json()["items"]}
    seen_b = (await client.get(URL, headers=b.admin.headers)).json()["items"]
    assert {to_a.json()["id"], to_all.json()["id"]} <= seen_a
    assert to_a.json()["id"] not in {n["id"] for n in seen_b}
    assert to_all.json()["id"] in {n["id"] for n in seen_b}
    assert all(n["tenant_ids"] is None for n in seen_b)  # never the other tenants' ids
    assert (
        await client.get(f"{URL}/{to_a.json()['id']}", headers=b.admin.headers)
    ).status_code == 404
    assert (
        await client.get(f"{URL}/{to_a.json()['id']}", headers=a.admin.headers)
    ).status_code == 200

    everything = await client.get(URL, headers=a.operator.headers, params={"limit": 200})
    assert everything.status_code == 200
    mine = (await client.get(f"{URL}/{to_a.json()['id']}", headers=a.operator.headers)).json()
    assert mine["tenant_ids"] == [a.tenant_id]

    # Long after its effective date, a notice is no longer shown.
    async with sessions() as session, session.begin():
        await session.execute(
            update(Notice)
            .where(Notice.id == to_all.json()["id"])
            .values(effective_on=today() - SHOWN_AFTER_EFFECT - timedelta(days=1))
        )
    seen_now = {n["id"] for n in (await client.get(URL, headers=b.admin.headers)).json()["items"]}
    assert to_all.json()["id"] not in seen_now
