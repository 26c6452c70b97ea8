"""Call recordings through the real Asterisk: a queue whose policy records every call; the
agent's leg recorded by MixMonitor, collected from Asterisk's spool into the store, registered
with its call, and played back over HTTP (ranges, audit, tenant isolation).

The caller (sipp) speaks a steady tone the whole call; the agent's phone (sipp) answers and
hangs up after five seconds.
"""

from __future__ import annotations

import hashlib
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy
import soundfile
from sqlalchemy import select

from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.audit.models import AuditEntry
from graam_pbx.cdr.models import Cdr
from graam_pbx.queue_calls.models import QueueCall
from graam_pbx.recordings.models import Recording
from graam_pbx.recordings.store import LocalStore
from graam_pbx.recordings.worker import RecordingCollector
from tests.conftest import Asterisk, RunningApp
from tests.e2e.agent_tenant import add_agent_member
from tests.e2e.phones import speaking_caller
from tests.e2e.rtp_pcap import dtmf_pcap
from tests.e2e.sipp import SCENARIOS, SippPool
from tests.e2e.test_calls import (
    CALLER,
    CARRIER_IP,
    Sessions,
    created,
    new_device,
    new_number,
    new_trunk,
    registered_phone,
    route_number,
)
from tests.factories import TenantWorld, make_world
from tests.waiting import until


async def recorded_queue(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
    world: TenantWorld,
    extension: str,
    phone_scenario: str = "uas_answer_talk_long.xml",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A queue whose calls are all recorded, its agent's phone answering with
    ``phone_scenario``, and its number: (queue, number)."""
    admin = world.admin.headers
    device = await new_device(client, world, extension, world.agent.user_id)
    queue = await created(
        await client.post("/api/v1/queues", headers=admin, json={"name": "recorded"})
    )
    await created(
        await client.post(
            "/api/v1/recording-rules",
            headers=admin,
            json={"queue_id": queue["id"], "mode": "always"},
        )
    )
    number = await new_number(client, world)
    await route_number(client, world, number, {"type": "queue", "id": queue["id"]})
    await new_trunk(client, world, CARRIER_IP)
    await applier.settled()
    await registered_phone(pbx, sipp, device, phone_scenario)
    await add_agent_member(pbx, world, queue, device)
    return queue, number


async def recordings_of(sessions: Sessions, tenant_id: int) -> list[Recording]:
    async with sessions() as session:
        statement = select(Recording).where(Recording.tenant_id == tenant_id)
        return list((await session.scalars(statement.order_by(Recording.id))).all())


async def test_a_recorded_queue_call_is_stored_checksummed_linked_and_played_by_ranges(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    world = await make_world(client, sessions)
    queue, number = await recorded_queue(pbx, client, sessions, applier, sipp, world, "231")
    caller = await speaking_caller(sipp, tmp_path, number["e164"], carrier_ip=CARRIER_IP).start()
    ended = await caller.wait()  # the agent hangs up after five seconds
    assert ended.ok, ended.describe()

    async def registered() -> bool:
        return len(await recordings_of(sessions, world.tenant_id)) == 1

    await until(registered, "the recording registered", timeout=30)
    (recording,) = await recordings_of(sessions, world.tenant_id)
    assert (recording.direction, recording.queue_id, recording.agent_user_id) == (
        "inbound",
        queue["id"],
        world.agent.user_id,
    )
    assert recording.party_number == CALLER
    assert recording.media_type == "audio/ogg; codecs=opus"

    # Linked to its call: the queue call and the agent's CDR share its linkedid.
    async def call_written() -> bool:
        async with sessions() as session:
            return (
                await session.scalar(
                    select(QueueCall.id).where(QueueCall.linkedid == recording.linkedid)
                )
                is not None
                and await session.scalar(
                    select(Cdr.id).where(
                        Cdr.linkedid == recording.linkedid,
                        Cdr.agent_user_id == world.agent.user_id,
                    )
                )
                is not None
            )

    await until(call_written, "the queue call and the agent's CDR written")
    async with sessions() as session:
        answered = await session.scalar(
            select(QueueCall).where(QueueCall.linkedid == recording.linkedid)
        )
        agent_leg = await session.scalar(
            select(Cdr).where(
                Cdr.linkedid == recording.linkedid, Cdr.agent_user_id == world.agent.user_id
            )
        )
    assert answered is not None and answered.outcome == "answered"
    assert agent_leg is not None
    # The recording lasts as long as the agent's leg was bridged (half a second either way:
    # the bridge forms and ends a few packets off the CDR's answer and end).
    assert abs(Decimal(recording.duration_ms) / 1000 - agent_leg.billsec) <= Decimal("0.5")
    assert recording.duration_ms >= 4000

    # Stored as registered: its size and checksum; Ogg Opus holding the caller's tone.
    store = pbx.runtime.recordings
    assert isinstance(store, LocalStore)
    stored = (store.root / recording.storage_key).read_bytes()
    assert len(stored) == recording.size_bytes
    assert hashlib.sha256(stored).hexdigest() == recording.sha256
    audio, rate = soundfile.read(io.BytesIO(stored), dtype="int16")
    assert abs(len(audio) * 1000 // rate - recording.duration_ms) <= 100
    assert numpy.abs(audio.astype(numpy.int32)).max() > 1000, "the caller's voice is in it"
    # Taken out of Asterisk's spool.
    spooled = list(asterisk.sandbox.recordings_spool().glob(f"t{world.tenant_id}/**/*.wav"))
    assert spooled == []

    # Played over HTTP: the whole file, then a range (a player seeking).
    url = f"/api/v1/recordings/{recording.id}/audio"
    supervisor = world.supervisor.headers
    whole = await client.get(url, headers=supervisor)
    assert whole.status_code == 200, whole.text
    assert whole.content == stored
    assert whole.headers["accept-ranges"] == "bytes"
    part = await client.get(url, headers={**supervisor, "Range": "bytes=100-1099"})
    assert part.status_code == 206, part.text
    assert part.content == stored[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(stored)}"
    tail = await client.get(url, headers={**supervisor, "Range": "bytes=-10"})
    assert (tail.status_code, tail.content) == (206, stored[-10:])
    beyond = await client.get(url, headers={**supervisor, "Range": f"bytes={len(stored)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(stored)}"
    download = await client.get(url, params={"download": "true"}, headers=supervisor)
    assert download.headers["content-disposition"].startswith("attachment")

    # Every play (its first request) and download is audited; a seek is not a new play.
    async with sessions() as session:
        actions = list(
            (
                await session.scalars(
                    select(AuditEntry.action)
                    .where(
                        AuditEntry.tenant_id == world.tenant_id,
                        AuditEntry.object_type == "recording",
                        AuditEntry.object_id == str(recording.id),
                    )
                    .order_by(AuditEntry.id)
                )
            ).all()
        )
    assert actions == ["played", "downloaded"]

    listed = await client.get(
        "/api/v1/recordings", headers=supervisor, params={"linkedid": recording.linkedid}
    )
    assert [item["id"] for item in listed.json()["items"]] == [recording.id]
    assert listed.json()["items"][0]["sha256"] == recording.sha256

    # Nobody else reaches it: another tenant (404), the agent by default, the operator.
    other = await make_world(client, sessions)
    for headers in (other.admin.headers, other.supervisor.headers):
        assert (await client.get(url, headers=headers)).status_code == 404
        assert (
            await client.get(f"/api/v1/recordings/{recording.id}", headers=headers)
        ).status_code == 404
    assert (await client.get(url, headers=world.agent.headers)).status_code == 403
    operator = {**world.operator_headers}
    assert (await client.get(url, headers=operator)).status_code == 403


async def agent_leg_of(sessions: Sessions, recording: Recording) -> Cdr:
    async def written() -> bool:
        async with sessions() as session:
            found = await session.scalar(
                select(Cdr.id).where(
                    Cdr.linkedid == recording.linkedid,
                    Cdr.agent_user_id == recording.agent_user_id,
                )
            )
            return found is not None

    await until(written, "the agent's CDR written")
    async with sessions() as session:
        leg = await session.scalar(
            select(Cdr).where(
                Cdr.linkedid == recording.linkedid, Cdr.agent_user_id == recording.agent_user_id
            )
        )
    assert leg is not None
    return leg


async def test_a_pause_from_the_phone_cuts_what_was_said_out_of_the_recording(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    world = await make_world(client, sessions)
    phone = tmp_path / "pausing-phone"
    phone.mkdir()
    (phone / "pause.pcap").write_bytes(dtmf_pcap("*3"))
    (phone / "resume.pcap").write_bytes(dtmf_pcap("*3", later=1))
    scenario = phone / "uas_answer_pause_recording.xml"
    scenario.write_bytes((SCENARIOS / scenario.name).read_bytes())
    _, number = await recorded_queue(
        pbx, client, sessions, applier, sipp, world, "232", phone_scenario=str(scenario)
    )
    caller = await speaking_caller(sipp, tmp_path, number["e164"], carrier_ip=CARRIER_IP).start()
    ended = await caller.wait()  # the agent pauses, resumes, then hangs up
    assert ended.ok, ended.describe()

    async def registered() -> bool:
        return len(await recordings_of(sessions, world.tenant_id)) == 1

    await until(registered, "the recording registered", timeout=30)
    (recording,) = await recordings_of(sessions, world.tenant_id)
    leg = await agent_leg_of(sessions, recording)
    # Two seconds (and the tones' fraction of one) paused: cut out, the rest kept.
    cut = leg.billsec - Decimal(recording.duration_ms) / 1000
    assert Decimal("1.5") <= cut <= Decimal("3.2"), (leg.billsec, recording.duration_ms)
    assert recording.duration_ms >= 2500


async def test_recordings_that_end_while_the_collector_is_down_are_registered_at_its_start(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    world = await make_world(client, sessions)
    _, number = await recorded_queue(pbx, client, sessions, applier, sipp, world, "233")
    running = pbx.runtime.collector
    assert running is not None and pbx.runtime.recordings is not None
    await running.stop()  # the control plane is down: Asterisk records on
    try:
        caller = await speaking_caller(
            sipp, tmp_path, number["e164"], carrier_ip=CARRIER_IP
        ).start()
        ended = await caller.wait()
        assert ended.ok, ended.describe()
        spool_root = asterisk.sandbox.recordings_spool()

        async def closed() -> bool:
            from graam_pbx.recordings import spool as spooled

            legs = [leg for leg in spooled.files(spool_root) if leg.tenant_id == world.tenant_id]
            return len(legs) == 1 and bool(
                (state := spooled.state(legs[0].path)) and state.finished
            )

        await until(closed, "Asterisk's finished recording in its spool")
        assert await recordings_of(sessions, world.tenant_id) == []

        # The control plane starts again: its first pass takes what finished meanwhile.
        again = RecordingCollector(sessions, pbx.runtime.bus, spool_root, pbx.runtime.recordings)
        await again.start()
        try:
            await again.wait_passes(1)
        finally:
            await again.stop()
    finally:
        await running.start()
    (recording,) = await recordings_of(sessions, world.tenant_id)
    leg = await agent_leg_of(sessions, recording)
    assert abs(Decimal(recording.duration_ms) / 1000 - leg.billsec) <= Decimal("0.5")
