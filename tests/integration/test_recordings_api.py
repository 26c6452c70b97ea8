"""The recording policy and the recordings through the real API and database: rules and
settings with their refusals, who reaches which recording, deletion, erasure and retention.

Recordings are registered here as the collector registers them (a row and its file in the
store); tests/e2e/test_recordings.py makes them with real calls.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit.models import AuditEntry
from graam_pbx.recordings.models import Recording
from graam_pbx.recordings.spool import MEDIA_TYPE
from tests.conftest import RunningApp
from tests.factories import TenantWorld, make_world
from tests.integration.test_prompts_api import create_prompt

Sessions = async_sessionmaker[AsyncSession]


async def new_queue(client: httpx.AsyncClient, world: TenantWorld) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/queues", headers=world.admin.headers, json={"name": f"q{uuid.uuid4().hex[:8]}"}
    )
    assert response.status_code == 201, response.text
    queue: dict[str, Any] = response.json()
    return queue


async def stored_recording(
    running_app: RunningApp,
    sessions: Sessions,
    world: TenantWorld,
    *,
    agent: int | None = None,
    party: str = "+33612345678",
    started_at: datetime | None = None,
) -> Recording:
    """A recording as the collector leaves it: its file in the store, its row."""
    store = running_app.runtime.recordings
    assert store is not None
    uniqueid = f"test-{uuid.uuid4().hex}"
    key = f"t{world.tenant_id}/2026/12/05/{uniqueid}.ogg"
    data = uuid.uuid4().bytes * 64
    store.put(key, data)
    recording = Recording(
        tenant_id=world.tenant_id,
        linkedid=f"call-{uniqueid}",
        uniqueid=uniqueid,
        direction="inbound",
        queue_id=None,
        agent_user_id=agent if agent is not None else world.agent.user_id,
        party_number=party,
        started_at=started_at or datetime.now(UTC),
        duration_ms=1000,
        size_bytes=len(data),
        sha256="0" * 64,
        media_type=MEDIA_TYPE,
        storage_key=key,
    )
    async with sessions() as session, session.begin():
        session.add(recording)
    return recording


async def test_rules_name_one_scope_of_the_tenant_once(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    admin = world.admin.headers
    queue = await new_queue(client, world)
    foreign_queue = await new_queue(client, other)

    made = await client.post(
        "/api/v1/recording-rules", headers=admin, json={"queue_id": queue["id"], "mode": "always"}
    )
    assert made.status_code == 201, made.text
    assert made.json()["direction"] is None
    again = await client.post(
        "/api/v1/recording-rules", headers=admin, json={"queue_id": queue["id"], "mode": "never"}
    )
    assert again.status_code == 409, again.text
    both = await client.post(
        "/api/v1/recording-rules",
        headers=admin,
        json={"queue_id": queue["id"], "user_id": world.agent.user_id, "mode": "always"},
    )
    assert both.status_code == 422
    foreign = await client.post(
        "/api/v1/recording-rules",
        headers=admin,
        json={"queue_id": foreign_queue["id"], "mode": "always"},
    )
    assert foreign.status_code == 422
    assert foreign.json()["details"]["errors"][0]["field"] == "body.queue_id"
    not_agent = await client.post(
        "/api/v1/recording-rules",
        headers=admin,
        json={"user_id": world.supervisor.user_id, "mode": "always"},
    )
    assert not_agent.status_code == 422
    assert not_agent.json()["details"]["errors"][0]["field"] == "body.user_id"
    unknown_mode = await client.post(
        "/api/v1/recording-rules", headers=admin, json={"mode": "sometimes"}
    )
    assert unknown_mode.status_code == 422

    # Supervisors read the policy; only admins change it; another tenant does not see it.
    listed = await client.get("/api/v1/recording-rules", headers=world.supervisor.headers)
    assert [rule["id"] for rule in listed.json()["items"]] == [made.json()["id"]]
    refused = await client.post(
        "/api/v1/recording-rules", headers=world.supervisor.headers, json={"mode": "always"}
    )
    assert refused.status_code == 403
    rule_url = f"/api/v1/recording-rules/{made.json()['id']}"
    assert (await client.get(rule_url, headers=other.admin.headers)).status_code == 404
    changed = await client.patch(rule_url, headers=admin, json={"mode": "on_demand"})
    assert changed.json()["mode"] == "on_demand"
    assert (await client.delete(rule_url, headers=admin)).status_code == 204
    assert (await client.get(rule_url, headers=admin)).status_code == 404


async def test_settings_default_then_change_and_keep_their_announcement(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    admin = world.admin.headers
    defaults = await client.get("/api/v1/recording-settings", headers=world.supervisor.headers)
    assert defaults.json() == {
        "tenant_id": world.tenant_id,
        "announce_prompt_id": None,
        "retention_days": 90,
        "agents_play_own": False,
        "supervision_tells_agent": True,
    }
    foreign_prompt = await create_prompt(client, other)
    refused = await client.patch(
        "/api/v1/recording-settings",
        headers=admin,
        json={"announce_prompt_id": foreign_prompt["id"]},
    )
    assert refused.status_code == 422
    assert refused.json()["details"]["errors"][0]["field"] == "body.announce_prompt_id"
    too_long = await client.patch(
        "/api/v1/recording-settings", headers=admin, json={"retention_days": 3651}
    )
    assert too_long.status_code == 422

    prompt = await create_prompt(client, world)
    changed = await client.patch(
        "/api/v1/recording-settings",
        headers=admin,
        json={"announce_prompt_id": prompt["id"], "retention_days": 30},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["retention_days"] == 30
    assert (await client.get("/api/v1/recording-settings", headers=admin)).json()[
        "announce_prompt_id"
    ] == prompt["id"]
    # The announcement's prompt is in use: kept.
    in_use = await client.delete(f"/api/v1/prompts/{prompt['id']}", headers=admin)
    assert in_use.status_code == 409, in_use.text
    # Another tenant's settings are its own.
    theirs = await client.get("/api/v1/recording-settings", headers=other.admin.headers)
    assert theirs.json()["retention_days"] == 90
    assert (
        await client.patch(
            "/api/v1/recording-settings",
            headers=world.supervisor.headers,
            json={"retention_days": 10},
        )
    ).status_code == 403


async def test_who_reaches_a_recording(
    running_app: RunningApp, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    mine = await stored_recording(running_app, sessions, world)
    theirs = await stored_recording(running_app, sessions, world, agent=world.admin.user_id)
    url = f"/api/v1/recordings/{mine.id}"
    for role in ("admin", "supervisor"):
        assert (await client.get(url, headers=world.headers(role))).status_code == 200
    # Agents: not until the tenant allows it, then only their own.
    assert (await client.get(url, headers=world.agent.headers)).status_code == 403
    allowed = await client.patch(
        "/api/v1/recording-settings", headers=world.admin.headers, json={"agents_play_own": True}
    )
    assert allowed.status_code == 200
    assert (await client.get(url, headers=world.agent.headers)).status_code == 200
    assert (await client.get(f"{url}/audio", headers=world.agent.headers)).status_code == 200
    listed = await client.get("/api/v1/recordings", headers=world.agent.headers)
    assert [item["id"] for item in listed.json()["items"]] == [mine.id]
    assert (
        await client.get(f"/api/v1/recordings/{theirs.id}", headers=world.agent.headers)
    ).status_code == 404
    # Operators configure, never listen.
    assert (await client.get(url, headers=world.operator_headers)).status_code == 403
    assert (
        await client.get("/api/v1/recordings", headers=world.operator_headers)
    ).status_code == 403
    # Only admins delete.
    assert (await client.delete(url, headers=world.supervisor.headers)).status_code == 403
    assert (await client.delete(url, headers=world.agent.headers)).status_code == 403
    deleted = await client.delete(url, headers=world.admin.headers)
    assert deleted.status_code == 204
    store = running_app.runtime.recordings
    assert store is not None and store.size(mine.storage_key) is None
    assert (await client.get(url, headers=world.admin.headers)).status_code == 404


async def test_one_persons_recordings_are_erased_on_request(
    running_app: RunningApp, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    person = "+33699887766"
    erased = [await stored_recording(running_app, sessions, world, party=person) for _ in range(3)]
    kept = await stored_recording(running_app, sessions, world, party="+33611111111")
    elsewhere = await stored_recording(running_app, sessions, other, party=person)

    neither = await client.post("/api/v1/recording-erasures", headers=world.admin.headers, json={})
    assert neither.status_code == 422
    answer = await client.post(
        "/api/v1/recording-erasures", headers=world.admin.headers, json={"party_number": person}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"erased": 3}
    store = running_app.runtime.recordings
    assert store is not None
    assert all(store.size(r.storage_key) is None for r in erased)
    assert store.size(kept.storage_key) is not None
    assert store.size(elsewhere.storage_key) is not None  # another tenant's: untouched
    async with sessions() as session:
        left = set(
            await session.scalars(select(Recording.id).where(Recording.party_number == person))
        )
        audited = await session.scalar(
            select(AuditEntry.changes).where(
                AuditEntry.tenant_id == world.tenant_id, AuditEntry.action == "erase"
            )
        )
    assert left == {elsewhere.id}
    assert audited == {"party_number": person, "erased": 3}


async def test_recordings_past_their_tenants_retention_are_purged(
    running_app: RunningApp, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    short = await make_world(client, sessions)
    default = await make_world(client, sessions)
    await client.patch(
        "/api/v1/recording-settings", headers=short.admin.headers, json={"retention_days": 7}
    )
    now = datetime.now(UTC)
    old_short = await stored_recording(
        running_app, sessions, short, started_at=now - timedelta(days=8)
    )
    young_short = await stored_recording(
        running_app, sessions, short, started_at=now - timedelta(days=6)
    )
    kept_default = await stored_recording(
        running_app, sessions, default, started_at=now - timedelta(days=89)
    )
    old_default = await stored_recording(
        running_app, sessions, default, started_at=now - timedelta(days=91)
    )
    collector = running_app.runtime.collector
    assert collector is not None
    assert await collector.purge() >= 2
    async with sessions() as session:
        left = set(
            await session.scalars(
                select(Recording.id).where(
                    Recording.id.in_(
                        [old_short.id, young_short.id, kept_default.id, old_default.id]
                    )
                )
            )
        )
    assert left == {young_short.id, kept_default.id}
    store = running_app.runtime.recordings
    assert store is not None
    assert store.size(old_short.storage_key) is None
    assert store.size(old_default.storage_key) is None
    assert store.size(young_short.storage_key) is not None
