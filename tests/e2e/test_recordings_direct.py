"""Recordings of calls dialled straight to an agent and of calls between agents, and the
recording announcement callers hear, through the real Asterisk.

A carrier's call to a number routed to an agent is recorded on the agent's phone's leg (Dial's
pre-bridge subroutine), an internal call on the leg of the agent whose rule decides; both land
in Asterisk's spool under the usual name and are registered by the collector.

The announcement is proven from the audio the caller receives: the caller's media is the
test's own (``rtp_peer.py``), and which tones it heard, in which order, is read with a
Goertzel filter (``tone_detect.py``). The tenant's announcement is a pure tone no phone here
speaks.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.cdr.models import Cdr
from graam_pbx.recordings.models import Recording
from tests.conftest import RunningApp
from tests.e2e.agent_tenant import add_agent_member
from tests.e2e.phones import VOICE, speaking_caller
from tests.e2e.rtp_pcap import dtmf_pcap, rtp_pcap, voice
from tests.e2e.rtp_peer import RtpPeer, rtp_peer
from tests.e2e.sipp import SCENARIOS, Sipp, SippPool
from tests.e2e.test_calls import (
    CALLER,
    PHONES_IP,
    Sessions,
    created,
    new_agent,
    new_device,
    new_number,
    new_trunk,
    registered_phone,
    route_number,
)
from tests.e2e.test_recordings import agent_leg_of, recordings_of
from tests.e2e.test_supervision import bridged, hang_up, media_address, media_phone
from tests.e2e.tone_detect import BLOCK, SHARE, share
from tests.factories import TenantWorld, make_world, unique
from tests.tones import tone_wav
from tests.waiting import until

# Each test's carrier calls in from an address of its own; no other test uses 127.0.0.201-.209.
DIRECT_CARRIER_IP = "127.0.0.201"
QUEUE_ANNOUNCED_CARRIER_IP = "127.0.0.202"
DIRECT_ANNOUNCED_CARRIER_IP = "127.0.0.203"
DIRECT_PAUSED_CARRIER_IP = "127.0.0.204"

ANNOUNCEMENT_HZ = 1850  # the tenant's announcement: no phone, hold music or ring tone has it
ANNOUNCEMENT_SECONDS = 1.5
CALLER_HZ = 600
AGENT_HZ = 1400
RINGING_HZ = 440  # Asterisk's ring tone (indications.conf, us: 440+480 Hz)
HEARD = 10  # blocks (50 ms each) of a tone that make it heard: half a second


async def recording_rule(client: httpx.AsyncClient, world: TenantWorld, **rule: Any) -> None:
    await created(
        await client.post("/api/v1/recording-rules", headers=world.admin.headers, json=rule)
    )


async def announced(client: httpx.AsyncClient, world: TenantWorld) -> None:
    """The tenant announces its recordings with a pure tone of ``ANNOUNCEMENT_HZ``."""
    prompt = await created(
        await client.post(
            "/api/v1/prompts",
            headers=world.admin.headers,
            data={"name": unique("recorded")},
            files={
                "file": (
                    "recorded.wav",
                    tone_wav(ANNOUNCEMENT_HZ, ANNOUNCEMENT_SECONDS),
                    "audio/wav",
                )
            },
        )
    )
    changed = await client.patch(
        "/api/v1/recording-settings",
        headers=world.admin.headers,
        json={"announce_prompt_id": prompt["id"]},
    )
    assert changed.status_code == 200, changed.text


async def registered_recordings(sessions: Sessions, tenant_id: int, count: int) -> list[Recording]:
    """The tenant's recordings once ``count`` are registered, oldest first."""

    async def registered() -> bool:
        return len(await recordings_of(sessions, tenant_id)) >= count

    await until(registered, f"{count} recording(s) registered", timeout=30)
    found = await recordings_of(sessions, tenant_id)
    assert len(found) == count, found
    return found


async def answered_cdr(sessions: Sessions, linkedid: str) -> Cdr:
    """The answered CDR of the call ``linkedid``, once written."""

    async def query() -> list[Cdr]:
        async with sessions() as session:
            statement = select(Cdr).where(Cdr.linkedid == linkedid, Cdr.disposition == "ANSWERED")
            return list((await session.scalars(statement)).all())

    async def written() -> bool:
        return len(await query()) > 0

    await until(written, f"the answered CDR of call {linkedid}")
    (cdr,) = await query()
    return cdr


def heard_blocks(peer: RtpPeer, hertz: float) -> list[int]:
    """The 50 ms blocks of what ``peer`` heard that hold ``hertz``, by their order."""
    samples = list(peer.samples)
    return [
        index
        for index in range(len(samples) // BLOCK)
        if share(samples[index * BLOCK : (index + 1) * BLOCK], hertz) >= SHARE
    ]


def heard(peer: RtpPeer) -> str:
    """What a peer heard, for a failure's message."""
    tones = (ANNOUNCEMENT_HZ, CALLER_HZ, AGENT_HZ, RINGING_HZ)
    counts = ", ".join(f"{hertz} Hz {peer.tones.count(hertz)}" for hertz in tones)
    return f"{peer.tones.blocks()} blocks ({counts})"


async def test_a_call_dialled_to_an_agent_is_recorded_on_its_phones_leg(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    world = await make_world(client, sessions)
    agent = world.agent.user_id
    device = await new_device(client, world, "251", agent)
    await recording_rule(client, world, user_id=agent, direction="inbound", mode="always")
    number = await new_number(client, world)
    await route_number(client, world, number, {"type": "agent", "id": agent})
    await new_trunk(client, world, DIRECT_CARRIER_IP)
    await applier.settled()
    await registered_phone(pbx, sipp, device, "uas_answer_talk_long.xml")

    caller = speaking_caller(sipp, tmp_path, number["e164"], carrier_ip=DIRECT_CARRIER_IP)
    ended = await (await caller.start()).wait()  # the agent hangs up after five seconds
    assert ended.ok, ended.describe()

    (recording,) = await registered_recordings(sessions, world.tenant_id, 1)
    assert (recording.direction, recording.queue_id, recording.agent_user_id) == (
        "inbound",
        None,
        agent,
    )
    assert recording.party_number == CALLER
    # The agent's phone's leg: not the caller's channel, which began the call.
    assert recording.uniqueid != recording.linkedid
    leg = await agent_leg_of(sessions, recording)
    assert abs(Decimal(recording.duration_ms) / 1000 - leg.billsec) <= Decimal("0.5")
    assert recording.duration_ms >= 4000


async def test_the_agent_pauses_the_recording_of_a_call_dialled_to_it_from_its_phone(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    world = await make_world(client, sessions)
    agent = world.agent.user_id
    device = await new_device(client, world, "252", agent)
    await recording_rule(client, world, user_id=agent, direction="inbound", mode="always")
    number = await new_number(client, world)
    await route_number(client, world, number, {"type": "agent", "id": agent})
    await new_trunk(client, world, DIRECT_PAUSED_CARRIER_IP)
    await applier.settled()
    phone = tmp_path / "pausing-phone"
    phone.mkdir()
    (phone / "pause.pcap").write_bytes(dtmf_pcap("*3"))
    (phone / "resume.pcap").write_bytes(dtmf_pcap("*3", later=1))
    scenario = phone / "uas_answer_pause_recording.xml"
    shutil.copyfile(SCENARIOS / scenario.name, scenario)
    await registered_phone(pbx, sipp, device, str(scenario))

    caller = speaking_caller(sipp, tmp_path, number["e164"], carrier_ip=DIRECT_PAUSED_CARRIER_IP)
    ended = await (await caller.start()).wait()  # the agent pauses, resumes, hangs up
    assert ended.ok, ended.describe()

    (recording,) = await registered_recordings(sessions, world.tenant_id, 1)
    leg = await agent_leg_of(sessions, recording)
    # Two seconds (and the tones' fraction of one) paused: cut out, the rest kept.
    cut = leg.billsec - Decimal(recording.duration_ms) / 1000
    assert Decimal("1.5") <= cut <= Decimal("3.2"), (leg.billsec, recording.duration_ms)
    assert recording.duration_ms >= 2500


def speaking_phone(sipp: SippPool, workdir: Path, device: dict[str, Any], dialled: str) -> Sipp:
    """The device's phone that dials ``dialled`` and speaks a minute of tone until Asterisk
    hangs up (not started yet): the scenario beside the voice it plays."""
    directory = workdir / f"speaking-{device['sip_username']}"
    directory.mkdir()
    (directory / VOICE).write_bytes(rtp_pcap(voice([(60_000, True)])))
    scenario = directory / "uac_call_speaks.xml"
    shutil.copyfile(SCENARIOS / scenario.name, scenario)
    return sipp.uac(
        str(scenario),
        ip=PHONES_IP,
        service=dialled,
        auth=(device["sip_username"], device["password"]),
        keys={"caller": device["sip_username"]},
        timeout=60,
    )


async def test_internal_calls_are_recorded_on_the_leg_of_the_agent_whose_rule_decides(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    world = await make_world(client, sessions)
    ana, bob = world.agent.user_id, await new_agent(client, world)
    ana_device = await new_device(client, world, "261", ana)
    bob_device = await new_device(client, world, "262", bob)
    # Ana records her internal calls; Bob has no rule, nor has the tenant.
    await recording_rule(client, world, user_id=ana, direction="internal", mode="always")
    await applier.settled()
    # Each phone answers the one call it gets, talks five seconds and hangs up.
    await registered_phone(pbx, sipp, ana_device, "uas_answer_talk_long.xml")
    await registered_phone(pbx, sipp, bob_device, "uas_answer_talk_long.xml")

    # Ana calls Bob: Bob has no rule, Ana's decides; her own leg is recorded.
    ended = await (await speaking_phone(sipp, tmp_path, ana_device, "262").start()).wait()
    assert ended.ok, ended.describe()
    (first,) = await registered_recordings(sessions, world.tenant_id, 1)
    assert (first.direction, first.queue_id, first.agent_user_id, first.party_number) == (
        "internal",
        None,
        ana,
        "262",
    )
    assert first.uniqueid == first.linkedid  # the calling phone's channel began the call

    # Bob calls Ana: her own rule decides; her phone's leg, Bob's extension the party.
    ended = await (await speaking_phone(sipp, tmp_path, bob_device, "261").start()).wait()
    assert ended.ok, ended.describe()
    _, second = await registered_recordings(sessions, world.tenant_id, 2)
    assert (second.direction, second.queue_id, second.agent_user_id, second.party_number) == (
        "internal",
        None,
        ana,
        "262",
    )
    assert second.uniqueid != second.linkedid  # the called phone's channel

    # Each lasts as long as its call was answered.
    for recording in (first, second):
        cdr = await answered_cdr(sessions, recording.linkedid)
        assert cdr.direction == "internal"
        assert abs(Decimal(recording.duration_ms) / 1000 - cdr.billsec) <= Decimal("0.5")
        assert recording.duration_ms >= 4000


async def test_a_caller_into_a_recorded_queue_hears_the_announcement_before_an_agent(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    await announced(client, world)
    device = await new_device(client, world, "271", world.agent.user_id)
    queue = await created(
        await client.post("/api/v1/queues", headers=world.admin.headers, json={"name": "rec"})
    )
    await recording_rule(client, world, queue_id=queue["id"], mode="always")
    number = await new_number(client, world)
    await route_number(client, world, number, {"type": "queue", "id": queue["id"]})
    await new_trunk(client, world, QUEUE_ANNOUNCED_CARRIER_IP)
    await applier.settled()

    async with (
        rtp_peer(QUEUE_ANNOUNCED_CARRIER_IP, CALLER_HZ) as (caller, caller_port),
        rtp_peer(PHONES_IP, AGENT_HZ) as (agent, agent_port),
    ):
        agent_phone = await media_phone(pbx, sipp, device, agent_port)
        keys = {
            "caller": CALLER,
            "rtp_ip": QUEUE_ANNOUNCED_CARRIER_IP,
            "rtp_port": str(caller_port),
        }
        calling = await sipp.uac(
            "carrier_queue_hold.xml",
            ip=QUEUE_ANNOUNCED_CARRIER_IP,
            service=number["e164"],
            keys=keys,
            timeout=90,
        ).start()

        # No agent is in the queue yet: what the caller hears first is the queue's own.
        async def announcement_heard() -> bool:
            return caller.tones.count(ANNOUNCEMENT_HZ) >= HEARD

        try:
            await until(announcement_heard, "the caller hearing the announcement")
        except AssertionError as err:
            raise AssertionError(f"{err}: caller {heard(caller)}") from None

        # Then the agent joins, answers, and each hears the other.
        await add_agent_member(pbx, world, queue, device)
        caller_channel, agent_channel = await bridged(pbx, device)
        caller.speak_to(await media_address(pbx, caller_channel))
        agent.speak_to(await media_address(pbx, agent_channel))

        async def talking() -> bool:
            return agent.tones.count(CALLER_HZ) >= HEARD and caller.tones.count(AGENT_HZ) >= HEARD

        try:
            await until(talking, "caller and agent hearing each other")
        except AssertionError as err:
            raise AssertionError(f"{err}: caller {heard(caller)}, agent {heard(agent)}") from None
        await hang_up(pbx, f"PJSIP/{device['sip_username']}-")
        for phone in (calling, agent_phone):
            ended = await phone.wait()
            assert ended.ok, ended.describe()

        # The whole announcement came before the agent's voice; the agent never heard it.
        announcement = heard_blocks(caller, ANNOUNCEMENT_HZ)
        assert max(announcement) < min(heard_blocks(caller, AGENT_HZ)), heard(caller)
        assert agent.tones.count(ANNOUNCEMENT_HZ) == 0, heard(agent)

    (recording,) = await registered_recordings(sessions, world.tenant_id, 1)
    assert (recording.direction, recording.queue_id, recording.agent_user_id) == (
        "inbound",
        queue["id"],
        world.agent.user_id,
    )


async def test_a_caller_dialling_a_recorded_agent_hears_the_announcement_before_it_rings(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    await announced(client, world)
    agent = world.agent.user_id
    device = await new_device(client, world, "281", agent)
    await recording_rule(client, world, user_id=agent, direction="inbound", mode="on_demand")
    number = await new_number(client, world)
    await route_number(client, world, number, {"type": "agent", "id": agent})
    trunk = await new_trunk(client, world, DIRECT_ANNOUNCED_CARRIER_IP)
    await applier.settled()
    # The agent's phone rings and is never picked up: the caller, answered for the
    # announcement, hears Asterisk's ring tone while it rings.
    phone = await registered_phone(pbx, sipp, device, "queue_agent_rings.xml")

    async with rtp_peer(DIRECT_ANNOUNCED_CARRIER_IP, CALLER_HZ) as (caller, caller_port):
        keys = {
            "caller": CALLER,
            "rtp_ip": DIRECT_ANNOUNCED_CARRIER_IP,
            "rtp_port": str(caller_port),
        }
        calling = await sipp.uac(
            "carrier_queue_hold.xml",
            ip=DIRECT_ANNOUNCED_CARRIER_IP,
            service=number["e164"],
            keys=keys,
            timeout=90,
        ).start()

        async def ringing_heard() -> bool:
            return caller.tones.count(RINGING_HZ) >= HEARD

        try:
            await until(ringing_heard, "the caller hearing the agent's phone ring")
        except AssertionError as err:
            raise AssertionError(f"{err}: caller {heard(caller)}") from None
        await hang_up(pbx, f"PJSIP/trunk-{trunk['name']}-")  # the caller's channel
        ended = await calling.wait()
        assert ended.ok, ended.describe()

        # The whole announcement, then the ringing.
        announcement = heard_blocks(caller, ANNOUNCEMENT_HZ)
        assert len(announcement) >= HEARD, heard(caller)
        assert max(announcement) < min(heard_blocks(caller, RINGING_HZ)), heard(caller)
    rang = await phone.stop()
    assert len(rang.received("INVITE")) == 1, rang.describe()
