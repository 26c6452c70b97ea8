"""Controlling live calls through /api/v1/calls, with the real Asterisk: a carrier's caller
(sipp) dials a number routed to an agent's sipp phone, or a click-to-call reaches a sipp far
end, and the API acts on the call.

- A blind transfer to a queue takes the caller to the queue's agent (a second phone); the first
  agent's phone is hung up.
- Another tenant (its admin, its agent) and an agent not on the call get 404 on every route of
  the call, and Asterisk is sent nothing but the read of its channels; hangup ends the call.
- Digits sent reach the far end as RFC 4733 events, in order.
- An attended transfer puts the agent through to the target, then the caller once the agent
  hangs up: to an extension on a queue call, to a queue on a call dialled to the agent, to a
  number (the carrier's leg billed as an outbound call from the consultation to its hangup).
- Hold gives the caller hold music and parts the two; resume puts them back together (who
  hears whom read from each phone's media, ``rtp_peer.py``).

Carriers call from 127.0.0.214-219 and .225 (.226 answers); phones register from 127.0.0.1.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from graam_pbx.ami import Message
from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.audit.models import AuditEntry
from graam_pbx.cdr.models import Cdr
from tests.ami_actions import actions_sent
from tests.conftest import RunningApp
from tests.e2e.agent_tenant import add_agent_member
from tests.e2e.calls_api import (
    CALLED,
    URL,
    assert_billed_whole,
    call_of,
    click,
    control,
    dtmf_peer,
    in_state,
    live_call_of,
    new_key,
    outbound_route,
    placed,
)
from tests.e2e.phones import PHONES_IP, reachable_phone
from tests.e2e.rtp_peer import RtpPeer, rtp_peer
from tests.e2e.sipp import Sipp, SippPool, free_udp_port
from tests.e2e.test_calls import (
    CALLER,
    Sessions,
    ami_events,
    created,
    new_device,
    new_number,
    new_trunk,
    registered_phone,
    route_number,
)
from tests.factories import PASSWORD, Actor, TenantWorld, login, make_world, unique
from tests.waiting import until

TRANSFER_IP = "127.0.0.214"
ISOLATION_IP = "127.0.0.215"
DTMF_IP = "127.0.0.216"
HOLD_IP = "127.0.0.217"
ATTENDED_IP = "127.0.0.218"
ATTENDED_QUEUE_IP = "127.0.0.219"
ATTENDED_NUMBER_IP = "127.0.0.225"  # the caller's carrier
CONSULTED_IP = "127.0.0.226"  # the carrier of the number the agent consults
CALLER_HZ = 600
# The agent's tone: between two semitones (F6 and F#6), so that no note of the hold music
# sits on it.
AGENT_HZ = 1438
HEARD = 10  # blocks (50 ms each) of a tone that make it heard: half a second
LONG_ENOUGH = 40  # blocks of hold music the caller hears before the check: two seconds


@dataclass
class InboundCall:
    """The carrier's caller talking with the agent whose extension its number rings."""

    id: str
    caller: Sipp
    agent_phone: Sipp
    agent_device: dict[str, Any]


@contextlib.asynccontextmanager
async def inbound_call(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    applier: ConfigApplier,
    sipp: SippPool,
    world: TenantWorld,
    carrier_ip: str,
    *,
    agent_phone: Sipp | None = None,
    agent_device: dict[str, Any] | None = None,
    caller_media: int | None = None,
) -> AsyncIterator[InboundCall]:
    """A call from the carrier (on ``carrier_ip``, its media on ``caller_media``) to a number
    routed to the agent's extension, answered by the agent's phone; the call's id as the
    agent reads it from GET /api/v1/calls. Each phone must end its call as written."""
    if agent_device is None:
        agent_device = await new_device(client, world, "201")
    number = await new_number(client, world)
    await route_number(client, world, number, {"type": "extension", "id": agent_device["id"]})
    await new_trunk(client, world, carrier_ip)
    await applier.settled()
    if agent_phone is None:
        agent_phone = await registered_phone(pbx, sipp, agent_device)
    media = caller_media or free_udp_port(carrier_ip, pair=True)
    keys = {"caller": CALLER, "rtp_ip": carrier_ip, "rtp_port": str(media)}
    caller = sipp.uac(
        "carrier_queue_hold.xml", ip=carrier_ip, service=number["e164"], keys=keys, timeout=90
    )
    await caller.start()
    call = await live_call_of(client, world.agent.headers, agent_device)
    yield InboundCall(call["id"], caller, agent_phone, agent_device)
    for phone in (caller, agent_phone):
        ended = await phone.wait()
        assert ended.ok, ended.describe()


async def audit_entries(sessions: Sessions, tenant_id: int, action: str) -> list[AuditEntry]:
    async with sessions() as session:
        rows = await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.tenant_id == tenant_id, AuditEntry.action == action)
            .order_by(AuditEntry.id)
        )
        return list(rows)


async def another_agent(
    client: httpx.AsyncClient, world: TenantWorld, extension: str
) -> tuple[Actor, dict[str, Any]]:
    """Another agent of the tenant, logged in, with a device."""
    email = f"{unique('agent')}@{world.slug}.example"
    user = await created(
        await client.post(
            "/api/v1/users",
            headers=world.admin.headers,
            json={"email": email, "display_name": "Agent", "role": "agent", "password": PASSWORD},
        )
    )
    actor = Actor(user["id"], email, "agent", await login(client, email, world.slug))
    return actor, await new_device(client, world, extension, user["id"])


async def queue_with_agent(
    client: httpx.AsyncClient, world: TenantWorld, extension: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new queue of the tenant, and the device of another agent who will take its calls."""
    _, device = await another_agent(client, world, extension)
    queue = await created(
        await client.post("/api/v1/queues", headers=world.admin.headers, json={"name": unique("q")})
    )
    return queue, device


async def queue_agent_phone(
    pbx: RunningApp, sipp: SippPool, world: TenantWorld, queue: dict[str, Any], device: Any
) -> Sipp:
    """The queue's agent's phone, registered and a member of the queue."""
    phone = await registered_phone(pbx, sipp, device)
    await add_agent_member(pbx, world, queue, device)
    return phone


def caller_channel(call: dict[str, Any]) -> str:
    """The one channel of a call that is no device's: the carrier's caller."""
    (name,) = [c["name"] for c in call["channels"] if c["device"] is None]
    return str(name)


def channels_on(device: dict[str, Any], call: dict[str, Any]) -> list[dict[str, Any]]:
    """The call's channels on the device."""
    prefix = f"PJSIP/{device['sip_username']}-"
    return [c for c in call["channels"] if c["name"].startswith(prefix)]


async def test_a_blind_transfer_to_a_queue_reaches_its_agent(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    queue, queue_device = await queue_with_agent(client, world, "202")
    async with inbound_call(pbx, client, applier, sipp, world, TRANSFER_IP) as call:
        queue_phone = await queue_agent_phone(pbx, sipp, world, queue, queue_device)
        caller = caller_channel(await call_of(client, world.agent.headers, call.id))
        moved = await control(
            client,
            world.agent.headers,
            call.id,
            "transfer",
            {"to": {"type": "queue", "id": queue["id"]}},
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["channels"] == [caller]
        # The first agent's phone is hung up; the caller is the queue's agent's now.
        left = await call.agent_phone.wait()
        assert left.ok, left.describe()

        async def with_the_queues_agent() -> bool:
            now = await call_of(client, world.admin.headers, call.id)
            bridges = {c["device"]: c["bridged"] for c in now["channels"]}
            return now["state"] == "connected" and bridges.get(queue_device["sip_username"], False)

        await until(with_the_queues_agent, "the caller talking with the queue's agent")
        now = await call_of(client, world.admin.headers, call.id)
        assert caller in {c["name"] for c in now["channels"]}
        # Not the first agent's call any more: it sees it no more.
        gone = await client.get(f"{URL}/{call.id}", headers=world.agent.headers)
        assert gone.status_code == 404, gone.text

        hung = await control(client, world.admin.headers, call.id, "hangup")
        assert hung.status_code == 200, hung.text
        answered = await queue_phone.wait()
        assert answered.ok, answered.describe()

    (transfer,) = await audit_entries(sessions, world.tenant_id, "call-transfer")
    assert (transfer.actor_user_id, transfer.object_type, transfer.object_id) == (
        world.agent.user_id,
        "call",
        call.id,
    )
    assert transfer.changes["to"] == {"type": "queue", "id": queue["id"]}
    assert transfer.changes["attended"] is False
    assert transfer.changes["transferred_channel"] == caller


async def test_another_tenant_never_reaches_a_call_and_hangup_ends_it(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    bystander, _ = await another_agent(client, world, "209")
    async with inbound_call(pbx, client, applier, sipp, world, ISOLATION_IP) as call:
        queue = await created(
            await client.post("/api/v1/queues", headers=other.admin.headers, json={"name": "q"})
        )
        requests: list[tuple[str, dict[str, Any] | None]] = [
            ("hangup", None),
            ("hold", None),
            ("resume", None),
            ("dtmf", {"digits": "1"}),
            ("transfer", {"to": {"type": "queue", "id": queue["id"]}}),
        ]
        callers = [other.admin.headers, other.supervisor.headers, other.agent.headers]
        with actions_sent(monkeypatch) as sent:
            for headers in [*callers, bystander.headers]:
                seen = await client.get(f"{URL}/{call.id}", headers=headers)
                assert seen.status_code == 404, seen.text
                assert seen.json()["error_id"] == "call-not-found"
                for action, body in requests:
                    refused = await control(client, headers, call.id, action, body)
                    assert refused.status_code == 404, (action, refused.text)
                listed = await client.get(URL, headers=headers)
                assert listed.status_code == 200, listed.text
                assert call.id not in {item["id"] for item in listed.json()["items"]}
        # Asterisk's channels were read; nothing else was sent.
        assert {name for name, _ in sent} == {"CoreShowChannels"}, sent
        assert await audit_entries(sessions, world.tenant_id, "call-hangup") == []
        assert (await call_of(client, world.admin.headers, call.id))["state"] == "connected"

        hung = await control(client, world.supervisor.headers, call.id, "hangup")
        assert hung.status_code == 200, hung.text
        assert len(hung.json()["channels"]) == 2
    # Both phones were hung up (inbound_call waited for each), and the call has ended: its
    # legs, once written.
    ended: list[dict[str, Any]] = []

    async def recorded() -> bool:
        response = await client.get(f"{URL}/{call.id}", headers=world.admin.headers)
        if response.status_code == 200 and response.json()["state"] == "ended":
            ended.append(response.json())
        return bool(ended)

    await until(recorded, "the ended call's legs")
    assert ended[0]["channels"] == [] and ended[0]["legs"], ended
    (hangup,) = await audit_entries(sessions, world.tenant_id, "call-hangup")
    assert (hangup.actor_user_id, hangup.object_id) == (world.supervisor.user_id, call.id)
    assert await audit_entries(sessions, other.tenant_id, "call-hangup") == []


async def test_digits_sent_reach_the_far_end(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    device = await new_device(client, world, "201")
    async with dtmf_peer(DTMF_IP) as (far_media, port):
        out = await outbound_route(
            client,
            world,
            sipp,
            DTMF_IP,
            "uas_answer_media.xml",
            keys={"rtp_ip": DTMF_IP, "rtp_port": str(port)},
        )
        await applier.settled()
        agent_phone = await registered_phone(pbx, sipp, device)
        await out.carrier.start()
        call_id = (await placed(await click(client, world.agent.headers, new_key())))["id"]
        await in_state(client, world.agent.headers, call_id, "connected")

        sent = await control(client, world.agent.headers, call_id, "dtmf", {"digits": "19*#"})
        assert sent.status_code == 200, sent.text
        assert [name for name in sent.json()["channels"]] == [
            c["name"]
            for c in (await call_of(client, world.agent.headers, call_id))["channels"]
            if c["name"].startswith("PJSIP/trunk-")
        ]

        async def all_heard() -> bool:
            return len(far_media.events) >= 4

        await until(all_heard, "the four digits at the far end")
        assert far_media.events == [1, 9, 10, 11]
        # On a click-to-call the agent's own # reaches the far end too (an IVR's "press #"):
        # it starts no blind transfer. Asterisk reads it from the agent's channel as if its
        # phone had sent it.
        (agent_channel,) = [
            c["name"]
            for c in (await call_of(client, world.agent.headers, call_id))["channels"]
            if c["device"] == device["sip_username"]
        ]
        await pbx.runtime.ami.action(
            "PlayDTMF", {"Channel": agent_channel, "Digit": "#", "Duration": 200, "Receive": "yes"}
        )

        async def pressed() -> bool:
            return len(far_media.events) >= 5

        await until(pressed, "the agent's # at the far end")
        assert far_media.events[4] == 11
        assert (await call_of(client, world.agent.headers, call_id))["state"] == "connected"

        hung = await control(client, world.agent.headers, call_id, "hangup")
        assert hung.status_code == 200, hung.text
        for phone in (agent_phone, out.carrier):
            ended = await phone.wait()
            assert ended.ok, ended.describe()
    (entry,) = await audit_entries(sessions, world.tenant_id, "call-dtmf")
    assert entry.changes["digits"] == 4  # how many, never which
    assert "19*#" not in str(entry.changes)


def heard(peer: RtpPeer) -> str:
    counts = ", ".join(f"{hz} Hz {peer.tones.count(hz)}" for hz in (CALLER_HZ, AGENT_HZ))
    return f"{peer.tones.blocks()} blocks ({counts})"


async def test_hold_gives_the_caller_music_and_resume_puts_them_back_together(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    device = await new_device(client, world, "201")
    await applier.settled()
    async with (
        rtp_peer(HOLD_IP, CALLER_HZ) as (caller, caller_port),
        rtp_peer(PHONES_IP, AGENT_HZ) as (agent, agent_port),
    ):
        agent_phone = await reachable_phone(
            pbx.runtime.ami,
            pbx.runtime.bus,
            sipp,
            device,
            "uas_answer_media.xml",
            keys={"rtp_ip": PHONES_IP, "rtp_port": str(agent_port)},
        )
        async with inbound_call(
            pbx,
            client,
            applier,
            sipp,
            world,
            HOLD_IP,
            agent_phone=agent_phone,
            agent_device=device,
            caller_media=caller_port,
        ) as call:
            talking = await call_of(client, world.agent.headers, call.id)
            for channel in talking["channels"]:
                media = await pbx.runtime.ami.action(
                    "Getvar", {"Channel": channel["name"], "Variable": "CHANNEL(rtp,src,audio)"}
                )
                host, _, port = (media.get("Value") or "").rpartition(":")
                (agent if channel["device"] else caller).speak_to((host, int(port)))

            async def each_hears_the_other(since: dict[RtpPeer, int]) -> bool:
                return (
                    agent.tones.count(CALLER_HZ, since=since[agent]) >= HEARD
                    and caller.tones.count(AGENT_HZ, since=since[caller]) >= HEARD
                )

            start = {agent: 0, caller: 0}
            await until(lambda: each_hears_the_other(start), "caller and agent talking")

            music: list[Message] = []
            async with ami_events(pbx, "MusicOnHoldStart") as events:
                held = await control(client, world.agent.headers, call.id, "hold")
                assert held.status_code == 200, held.text
                music.append(await events.wait_for(lambda m: m.get("Linkedid") == call.id))
            assert music[0].get("Class") == "default"
            assert not music[0].get("Channel", "").startswith(f"PJSIP/{device['sip_username']}")
            state = await call_of(client, world.agent.headers, call.id)
            assert state["state"] == "held"
            assert all(channel["held"] for channel in state["channels"]), state
            again = await control(client, world.agent.headers, call.id, "hold")
            assert again.status_code == 409, again.text
            assert again.json()["error_id"] == "call-held"

            parted = {agent: agent.mark(), caller: caller.mark()}

            async def music_heard() -> bool:
                return caller.tones.blocks(since=parted[caller]) >= LONG_ENOUGH

            await until(music_heard, "the caller hearing the hold music")
            assert caller.tones.count(AGENT_HZ, since=parted[caller]) < HEARD, heard(caller)
            assert agent.tones.count(CALLER_HZ, since=parted[agent]) == 0, heard(agent)

            resumed = await control(client, world.agent.headers, call.id, "resume")
            assert resumed.status_code == 200, resumed.text
            await in_state(client, world.agent.headers, call.id, "connected")
            back = {agent: agent.mark(), caller: caller.mark()}
            await until(lambda: each_hears_the_other(back), "caller and agent talking again")
            not_held = await control(client, world.agent.headers, call.id, "resume")
            assert not_held.status_code == 409, not_held.text
            assert not_held.json()["error_id"] == "call-not-held"

            hung = await control(client, world.agent.headers, call.id, "hangup")
            assert hung.status_code == 200, hung.text
    actions = [e.action for e in await audit_entries(sessions, world.tenant_id, "call-hold")]
    actions += [e.action for e in await audit_entries(sessions, world.tenant_id, "call-resume")]
    assert actions == ["call-hold", "call-resume"]


async def test_an_attended_transfer_puts_the_agent_through_then_the_caller(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    agent_device = await new_device(client, world, "201")
    _, target_device = await another_agent(client, world, "203")
    queue = await created(
        await client.post("/api/v1/queues", headers=world.admin.headers, json={"name": unique("q")})
    )
    number = await new_number(client, world)
    await route_number(client, world, number, {"type": "queue", "id": queue["id"]})
    await new_trunk(client, world, ATTENDED_IP)
    await applier.settled()
    agent_phone = await registered_phone(pbx, sipp, agent_device)
    target_phone = await registered_phone(pbx, sipp, target_device)
    await add_agent_member(pbx, world, queue, agent_device)
    keys = {
        "caller": CALLER,
        "rtp_ip": ATTENDED_IP,
        "rtp_port": str(free_udp_port(ATTENDED_IP, pair=True)),
    }
    caller = sipp.uac(
        "carrier_queue_hold.xml", ip=ATTENDED_IP, service=number["e164"], keys=keys, timeout=90
    )
    await caller.start()
    call = await live_call_of(client, world.agent.headers, agent_device)
    body = {"to": {"type": "extension", "extension": "203"}, "attended": True}
    started = await control(client, world.agent.headers, call["id"], "transfer", body)
    assert started.status_code == 200, started.text
    (agent_channel,) = started.json()["channels"]
    assert agent_channel.startswith(f"PJSIP/{agent_device['sip_username']}-")

    async def agent_talks_to_the_target() -> bool:
        now = await call_of(client, world.admin.headers, call["id"])
        return any(c["bridged"] and c["state"] == "Up" for c in channels_on(target_device, now))

    await until(agent_talks_to_the_target, "the agent put through to the target")
    # The agent hangs up: the caller is the target's.
    await pbx.runtime.ami.action("Hangup", {"Channel": agent_channel})
    left = await agent_phone.wait()
    assert left.ok, left.describe()

    async def caller_with_the_target() -> bool:
        now = await call_of(client, world.admin.headers, call["id"])
        return (
            now["state"] == "connected"
            and not channels_on(agent_device, now)
            and bool(channels_on(target_device, now))
        )

    await until(caller_with_the_target, "the caller put through to the target")
    hung = await control(client, world.admin.headers, call["id"], "hangup")
    assert hung.status_code == 200, hung.text
    for phone in (caller, target_phone):
        ended = await phone.wait()
        assert ended.ok, ended.describe()
    (entry,) = await audit_entries(sessions, world.tenant_id, "call-transfer")
    assert entry.changes["attended"] is True
    assert entry.changes["to"] == {
        "type": "extension",
        "extension": "203",
        "device_id": target_device["id"],
    }


async def test_an_attended_transfer_to_a_queue_puts_the_caller_through_to_its_agent(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    """On a call dialled straight to the agent: the agent waits in the queue, talks with the
    queue's agent, hangs up, and the caller is the queue's agent's."""
    world = await make_world(client, sessions)
    queue, queue_device = await queue_with_agent(client, world, "202")
    async with inbound_call(pbx, client, applier, sipp, world, ATTENDED_QUEUE_IP) as call:
        queue_phone = await queue_agent_phone(pbx, sipp, world, queue, queue_device)
        caller = caller_channel(await call_of(client, world.agent.headers, call.id))
        body = {"to": {"type": "queue", "id": queue["id"]}, "attended": True}
        started = await control(client, world.agent.headers, call.id, "transfer", body)
        assert started.status_code == 200, started.text
        (agent_channel,) = started.json()["channels"]
        assert agent_channel.startswith(f"PJSIP/{call.agent_device['sip_username']}-")

        async def agent_talks_to_the_queues_agent() -> bool:
            now = await call_of(client, world.admin.headers, call.id)
            return any(c["bridged"] and c["state"] == "Up" for c in channels_on(queue_device, now))

        await until(agent_talks_to_the_queues_agent, "the agent put through to the queue's agent")
        # The caller waited apart meanwhile: not bridged with the queue's agent.
        now = await call_of(client, world.admin.headers, call.id)
        assert caller in {c["name"] for c in now["channels"]}
        # The agent hangs up: the caller is the queue's agent's.
        await pbx.runtime.ami.action("Hangup", {"Channel": agent_channel})
        left = await call.agent_phone.wait()
        assert left.ok, left.describe()

        async def caller_with_the_queues_agent() -> bool:
            now = await call_of(client, world.admin.headers, call.id)
            return (
                now["state"] == "connected"
                and not channels_on(call.agent_device, now)
                and caller in {c["name"] for c in now["channels"]}
                and any(c["bridged"] for c in channels_on(queue_device, now))
            )

        await until(caller_with_the_queues_agent, "the caller put through to the queue's agent")
        hung = await control(client, world.admin.headers, call.id, "hangup")
        assert hung.status_code == 200, hung.text
        answered = await queue_phone.wait()
        assert answered.ok, answered.describe()

    (entry,) = await audit_entries(sessions, world.tenant_id, "call-transfer")
    assert entry.changes["attended"] is True
    assert entry.changes["to"] == {"type": "queue", "id": queue["id"]}
    assert entry.changes["agent_channel"] == agent_channel


async def test_an_attended_transfer_to_a_number_bills_its_carrier_leg_until_it_hangs_up(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    """A carrier's caller talking with the agent is put through to a number the agent
    consulted first: the consultation and what follows are both the outbound call's legs."""
    world = await make_world(client, sessions)
    out = await outbound_route(client, world, sipp, CONSULTED_IP)
    await out.carrier.start()
    async with inbound_call(pbx, client, applier, sipp, world, ATTENDED_NUMBER_IP) as call:
        caller = caller_channel(await call_of(client, world.agent.headers, call.id))
        body = {"to": {"type": "number", "number": CALLED}, "attended": True}
        started = await control(client, world.agent.headers, call.id, "transfer", body)
        assert started.status_code == 200, started.text
        (agent_channel,) = started.json()["channels"]

        def consulted(now: dict[str, Any]) -> list[dict[str, Any]]:
            return [
                c
                for c in now["channels"]
                if c["name"].startswith("PJSIP/trunk-") and c["name"] != caller
            ]

        async def agent_talks_to_the_number() -> bool:
            now = await call_of(client, world.admin.headers, call.id)
            return any(c["bridged"] and c["state"] == "Up" for c in consulted(now))

        await until(agent_talks_to_the_number, "the agent put through to the number")
        await pbx.runtime.ami.action("Hangup", {"Channel": agent_channel})

        async def caller_with_the_number() -> bool:
            now = await call_of(client, world.admin.headers, call.id)
            return not channels_on(call.agent_device, now) and any(
                c["bridged"] for c in consulted(now)
            )

        await until(caller_with_the_number, "the caller put through to the number")
        hung = await control(client, world.admin.headers, call.id, "hangup")
        assert hung.status_code == 200, hung.text
    far = await out.carrier.wait()
    assert far.ok, far.describe()

    # The number's carrier leg is billed from its answer to its hangup, once: by the
    # consultation's leg alone while the caller reaches it through the consultation's Local
    # channels, and by that leg and a continuation (the caller bridged with the carrier's
    # channel) once Asterisk optimises them away (cdr/continuations.py).
    rows: list[Cdr] = []

    async def all_written() -> bool:
        async with sessions() as session:
            rows[:] = await session.scalars(
                select(Cdr).where(Cdr.linkedid == call.id).order_by(Cdr.started_at)
            )
        return len(rows) >= 4 and any(row.dcontext.endswith("-outbound") for row in rows)

    await until(all_written, "the call's legs")
    billed = [row for row in rows if row.billable]
    consultation = billed[0]
    assert consultation.channel.startswith("Local/"), consultation.channel
    carrier = consultation.dstchannel
    assert carrier.startswith("PJSIP/trunk-") and carrier != caller
    for leg in billed:
        assert (leg.direction, leg.to_number, leg.src) == ("outbound", CALLED, consultation.src)
        assert carrier in (leg.channel, leg.dstchannel), leg.__dict__
    assert_billed_whole(billed, consultation.answered_at, max(row.ended_at for row in rows))
