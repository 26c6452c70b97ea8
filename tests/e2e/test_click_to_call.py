"""Click-to-call through the real Asterisk: POST /api/v1/calls rings the agent's sipp phone
and, once it answers, dials the number through the tenant's outbound route to a sipp carrier,
with the tenant's caller ID; the leg's CDR names the agent and counts from the far end's
answer. The same Idempotency-Key twice (at once, and again later) places one call; a suspended
tenant's click is refused with the reason, and nothing is dialled. A far end transferred to a
colleague goes on being billed as the call until it hangs up; one sent to another number too,
and the number's leg is billed as a call of its own.

Carriers answer on 127.0.0.211-213 and .224, .227, .228; phones register from 127.0.0.1.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select

from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.audit.models import AuditEntry
from graam_pbx.call_control.models import ClickToCall
from graam_pbx.cdr.models import Cdr
from tests.ami_actions import actions_sent
from tests.conftest import RunningApp
from tests.e2e.calls_api import (
    CALLED,
    assert_billed_whole,
    call_of,
    channel_states,
    click,
    control,
    in_state,
    new_key,
    outbound_route,
    placed,
)
from tests.e2e.sipp import SippPool, header
from tests.e2e.test_call_control import another_agent, channels_on
from tests.e2e.test_calls import (
    Sessions,
    created,
    new_device,
    new_trunk,
    registered_phone,
    suspend,
)
from tests.factories import make_world
from tests.waiting import until

FAR_END_IP = "127.0.0.211"
ONCE_IP = "127.0.0.212"
SUSPENDED_IP = "127.0.0.213"
TRANSFERRED_IP = "127.0.0.224"
SENT_ON_IP = "127.0.0.227"  # the far end, then sent to another number
ELSEWHERE_IP = "127.0.0.228"  # the carrier of that number (a British one)
ELSEWHERE = "+447911123456"


async def audited(sessions: Sessions, tenant_id: int, action: str) -> list[AuditEntry]:
    async with sessions() as session:
        rows = await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.tenant_id == tenant_id, AuditEntry.action == action)
            .order_by(AuditEntry.id)
        )
        return list(rows)


async def billable_leg(sessions: Sessions, tenant_id: int, call_id: str) -> Cdr:
    """The call's billable leg, once written."""
    found: list[Cdr] = []

    async def written() -> bool:
        async with sessions() as session:
            found[:] = await session.scalars(
                select(Cdr).where(
                    Cdr.tenant_id == tenant_id, Cdr.linkedid == call_id, Cdr.billable.is_(True)
                )
            )
        return bool(found)

    await until(written, f"the billable CDR of call {call_id}")
    (leg,) = found
    return leg


async def billable_legs(sessions: Sessions, call_id: str, count: int) -> list[Cdr]:
    """The call's ``count`` billable legs, in the order they started, once written."""
    legs: list[Cdr] = []

    async def written() -> bool:
        async with sessions() as session:
            legs[:] = await session.scalars(
                select(Cdr)
                .where(Cdr.linkedid == call_id, Cdr.billable.is_(True))
                .order_by(Cdr.started_at)
            )
        return len(legs) == count

    await until(written, f"the {count} billable legs of call {call_id}")
    return legs


async def test_a_click_rings_the_agent_then_dials_the_number_with_the_tenants_caller_id(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    device = await new_device(client, world, "201")
    out = await outbound_route(client, world, sipp, FAR_END_IP, "uas_ring_then_answer.xml")
    await applier.settled()
    agent_phone = await registered_phone(pbx, sipp, device)
    await out.carrier.start()
    key = new_key()
    agent_prefix = f"PJSIP/{device['sip_username']}-"

    async with channel_states(pbx) as states:
        response = await click(client, world.agent.headers, key)
        body = await placed(response)
        call_id = body["id"]
        assert call_id.startswith("c2c-")
        assert response.headers["location"] == f"/api/v1/calls/{call_id}"
        assert (body["agent_user_id"], body["device"], body["number"]) == (
            world.agent.user_id,
            device["sip_username"],
            CALLED,
        )
        connected = await in_state(client, world.agent.headers, call_id, "connected")
        channels = {channel["name"]: channel for channel in connected["channels"]}
        (agent_channel,) = [c for name, c in channels.items() if name.startswith(agent_prefix)]
        (far_channel,) = [c for name, c in channels.items() if name.startswith("PJSIP/trunk-")]
        # The agent's leg is the channel the Originate made: its id is the call's.
        assert agent_channel["uniqueid"] == call_id
        assert (agent_channel["user_id"], far_channel["device"]) == (world.agent.user_id, None)
        assert connected["agent_user_id"] == world.agent.user_id
        assert connected["number"] == CALLED
        hung = await control(client, world.agent.headers, call_id, "hangup")
        assert hung.status_code == 200, hung.text
        assert set(hung.json()["channels"]) == set(channels)

    rung = await agent_phone.wait()
    assert rung.ok, rung.describe()
    far = await out.carrier.wait()
    assert far.ok, far.describe()
    # The agent's phone rang first, showing the number it calls; the far end once the agent
    # had answered.
    (ring,) = rung.received("INVITE")
    assert f"<sip:{CALLED}@" in (header(ring, "From") or ""), ring
    agent_up, far_up = states.of(agent_prefix), states.of("PJSIP/trunk-")
    assert agent_up < far_up
    # The carrier sees the tenant's caller ID, never the agent's.
    (invite,) = far.received("INVITE")
    assert invite.startswith(f"INVITE sip:{CALLED}@"), invite
    caller_id = f"<sip:{out.number['e164']}@"
    assert caller_id in (header(invite, "From") or ""), invite
    assert caller_id in (header(invite, "P-Asserted-Identity") or ""), invite

    # Its CDR: an outbound leg of the agent's, to the number, billed from the far end's answer
    # (the agent had answered a ring earlier).
    leg = await billable_leg(sessions, world.tenant_id, call_id)
    assert (leg.direction, leg.agent_user_id, leg.to_number, leg.accountcode) == (
        "outbound",
        world.agent.user_id,
        CALLED,
        f"t{world.tenant_id}",
    )
    assert leg.channel.startswith(agent_prefix), leg.channel
    assert leg.answered_at is not None
    assert abs(leg.answered_at - far_up) < abs(leg.answered_at - agent_up)
    ended = await call_of(client, world.agent.headers, call_id)
    assert ended["state"] == "ended"
    assert [item["uniqueid"] for item in ended["legs"] if item["billable"]] == [leg.uniqueid]

    (asked,) = await audited(sessions, world.tenant_id, "click-to-call")
    assert (asked.actor_user_id, asked.object_type, asked.object_id) == (
        world.agent.user_id,
        "call",
        call_id,
    )
    assert asked.changes == {
        "agent_user_id": world.agent.user_id,
        "device": device["sip_username"],
        "number": CALLED,
        "idempotency_key": key,
    }
    (hangup,) = await audited(sessions, world.tenant_id, "call-hangup")
    assert hangup.object_id == call_id


async def test_the_same_idempotency_key_places_one_call(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    device = await new_device(client, world, "201")
    # The far end answers every call it gets, and keeps each INVITE.
    out = await outbound_route(client, world, sipp, ONCE_IP, "dialer_far_end.xml")
    await applier.settled()
    agent_phone = await registered_phone(pbx, sipp, device)
    await out.carrier.start()
    key = new_key()

    # A CRM's double click, sent at once, then its retry.
    both = await asyncio.gather(
        click(client, world.admin.headers, key, agent_user_id=world.agent.user_id),
        click(client, world.admin.headers, key, agent_user_id=world.agent.user_id),
    )
    first, second = [await placed(response) for response in both]
    assert first == second
    call_id = first["id"]
    await in_state(client, world.admin.headers, call_id, "connected")
    again = await placed(
        await click(client, world.admin.headers, key, agent_user_id=world.agent.user_id)
    )
    assert again == first
    # The key names that call: another number with it is refused, and places nothing.
    reused = await click(
        client, world.admin.headers, key, number="+33698765432", agent_user_id=world.agent.user_id
    )
    assert reused.status_code == 409, reused.text
    assert reused.json()["error_id"] == "idempotency-key-reused"

    hung = await control(client, world.admin.headers, call_id, "hangup")
    assert hung.status_code == 200, hung.text
    rung = await agent_phone.wait()
    assert rung.ok, rung.describe()
    await in_state(client, world.admin.headers, call_id, "ended")
    far = await out.carrier.stop()
    assert len(far.received("INVITE")) == 1, far.describe()
    assert len(rung.received("INVITE")) == 1, rung.describe()
    async with sessions() as session:
        rows = await session.scalar(
            select(func.count()).where(ClickToCall.tenant_id == world.tenant_id)
        )
    assert rows == 1
    assert len(await audited(sessions, world.tenant_id, "click-to-call")) == 1


async def test_a_suspended_tenants_click_is_refused_with_the_reason_and_nothing_is_dialled(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = await make_world(client, sessions)
    device = await new_device(client, world, "201")
    out = await outbound_route(client, world, sipp, SUSPENDED_IP)
    await applier.settled()
    agent_phone = await registered_phone(pbx, sipp, device)
    await out.carrier.start()
    await suspend(client, world, applier)

    with actions_sent(monkeypatch) as sent:
        refused = await click(client, world.agent.headers, new_key())
    assert refused.status_code == 409, refused.text
    error = refused.json()
    assert error["error_id"] == "tenant-calls-refused"
    assert error["details"] == {"reason": "suspended"}
    assert "suspended" in error["message"]
    assert sent == []

    untouched = await agent_phone.stop()
    assert untouched.received("INVITE") == [], untouched.describe()
    far = await out.carrier.stop()
    assert far.received("INVITE") == [], far.describe()
    async with sessions() as session:
        rows = await session.scalar(
            select(func.count()).where(ClickToCall.tenant_id == world.tenant_id)
        )
    assert rows == 0
    assert await audited(sessions, world.tenant_id, "click-to-call") == []


async def test_a_far_end_transferred_to_a_colleague_is_billed_until_it_hangs_up(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    device = await new_device(client, world, "201")
    colleague, colleague_device = await another_agent(client, world, "202")
    out = await outbound_route(client, world, sipp, TRANSFERRED_IP)
    await applier.settled()
    agent_phone = await registered_phone(pbx, sipp, device)
    colleague_phone = await registered_phone(pbx, sipp, colleague_device)
    await out.carrier.start()
    call_id = (await placed(await click(client, world.agent.headers, new_key())))["id"]
    await in_state(client, world.agent.headers, call_id, "connected")
    body = {"to": {"type": "extension", "extension": "202"}}
    moved = await control(client, world.agent.headers, call_id, "transfer", body)
    assert moved.status_code == 200, moved.text

    async def with_the_colleague() -> bool:
        now = await call_of(client, world.admin.headers, call_id)
        return any(c["bridged"] for c in channels_on(colleague_device, now))

    await until(with_the_colleague, "the far end talking with the colleague")
    hung = await control(client, world.admin.headers, call_id, "hangup")
    assert hung.status_code == 200, hung.text
    for phone in (agent_phone, colleague_phone, out.carrier):
        ended = await phone.wait()
        assert ended.ok, ended.describe()

    legs = await billable_legs(sessions, call_id, 2)
    before, after = legs
    # Before the transfer: the agent's leg to the far end; after it: the far end's own channel
    # dialling the colleague, billed as the same outbound call.
    assert before.channel.startswith(f"PJSIP/{device['sip_username']}-"), before.channel
    assert after.channel == before.dstchannel and after.channel.startswith("PJSIP/trunk-")
    for billed in (before, after):
        assert (billed.direction, billed.to_number, billed.src, billed.tenant_id) == (
            "outbound",
            CALLED,
            out.number["e164"],
            world.tenant_id,
        )
    assert (before.agent_user_id, after.agent_user_id) == (world.agent.user_id, colleague.user_id)
    # Together they are the far end's whole time up, from its answer to its hangup.
    assert_billed_whole(legs, before.answered_at, after.ended_at)


async def test_a_far_end_sent_to_another_number_is_billed_as_its_call_and_the_number_as_one(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    device = await new_device(client, world, "201")
    out = await outbound_route(client, world, sipp, SENT_ON_IP)
    elsewhere = sipp.uas("uas_answer.xml", ip=ELSEWHERE_IP)
    trunk = await new_trunk(client, world, ELSEWHERE_IP, elsewhere.port, country="GB")
    route = {
        "name": "britain",
        "trunk_id": trunk["id"],
        "caller_id_number_id": out.number["id"],
        "allowed_countries": ["GB"],
    }
    await created(
        await client.post("/api/v1/outbound-routes", headers=world.admin.headers, json=route)
    )
    await applier.settled()
    agent_phone = await registered_phone(pbx, sipp, device)
    await out.carrier.start()
    await elsewhere.start()
    call_id = (await placed(await click(client, world.agent.headers, new_key())))["id"]
    await in_state(client, world.agent.headers, call_id, "connected")
    body = {"to": {"type": "number", "number": ELSEWHERE}}
    moved = await control(client, world.agent.headers, call_id, "transfer", body)
    assert moved.status_code == 200, moved.text
    ended = await agent_phone.wait()
    assert ended.ok, ended.describe()

    async def with_the_number() -> bool:
        now = await call_of(client, world.admin.headers, call_id)
        trunks = [c for c in now["channels"] if c["name"].startswith("PJSIP/trunk-")]
        return now["state"] == "connected" and len(trunks) == 2

    await until(with_the_number, "the far end talking with the other number")
    hung = await control(client, world.admin.headers, call_id, "hangup")
    assert hung.status_code == 200, hung.text
    for carrier in (out.carrier, elsewhere):
        done = await carrier.wait()
        assert done.ok, done.describe()
    (invite,) = (await elsewhere.wait()).received("INVITE")
    assert f"<sip:{out.number['e164']}@" in (header(invite, "From") or ""), invite

    legs = await billable_legs(sessions, call_id, 3)
    far = [leg for leg in legs if leg.to_number == CALLED]
    (other,) = [leg for leg in legs if leg.to_number == ELSEWHERE]
    # The far end's carrier leg: the agent's leg, then its own dialling the number.
    before, after = far
    assert after.channel == before.dstchannel, (before.dstchannel, after.channel)
    assert_billed_whole(far, before.answered_at, after.ended_at)
    # The number's: an outbound call of its own under the tenant's caller ID.
    assert other.dstchannel.startswith("PJSIP/trunk-") and other.dstchannel != before.dstchannel
    assert (other.direction, other.src) == ("outbound", out.number["e164"])
    for leg in legs:
        assert leg.tenant_id == world.tenant_id
