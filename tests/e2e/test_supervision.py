"""Live supervision through the real Asterisk: a carrier's caller in a queue, answered by an
agent's sipp phone, and a supervisor's sipp phone called by POST /api/v1/supervision.

Each phone's media is the test's own (``rtp_peer.py``): the caller speaks 600 Hz, the agent
1400 Hz, the supervisor 2200 Hz, and each keeps what Asterisk sends it. Who hears whom is
read from that audio (``tone_detect.py``): listening, the supervisor hears both and neither
hears the supervisor; whispering, the agent hears the supervisor and the caller does not;
barging, both do. An agent told hears the rising two-tone the supervision call starts with
(440 Hz, then 880 Hz), and the caller does not.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from graam_pbx.ami import AmiActionError, Message
from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.cdr.models import Cdr
from tests.ami_actions import actions_sent
from tests.conftest import RunningApp
from tests.e2e.agent_tenant import add_agent_member
from tests.e2e.phones import PHONES_IP, reachable_phone
from tests.e2e.rtp_peer import RtpPeer, rtp_peer
from tests.e2e.sipp import Sipp, SippPool
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
from tests.factories import TenantWorld, make_world, unique
from tests.waiting import until

URL = "/api/v1/supervision"
CALLER_HZ = 600
AGENT_HZ = 1400
SUPERVISOR_HZ = 2200
# Asterisk's ascending-2tone, whispered to a told agent (asterisk_conf/extensions.conf): 440 Hz,
# then 880 Hz; no phone here speaks either.
TOLD_HZ = (440, 880)
HEARD = 10  # blocks (50 ms each) of a tone that make it heard: half a second
TOLD = 2  # blocks of each of its two tones (it lasts about a third of a second)
# The supervisor's own audio (its first packet answers Asterisk's first) has had this many
# blocks' time to reach whoever may hear it when what they heard is read: two seconds.
LONG_ENOUGH = 40


@dataclass
class Scene:
    """A tenant's answered queue call, a supervisor ready on its own phone."""

    world: TenantWorld
    agent_device: dict[str, Any]
    supervisor_device: dict[str, Any]
    caller: RtpPeer
    agent: RtpPeer
    supervisor: RtpPeer
    phones: list[Sipp]  # the caller's, the agent's and the supervisor's


async def media_phone(pbx: RunningApp, sipp: SippPool, device: dict[str, Any], port: int) -> Sipp:
    """The device registered from a sipp UAS whose media is the test's, on ``port``."""
    return await reachable_phone(
        pbx.runtime.ami,
        pbx.runtime.bus,
        sipp,
        device,
        "uas_answer_media.xml",
        keys={"rtp_ip": PHONES_IP, "rtp_port": str(port)},
    )


async def bridged(pbx: RunningApp, agent_device: dict[str, Any]) -> tuple[str, str]:
    """The caller's channel and the agent's, once the agent's is in a bridge with it."""
    prefix = f"PJSIP/{agent_device['sip_username']}-"
    found: list[tuple[str, str]] = []

    async def in_a_bridge() -> bool:
        events = await pbx.runtime.ami.action_list("CoreShowChannels", {})
        bridges = {event.get("Channel", ""): event.get("BridgeId", "") for event in events}
        for agent, bridge in bridges.items():
            if agent.startswith(prefix) and bridge:
                others = [c for c, b in bridges.items() if b == bridge and c != agent]
                if others:
                    found.append((others[0], agent))
                    return True
        return False

    await until(in_a_bridge, "the agent's channel bridged with the caller's")
    return found[0]


async def media_address(pbx: RunningApp, channel: str) -> tuple[str, int]:
    """Where Asterisk receives ``channel``'s audio (chan_pjsip's ``CHANNEL(rtp,src)``)."""
    answer = await pbx.runtime.ami.action(
        "Getvar", {"Channel": channel, "Variable": "CHANNEL(rtp,src,audio)"}
    )
    host, _, port = (answer.get("Value") or "").rpartition(":")
    assert host and port.isdigit(), (channel, answer)
    return host, int(port)


def heard(peer: RtpPeer) -> str:
    """What a peer heard, for a failure's message: how much, and of which tone."""
    tones = (CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ, *TOLD_HZ)
    counts = ", ".join(f"{hertz} Hz {peer.tones.count(hertz)}" for hertz in tones)
    return f"{peer.tones.blocks()} blocks ({counts})"


async def hang_up(pbx: RunningApp, prefix: str) -> None:
    """Hang up every channel whose name starts with ``prefix``."""
    for event in await pbx.runtime.ami.action_list("CoreShowChannels", {}):
        if event.get("Channel", "").startswith(prefix):
            with contextlib.suppress(AmiActionError):  # gone meanwhile
                await pbx.runtime.ami.action("Hangup", {"Channel": event["Channel"]})


@contextlib.asynccontextmanager
async def answered_call(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    applier: ConfigApplier,
    sipp: SippPool,
    world: TenantWorld,
) -> AsyncIterator[Scene]:
    """The caller in the tenant's queue, talking with its agent (each hears the other), and
    the supervisor's phone registered; at the end the agent's channel is hung up and every
    phone must have ended its call as written."""
    agent_device = await new_device(client, world, "201", world.agent.user_id)
    supervisor_device = await new_device(client, world, "301", world.supervisor.user_id)
    queue = await created(
        await client.post("/api/v1/queues", headers=world.admin.headers, json={"name": unique("q")})
    )
    number = await new_number(client, world)
    await route_number(client, world, number, {"type": "queue", "id": queue["id"]})
    await new_trunk(client, world, CARRIER_IP)
    await applier.settled()
    async with (
        rtp_peer(CARRIER_IP, CALLER_HZ) as (caller, caller_port),
        rtp_peer(PHONES_IP, AGENT_HZ) as (agent, agent_port),
        rtp_peer(PHONES_IP, SUPERVISOR_HZ) as (supervisor, supervisor_port),
    ):
        agent_phone = await media_phone(pbx, sipp, agent_device, agent_port)
        supervisor_phone = await media_phone(pbx, sipp, supervisor_device, supervisor_port)
        await add_agent_member(pbx, world, queue, agent_device)
        keys = {"caller": CALLER, "rtp_ip": CARRIER_IP, "rtp_port": str(caller_port)}
        calling = sipp.uac(
            "carrier_queue_hold.xml", ip=CARRIER_IP, service=number["e164"], keys=keys, timeout=90
        )
        await calling.start()
        # Bridged, Asterisk forwards what each side sends: each is told where to speak.
        caller_channel, agent_channel = await bridged(pbx, agent_device)
        caller.speak_to(await media_address(pbx, caller_channel))
        agent.speak_to(await media_address(pbx, agent_channel))

        async def talking() -> bool:
            return agent.tones.count(CALLER_HZ) >= HEARD and caller.tones.count(AGENT_HZ) >= HEARD

        try:
            await until(talking, "caller and agent hearing each other")
        except AssertionError as err:
            phones = [(await phone.stop()).describe() for phone in (calling, agent_phone)]
            raise AssertionError(
                f"{err}: caller {heard(caller)}, agent {heard(agent)}\n" + "\n".join(phones)
            ) from None
        scene = Scene(
            world,
            agent_device,
            supervisor_device,
            caller,
            agent,
            supervisor,
            [calling, agent_phone, supervisor_phone],
        )
        try:
            yield scene
        finally:
            # The agent hangs up: the caller's call ends, and the supervisor's with it
            # (ChanSpy's E option).
            await hang_up(pbx, f"PJSIP/{agent_device['sip_username']}-")
        for phone in scene.phones:
            ended = await phone.wait()
            assert ended.ok, ended.describe()


async def start(
    client: httpx.AsyncClient, world: TenantWorld, mode: str, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        URL,
        headers=world.supervisor.headers,
        json={"agent_user_id": world.agent.user_id, "mode": mode, **extra},
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def supervisor_hears_both(scene: Scene) -> None:
    """The supervisor hears the caller and the agent, and has been heard long enough for
    anyone it reaches to have heard it too."""

    async def hearing() -> bool:
        tones = scene.supervisor.tones
        return (
            tones.count(CALLER_HZ) >= HEARD
            and tones.count(AGENT_HZ) >= HEARD
            and tones.blocks() >= LONG_ENOUGH
        )

    try:
        await until(hearing, "supervisor hearing the caller and the agent")
    except AssertionError as err:
        raise AssertionError(
            f"{err}: supervisor {heard(scene.supervisor)}, caller {heard(scene.caller)}, "
            f"agent {heard(scene.agent)}"
        ) from None


@contextlib.asynccontextmanager
async def channels_made(pbx: RunningApp) -> AsyncIterator[list[str]]:
    """The name of every channel Asterisk makes meanwhile."""
    made: list[str] = []

    async def note(message: Message) -> None:
        made.append(message.get("Channel", ""))

    bus = pbx.runtime.bus
    subscription = bus.subscribe(f"e2e-channels-{uuid.uuid4().hex}", ["Newchannel"], note)
    try:
        yield made
    finally:
        await bus.unsubscribe(subscription)


async def test_a_supervisor_listens_unheard_and_the_agent_is_told(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = await make_world(client, sessions)
    # Another tenant's supervisor, with a phone of its own that must never ring.
    other = await make_world(client, sessions)
    other_device = await new_device(client, other, "301", other.supervisor.user_id)
    await applier.settled()
    other_phone = await registered_phone(pbx, sipp, other_device)

    async with (
        channels_made(pbx) as made,
        answered_call(pbx, client, applier, sipp, world) as scene,
    ):
        with actions_sent(monkeypatch) as sent:
            refused = await client.post(
                URL,
                headers=other.supervisor.headers,
                json={"agent_user_id": world.agent.user_id, "mode": "listen"},
            )
        assert refused.status_code == 404, refused.text
        assert sent == []

        marks = {peer: peer.mark() for peer in (scene.caller, scene.agent)}
        body = await start(client, world, "listen")
        assert body["mode"] == "listen"
        assert body["device_id"] == scene.supervisor_device["id"]
        assert body["agent_told"] is True  # no recording settings: the default
        assert body["agent_channel"].startswith(f"PJSIP/{scene.agent_device['sip_username']}-")
        assert body["id"].startswith("spy-")

        await supervisor_hears_both(scene)

        async def told() -> bool:
            return all(
                scene.agent.tones.count(hertz, since=marks[scene.agent]) >= TOLD
                for hertz in TOLD_HZ
            )

        try:
            await until(told, "the agent hearing it is listened to")
        except AssertionError as err:
            raise AssertionError(f"{err}: agent {heard(scene.agent)}") from None
        for peer in (scene.caller, scene.agent):
            assert peer.tones.count(SUPERVISOR_HZ, since=marks[peer]) == 0
        # The tone is the agent's alone; the caller still hears the agent.
        assert [scene.caller.tones.count(hz, since=marks[scene.caller]) for hz in TOLD_HZ] == [0, 0]
        assert scene.caller.tones.count(AGENT_HZ, since=marks[scene.caller]) >= HEARD

    other_ended = await other_phone.stop()
    assert other_ended.received("INVITE") == [], other_ended.describe()
    prefix = f"PJSIP/{other_device['sip_username']}-"
    assert not [name for name in made if name.startswith(prefix)]
    supervisor_prefix = f"PJSIP/{scene.supervisor_device['sip_username']}-"
    assert [name for name in made if name.startswith(supervisor_prefix)], made

    # The start is in the audit log: who, which agent, which mode, which device.
    entries = (
        await client.get(
            "/api/v1/audit", headers=world.admin.headers, params={"object_type": "agent"}
        )
    ).json()["items"]
    (entry,) = [e for e in entries if e["action"] == "supervise"]
    assert (entry["actor_user_id"], entry["actor_role"], entry["object_id"]) == (
        world.supervisor.user_id,
        "supervisor",
        str(world.agent.user_id),
    )
    changes = entry["changes"]
    assert (changes["mode"], changes["device_id"], changes["agent_told"]) == (
        "listen",
        scene.supervisor_device["id"],
        True,
    )
    assert changes["device"] == scene.supervisor_device["sip_username"]
    assert (changes["channel_id"], changes["agent_channel"]) == (body["id"], body["agent_channel"])
    other_entries = (
        await client.get(
            "/api/v1/audit", headers=other.admin.headers, params={"object_type": "agent"}
        )
    ).json()["items"]
    assert [e for e in other_entries if e["action"] == "supervise"] == []

    # The supervision call's CDR is the tenant's, an internal call.
    async def supervision_cdr() -> Cdr | None:
        async with sessions() as session:
            found: Cdr | None = await session.scalar(
                select(Cdr).where(
                    Cdr.tenant_id == world.tenant_id, Cdr.channel.startswith(supervisor_prefix)
                )
            )
        return found

    async def written() -> bool:
        return await supervision_cdr() is not None

    await until(written, "the supervision call's CDR")
    cdr = await supervision_cdr()
    assert cdr is not None
    assert (cdr.direction, cdr.accountcode, cdr.dcontext, cdr.disposition) == (
        "internal",
        f"t{world.tenant_id}",
        "graam-supervision",
        "ANSWERED",
    )
    assert body["id"] in cdr.uniqueid


async def test_a_whisper_reaches_the_agent_alone_and_an_agent_not_told_hears_no_tone(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    # The tenant's admin turns the notice off (the tenant's recording settings).
    changed = await client.patch(
        "/api/v1/recording-settings",
        headers=world.admin.headers,
        json={"supervision_tells_agent": False},
    )
    assert changed.status_code == 200, changed.text
    async with answered_call(pbx, client, applier, sipp, world) as scene:
        marks = {peer: peer.mark() for peer in (scene.caller, scene.agent)}
        body = await start(client, world, "whisper")
        assert (body["mode"], body["agent_told"]) == ("whisper", False)

        async def whispered() -> bool:
            return scene.agent.tones.count(SUPERVISOR_HZ, since=marks[scene.agent]) >= HEARD

        await until(whispered, "the agent hearing the supervisor")
        await supervisor_hears_both(scene)
        assert scene.caller.tones.count(SUPERVISOR_HZ, since=marks[scene.caller]) == 0
        assert scene.caller.tones.count(AGENT_HZ, since=marks[scene.caller]) >= HEARD
        # Not told: the agent heard the supervisor, never the tone.
        assert [scene.agent.tones.count(hz, since=marks[scene.agent]) for hz in TOLD_HZ] == [0, 0]
        assert scene.agent.tones.count(CALLER_HZ, since=marks[scene.agent]) >= HEARD


async def test_a_barge_reaches_the_agent_and_the_caller(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    async with answered_call(pbx, client, applier, sipp, world) as scene:
        marks = {peer: peer.mark() for peer in (scene.caller, scene.agent)}
        body = await start(client, world, "barge", device_id=scene.supervisor_device["id"])
        assert (body["mode"], body["agent_told"]) == ("barge", True)

        async def barged() -> bool:
            return all(
                peer.tones.count(SUPERVISOR_HZ, since=marks[peer]) >= HEARD
                for peer in (scene.caller, scene.agent)
            )

        await until(barged, "the agent and the caller hearing the supervisor")
        await supervisor_hears_both(scene)
        # Both still hear each other.
        assert scene.caller.tones.count(AGENT_HZ, since=marks[scene.caller]) >= HEARD
        assert scene.agent.tones.count(CALLER_HZ, since=marks[scene.agent]) >= HEARD
