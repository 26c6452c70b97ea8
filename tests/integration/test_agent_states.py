"""The pause-reason catalogue and the agents' state timeline through the real API and database.

Calls ringing and answered by agents (the states Asterisk drives) are proven with sipp in
tests/e2e/test_agent_states.py.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from datetime import datetime

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents import states
from graam_pbx.agents.timeline import AgentTimeline
from graam_pbx.ami import EventBus
from graam_pbx.audit.models import AuditEntry
from tests.factories import TenantWorld, fields_of, make_world
from tests.integration.test_agent_sessions import new_agent, session_url

Sessions = async_sessionmaker[AsyncSession]
# An agent's states through a queue call answered and wrapped up.
A_CALL_WITH_WRAP_UP = ["available", "ringing", "on-call", "wrap-up", "available"]
REASONS = "/api/v1/pause-reasons"


@dataclass(frozen=True)
class Interval:
    state: str
    code: str | None
    started_at: datetime
    ended_at: datetime | None


async def timeline(sessions: Sessions, agent_id: int) -> list[Interval]:
    """The agent's intervals, oldest first."""
    async with sessions() as session:
        rows = await session.execute(
            text(
                "SELECT state, pause_reason_code, started_at, ended_at "
                "FROM agent_state_intervals WHERE agent_id = :a ORDER BY started_at, id"
            ),
            {"a": agent_id},
        )
        return [Interval(*row) for row in rows]


def assert_contiguous(intervals: list[Interval]) -> None:
    """Each interval starts when the one before ended; only the last is open."""
    assert intervals, "no interval"
    for before, after in itertools.pairwise(intervals):
        assert before.ended_at is not None, intervals
        assert before.ended_at == after.started_at, intervals
        assert before.started_at <= before.ended_at, intervals
    assert intervals[-1].ended_at is None, intervals


async def add_reason(
    client: httpx.AsyncClient, world: TenantWorld, code: str, label: str
) -> httpx.Response:
    response = await client.post(
        REASONS, headers=world.admin.headers, json={"code": code, "label": label}
    )
    assert response.status_code == 201, response.text
    return response


async def test_the_catalogue_admins_write_members_read_and_the_audit_keeps(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    made = await add_reason(client, world, "2", "Lunch")
    reason_id = made.json()["id"]
    assert made.json()["code"] == "2" and made.json()["label"] == "Lunch"

    taken = await client.post(
        REASONS, headers=world.admin.headers, json={"code": "2", "label": "Again"}
    )
    assert taken.status_code == 409, taken.text
    assert taken.json()["details"]["field"] == "code"
    for body, field in (
        ({"code": "a1", "label": "Bad"}, "body.code"),
        ({"code": "123456789", "label": "Long"}, "body.code"),
        ({"code": "3", "label": "<script>"}, "body.label"),
        ({"code": "3"}, "body.label"),
    ):
        bad = await client.post(REASONS, headers=world.admin.headers, json=body)
        assert bad.status_code == 422, bad.text
        assert fields_of(bad) == {field}, bad.text

    for role in ("supervisor", "agent"):
        headers = world.actor(role).headers
        listed = await client.get(REASONS, headers=headers)
        assert listed.status_code == 200, listed.text
        assert [r["code"] for r in listed.json()["items"]] == ["2"]
        one = await client.get(f"{REASONS}/{reason_id}", headers=headers)
        assert one.status_code == 200, one.text
        refused = await client.post(REASONS, headers=headers, json={"code": "4", "label": "Mine"})
        assert refused.status_code == 403, refused.text
        refused = await client.delete(f"{REASONS}/{reason_id}", headers=headers)
        assert refused.status_code == 403, refused.text

    changed = await client.patch(
        f"{REASONS}/{reason_id}", headers=world.admin.headers, json={"label": "Meal"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["label"] == "Meal"
    gone = await client.delete(f"{REASONS}/{reason_id}", headers=world.admin.headers)
    assert gone.status_code == 204, gone.text
    missing = await client.get(f"{REASONS}/{reason_id}", headers=world.admin.headers)
    assert missing.status_code == 404, missing.text

    async with sessions() as session:
        actions = (
            await session.scalars(
                select(AuditEntry.action)
                .where(
                    AuditEntry.tenant_id == world.tenant_id,
                    AuditEntry.object_type == "pause_reason",
                )
                .order_by(AuditEntry.id)
            )
        ).all()
    assert actions == ["create", "update", "delete"]


async def test_an_unknown_pause_code_is_422_and_changes_nothing(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=2)
    await add_reason(client, world, "2", "Lunch")
    agent = await new_agent(client, world)
    supervisor = world.supervisor.headers
    logged = await client.post(session_url(agent), headers=supervisor)
    assert logged.status_code == 201, logged.text

    for reason in ("9", "lunch"):
        refused = await client.post(
            session_url(agent) + "/pause",
            headers=supervisor,
            json={"paused": True, "reason": reason},
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["error_id"] == "validation-failed"
        assert fields_of(refused) == {"body.reason"}, refused.text
    live = await client.get(session_url(agent), headers=supervisor)
    assert live.json()["paused"] is False
    assert [(i.state, i.code) for i in await timeline(sessions, agent.user_id)] == [
        ("available", None)
    ]


async def test_logins_pauses_and_logouts_make_a_contiguous_timeline(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=2)
    await add_reason(client, world, "2", "Lunch")
    await add_reason(client, world, "31", "Training")
    agent = await new_agent(client, world)
    supervisor = world.supervisor.headers
    pause = session_url(agent) + "/pause"

    assert (await client.post(session_url(agent), headers=supervisor)).status_code == 201
    for body in (
        {"paused": True, "reason": "2"},
        {"paused": True, "reason": "31"},  # another reason: another interval
        {"paused": False},
        {"paused": True},  # a pause without a reason
        {"paused": True},  # no change: no interval
    ):
        response = await client.post(pause, headers=supervisor, json=body)
        assert response.status_code == 200, response.text
    assert (await client.delete(session_url(agent), headers=supervisor)).status_code == 204
    assert (await client.post(session_url(agent), headers=supervisor)).status_code == 201

    intervals = await timeline(sessions, agent.user_id)
    assert [(i.state, i.code) for i in intervals] == [
        ("available", None),
        ("paused", "2"),
        ("paused", "31"),
        ("available", None),
        ("paused", None),
        ("logged-out", None),
        ("available", None),
    ]
    assert_contiguous(intervals)
    async with sessions() as session:
        other = await session.scalar(
            text(
                "SELECT count(*) FROM agent_state_intervals WHERE agent_id = :a AND tenant_id <> :t"
            ),
            {"a": agent.user_id, "t": world.tenant_id},
        )
    assert other == 0


async def test_a_tenant_without_a_catalogue_keeps_free_reasons(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=1)
    agent = await new_agent(client, world)
    supervisor = world.supervisor.headers
    assert (await client.post(session_url(agent), headers=supervisor)).status_code == 201
    paused = await client.post(
        session_url(agent) + "/pause", headers=supervisor, json={"paused": True, "reason": "lunch"}
    )
    assert paused.status_code == 200, paused.text
    intervals = await timeline(sessions, agent.user_id)
    assert [(i.state, i.code) for i in intervals] == [("available", None), ("paused", "lunch")]
    assert_contiguous(intervals)


async def test_a_wrap_up_left_open_by_a_stopped_control_plane_ends_at_the_next_start(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=1)
    agent = await new_agent(client, world)
    assert (
        await client.post(session_url(agent), headers=world.supervisor.headers)
    ).status_code == 201
    async with sessions() as session, session.begin():
        for state in ("ringing", "on-call", "wrap-up"):
            assert await states.enter(session, world.tenant_id, agent.user_id, state)
    # Another control plane's timeline starts: the tenant has no queue with a wrap-up time
    # left, so the wrap-up is over.
    timeline_of_next_run = AgentTimeline(sessions, EventBus())
    await timeline_of_next_run.start()
    try:
        intervals: list[Interval] = []

        async def over() -> bool:
            nonlocal intervals
            intervals = await timeline(sessions, agent.user_id)
            return intervals[-1].state == "available"

        async with asyncio.timeout(10):
            while not await over():
                await asyncio.sleep(0.05)
    finally:
        await timeline_of_next_run.stop()
    assert [i.state for i in intervals] == A_CALL_WITH_WRAP_UP
    assert_contiguous(intervals)


async def test_concurrent_pauses_and_resumes_leave_one_open_interval(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=1)
    await add_reason(client, world, "2", "Lunch")
    agent = await new_agent(client, world)
    supervisor = world.supervisor.headers
    assert (await client.post(session_url(agent), headers=supervisor)).status_code == 201
    bodies = [
        {"paused": True, "reason": "2"} if n % 3 == 0 else {"paused": n % 3 == 1} for n in range(30)
    ]
    responses = await asyncio.gather(
        *(client.post(session_url(agent) + "/pause", headers=supervisor, json=b) for b in bodies)
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    intervals = await timeline(sessions, agent.user_id)
    assert_contiguous(intervals)
    for before, after in itertools.pairwise(intervals):
        assert (before.state, before.code) != (after.state, after.code), intervals
    live = await client.get(session_url(agent), headers=supervisor)
    last = intervals[-1]
    assert (last.state == "paused") is live.json()["paused"]
    assert last.code == live.json()["pause_reason"]


async def test_a_batch_of_moves_is_made_in_its_order_in_one_statement(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=1)
    agent = await new_agent(client, world)
    absent = await new_agent(client, world)  # never logged in
    supervisor = world.supervisor.headers
    assert (await client.post(session_url(agent), headers=supervisor)).status_code == 201
    queue = await client.post(
        "/api/v1/queues", headers=world.admin.headers, json={"name": "w", "wrapup_time": 7}
    )
    assert queue.status_code == 201, queue.text
    tenant, user = world.tenant_id, agent.user_id
    moves = [
        states.Move("live", tenant, user, "ringing", only_from=states.BASE_STATES),
        states.Move("live", tenant, user, "on-call", only_from=frozenset({"ringing"})),
        states.Move("complete", tenant, user, queue_id=queue.json()["id"]),
        states.Move("any", tenant, user, "ringing", only_from=frozenset({"available"})),
        states.Move("base", tenant, user, only_from=frozenset({"wrap-up"})),
        states.Move("live", tenant, absent.user_id, "ringing"),
        states.Move("base", tenant, absent.user_id),
    ]
    async with sessions() as session, session.begin():
        results = await states.apply(session, moves)
    # Ringing, on call, 7 s of wrap-up; not ringing out of wrap-up; back to available; an
    # agent not logged in has no call states and no base.
    assert results == [1, 1, 7, 0, 1, 0, 0]
    intervals = await timeline(sessions, user)
    assert [i.state for i in intervals] == A_CALL_WITH_WRAP_UP
    assert_contiguous(intervals)
    assert await timeline(sessions, absent.user_id) == []
