"""An agent starts, pauses and resumes its call's recording through the API (what the
console's buttons post), through the real Asterisk: a queue whose policy records on demand,
a carrier's caller speaking a steady tone, the agent's sipp phone answering.

Nothing is recorded before the agent starts; the stretch paused is not in the recording;
every start and pause is audited; nobody but the user on the call changes it.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from graam_pbx.ami import channels
from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.audit.models import AuditEntry
from graam_pbx.recordings import spool as spooled
from tests.conftest import Asterisk, RunningApp
from tests.e2e.phones import speaking_caller
from tests.e2e.sipp import SippPool
from tests.e2e.test_calls import CARRIER_IP, Sessions
from tests.e2e.test_recordings import agent_leg_of, recorded_queue, recordings_of
from tests.factories import TenantWorld, make_world
from tests.waiting import until

URL = "/api/v1/my-call/recording"
WAV_SECOND = 8000 * 2  # bytes of one second of Asterisk's 8 kHz 16-bit mono WAV


async def on_demand(client: httpx.AsyncClient, world: TenantWorld, queue_id: int) -> None:
    """The queue's rule, made on demand."""
    rules = await client.get("/api/v1/recording-rules", headers=world.admin.headers)
    (rule,) = [r for r in rules.json()["items"] if r["queue_id"] == queue_id]
    changed = await client.patch(
        f"/api/v1/recording-rules/{rule['id']}",
        headers=world.admin.headers,
        json={"mode": "on_demand"},
    )
    assert changed.status_code == 200, changed.text


def spooled_bytes(root: Path, tenant_id: int) -> int:
    """The audio Asterisk has written so far of the tenant's recordings (0: no file)."""
    return sum(
        leg.path.stat().st_size - 44 for leg in spooled.files(root) if leg.tenant_id == tenant_id
    )


async def put(client: httpx.AsyncClient, world: TenantWorld, recording: bool) -> dict[str, Any]:
    response = await client.put(URL, headers=world.agent.headers, json={"recording": recording})
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()
    assert state["recording"] is recording, state
    return state


async def test_an_agent_starts_pauses_and_resumes_its_calls_recording_through_the_api(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    world = await make_world(client, sessions)
    agent = world.agent.headers
    # Not on a call: nothing to read or change.
    idle = await client.get(URL, headers=agent)
    assert (idle.status_code, idle.json()["error_id"]) == (409, "not-on-call"), idle.text

    queue, number = await recorded_queue(
        pbx, client, sessions, applier, sipp, world, "235", phone_scenario="uas_answer.xml"
    )
    await on_demand(client, world, queue["id"])
    await applier.settled()
    spool_root = asterisk.sandbox.recordings_spool()
    caller = await speaking_caller(sipp, tmp_path, number["e164"], carrier_ip=CARRIER_IP).start()

    # The agent answered: its call may be recorded, on demand, and is not yet.
    found: list[dict[str, Any]] = []

    async def recordable() -> bool:
        response = await client.get(URL, headers=agent)
        if response.status_code == 200 and response.json()["recordable"]:
            found.append(response.json())
            return True
        return False

    await until(recordable, "the agent's answered call, ready to be recorded")
    state = found[-1]
    assert (state["mode"], state["recording"]) == ("on_demand", False), state
    assert channels.device_of_channel(state["channel"]) is not None, state
    assert spooled_bytes(spool_root, world.tenant_id) == 0  # nothing recorded yet

    # Only the user on the call changes it: the tenant's supervisor and an operator have no
    # call; an agent of another tenant neither.
    other = await make_world(client, sessions)
    for headers in (world.supervisor.headers, world.operator_headers, other.agent.headers):
        refused = await client.put(URL, headers=headers, json={"recording": True})
        assert (refused.status_code, refused.json()["error_id"]) == (409, "not-on-call")

    # Started: Asterisk writes the call's audio.
    await put(client, world, True)
    started = time.monotonic()

    async def written(size: int) -> bool:
        return spooled_bytes(spool_root, world.tenant_id) >= size

    await until(lambda: written(WAV_SECOND), "a second of the call recorded")
    assert await put(client, world, True) == {**state, "recording": True}  # already: unchanged

    # Paused while the call lasts three more seconds (as Asterisk counts the channel's age).
    paused_state = await put(client, world, False)
    paused = time.monotonic()
    age: list[int] = []

    async def older(seconds: int) -> bool:
        events = await pbx.runtime.ami.action_list("CoreShowChannels", {})
        for event in events:
            channel = channels.live_channel(event)
            if channel is not None and channel.name == paused_state["channel"]:
                age.append(channel.seconds)
                return channel.seconds >= seconds
        return False

    await until(lambda: older(0), "the agent's channel listed")
    await until(lambda: older(age[0] + 3), "three seconds of the call paused")
    resumed = time.monotonic()
    before_resume = spooled_bytes(spool_root, world.tenant_id)
    await put(client, world, True)
    await until(lambda: written(before_resume + WAV_SECOND), "a second more recorded")

    # The agent hangs up.
    await pbx.runtime.ami.action("Hangup", {"Channel": paused_state["channel"]})
    ended = await caller.wait()
    assert ended.ok, ended.describe()

    async def registered() -> bool:
        return len(await recordings_of(sessions, world.tenant_id)) == 1

    await until(registered, "the recording registered", timeout=30)
    (recording,) = await recordings_of(sessions, world.tenant_id)
    assert (recording.linkedid, recording.queue_id) == (state["call"], queue["id"])
    assert recording.agent_user_id == world.agent.user_id
    leg = await agent_leg_of(sessions, recording)
    # What was said before the start and while paused is not in it; what was said while
    # recording is (the first stretch whole; the file grew after the resume, above: the
    # second is there too, of a length the spool's buffered writes leave unsure).
    kept = Decimal(recording.duration_ms) / 1000
    assert leg.billsec - kept >= Decimal(str(resumed - paused)) - Decimal("0.5"), (
        leg.billsec,
        kept,
    )
    assert kept >= Decimal(str(paused - started)) - Decimal("0.5"), kept

    async with sessions() as session:
        actions = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(
                    AuditEntry.tenant_id == world.tenant_id,
                    AuditEntry.object_type == "call",
                    AuditEntry.object_id == state["call"],
                )
                .order_by(AuditEntry.id)
            )
        )
    assert actions == ["recording-start", "recording-pause", "recording-start"]
