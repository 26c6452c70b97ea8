"""The agents' state timeline with real phones: a queue call rings and is answered by a sipp
agent, and ``*47<code>`` pauses with a reason of the tenant's catalogue (or is refused)."""

from __future__ import annotations

from pathlib import Path

import httpx

from graam_pbx.asterisk.applier import ConfigApplier
from tests.conftest import Asterisk, RunningApp
from tests.e2e.agent_tenant import one_agent_queue, retire
from tests.e2e.sipp import SippPool
from tests.e2e.test_agent_login import (
    Sessions,
    agi_commands,
    answered_call,
    configured,
    dial,
    new_tenant,
    prompts_by_device,
    register,
    session_url,
)
from tests.integration.test_agent_states import Interval, assert_contiguous, timeline
from tests.waiting import until

REASONS = "/api/v1/pause-reasons"


def states_of(intervals: list[Interval]) -> list[tuple[str, str | None]]:
    return [(i.state, i.code) for i in intervals]


async def wait_for_states(
    sessions: Sessions, agent_id: int, expected: list[tuple[str, str | None]]
) -> list[Interval]:
    """The agent's timeline once it reads ``expected`` (or the wait fails saying what it read)."""
    seen: list[Interval] = []

    async def arrived() -> bool:
        nonlocal seen
        seen = await timeline(sessions, agent_id)
        return states_of(seen) == expected

    try:
        await until(arrived, "agent timeline", timeout=20)
    except AssertionError:
        raise AssertionError(f"timeline {states_of(seen)} is not {expected}") from None
    return seen


async def test_login_pause_a_queue_call_and_logout_make_the_timeline(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    # A wrap-up of one second after each call, so the timeline shows one.
    world, agent, did = await one_agent_queue(pbx, client, sessions, applier, wrapup_seconds=1)
    reason = await client.post(
        REASONS, headers=world.admin.headers, json={"code": "2", "label": "Lunch"}
    )
    assert reason.status_code == 201, reason.text
    phone = await register(tmp_path, asterisk, sipp, [agent], "uas_answer_hangup.xml")

    supervisor = world.supervisor.headers
    pause = session_url(agent.user_id) + "/pause"
    assert (await client.post(session_url(agent.user_id), headers=supervisor)).status_code == 201
    for body in ({"paused": True, "reason": "2"}, {"paused": False}):
        response = await client.post(pause, headers=supervisor, json=body)
        assert response.status_code == 200, response.text
    worker = pbx.runtime.agents
    assert worker is not None
    await worker.settled()

    await answered_call(sipp, did, phone)
    before_logout = [
        ("available", None),
        ("paused", "2"),
        ("available", None),
        ("ringing", None),
        ("on-call", None),
        ("wrap-up", None),
        ("available", None),
    ]
    await wait_for_states(sessions, agent.user_id, before_logout)

    assert (await client.delete(session_url(agent.user_id), headers=supervisor)).status_code == 204
    intervals = await timeline(sessions, agent.user_id)
    assert states_of(intervals) == [*before_logout, ("logged-out", None)]
    assert_contiguous(intervals)

    await retire(pbx, applier, world.tenant_id)


async def test_star_47_with_a_code_pauses_with_that_reason_and_an_unknown_code_is_refused(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    world, made = await new_tenant(pbx, client, sessions, licences=1, agents=1)
    (agent,) = made.agents
    await configured(applier, {world.tenant_id})
    reason = await client.post(
        REASONS, headers=world.admin.headers, json={"code": "31", "label": "Training"}
    )
    assert reason.status_code == 201, reason.text
    await register(tmp_path, asterisk, sipp, [agent])
    queue = f"t{world.tenant_id}-q{made.queue_id}"
    worker = pbx.runtime.agents
    assert worker is not None

    await dial(tmp_path, asterisk, [agent], "*45")
    await dial(tmp_path, asterisk, [agent], "*4731")  # pause, reason Training
    await worker.settled()
    (member,) = [
        e
        for e in await pbx.runtime.ami.action_list("QueueStatus", {"Queue": queue})
        if e.name == "QueueMember"
    ]
    assert member.get("Paused") == "1"
    assert member.get("PausedReason") == "31"
    await dial(tmp_path, asterisk, [agent], "*47")  # resume

    async with agi_commands(pbx) as commands:
        await dial(tmp_path, asterisk, [agent], "*479")  # no such reason
    assert prompts_by_device(commands)[agent.sip_username] == ["invalid"]
    results = [
        c.get("Command", "")
        for c in commands
        if c.get("Command", "").startswith("SET VARIABLE GRAAM_AGENT_RESULT")
    ]
    assert results == ['SET VARIABLE GRAAM_AGENT_RESULT "unknown-reason"'], results
    live = await client.get(session_url(agent.user_id), headers=world.supervisor.headers)
    assert live.json()["paused"] is False

    await dial(tmp_path, asterisk, [agent], "*46")
    intervals = await timeline(sessions, agent.user_id)
    assert states_of(intervals) == [
        ("available", None),
        ("paused", "31"),
        ("available", None),
        ("logged-out", None),
    ]
    assert_contiguous(intervals)
    await retire(pbx, applier, world.tenant_id)
