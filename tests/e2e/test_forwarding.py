"""Calls the switch forwards: a number routed to an external number reaches that number's
carrier as an outbound call of the tenant (its route, caller ID, refusals and billing).

The carrier calls the tenant's numbers from 127.0.0.2; the external numbers' carriers answer
on 127.0.0.232 (the route's caller ID), .233 (the caller's own, a trunk that shows it) and
.234 (a call that must never reach it); a follow-me's mobile on .235.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.cdr.models import Cdr
from tests.conftest import RunningApp
from tests.e2e.calls_api import outbound_route
from tests.e2e.sipp import Sipp, SippPool, header
from tests.e2e.test_calls import (
    CALLER,
    CARRIER_IP,
    Sessions,
    created,
    new_device,
    new_number,
    new_trunk,
    new_voicemail_box,
    route_number,
    suspend,
)
from tests.factories import TenantWorld, make_world
from tests.waiting import until

SHOWN_ROUTE_IP = "127.0.0.232"
SHOWN_CALLER_IP = "127.0.0.233"
NEVER_IP = "127.0.0.234"
MOBILE = "+33698765432"  # the external number: a French mobile
ABROAD = "+447911123456"  # a British one, outside the route's countries


async def external_number(
    client: httpx.AsyncClient, world: TenantWorld, number: str
) -> dict[str, Any]:
    return await created(
        await client.post(
            "/api/v1/external-numbers",
            headers=world.admin.headers,
            json={"name": "On duty", "number": number},
        )
    )


async def forwarded_number(
    client: httpx.AsyncClient,
    world: TenantWorld,
    sipp: SippPool,
    far_end_ip: str,
    to: str,
    **trunk: Any,
) -> tuple[str, str, Sipp]:
    """A number of the tenant routed to the external number ``to``, the tenant's outbound
    route (France only) to a carrier answering on ``far_end_ip``: (the number called, the
    route's caller ID, the far end)."""
    # The far end talks a second: a leg hung up as it is answered may bill no second at all.
    out = await outbound_route(client, world, sipp, far_end_ip, "uas_answer_talk.xml", **trunk)
    external = await external_number(client, world, to)
    called = await new_number(client, world)
    await route_number(client, world, called, {"type": "external", "id": external["id"]})
    await new_trunk(client, world, CARRIER_IP)
    return called["e164"], out.number["e164"], out.carrier


async def carrier_calls(sipp: SippPool, did: str) -> None:
    """The carrier calls ``did`` from CALLER; the call is answered, then hung up by the switch
    (the far end hanging up, or the refusal's announcement ending)."""
    call = await sipp.uac(
        "carrier_call_answered.xml", ip=CARRIER_IP, service=did, keys={"caller": CALLER}
    ).run()
    assert call.ok, call.describe()


async def outbound_legs(sessions: Sessions, tenant_id: int, did: str) -> list[Cdr]:
    """The tenant's outbound legs forwarded from ``did``, once one is written."""
    legs: list[Cdr] = []

    async def written() -> bool:
        async with sessions() as session:
            legs[:] = await session.scalars(
                select(Cdr).where(
                    Cdr.tenant_id == tenant_id, Cdr.direction == "outbound", Cdr.did == did
                )
            )
        return bool(legs)

    await until(written, f"the outbound leg forwarded from {did}")
    return legs


async def test_a_number_forwarded_to_a_mobile_calls_it_with_the_routes_caller_id_and_bills_it(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    did, caller_id, far_end = await forwarded_number(client, world, sipp, SHOWN_ROUTE_IP, MOBILE)
    await applier.settled()
    await far_end.start()
    await carrier_calls(sipp, did)
    answered = await far_end.wait()
    assert answered.ok, answered.describe()
    (invite,) = answered.received("INVITE")
    assert invite.startswith(f"INVITE sip:{MOBILE}@"), invite
    # The carrier would not accept a number the tenant does not hold: the route's is shown.
    assert f"<sip:{caller_id}@" in (header(invite, "From") or ""), invite
    (leg,) = await outbound_legs(sessions, world.tenant_id, did)
    assert (leg.to_number, leg.src, leg.disposition) == (MOBILE, caller_id, "ANSWERED")
    assert leg.billable and leg.billsec > 0, leg.billsec
    assert leg.refusal_reason is None


async def test_a_trunk_that_shows_forwarded_callers_gets_the_callers_number(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    did, _, far_end = await forwarded_number(
        client, world, sipp, SHOWN_CALLER_IP, MOBILE, forwarded_caller_id=True
    )
    await applier.settled()
    await far_end.start()
    await carrier_calls(sipp, did)
    answered = await far_end.wait()
    assert answered.ok, answered.describe()
    (invite,) = answered.received("INVITE")
    assert f"<sip:{CALLER}@" in (header(invite, "From") or ""), invite
    (leg,) = await outbound_legs(sessions, world.tenant_id, did)
    assert leg.billable and leg.src == CALLER


async def test_a_forward_is_refused_when_the_tenant_is_suspended_or_the_number_not_allowed(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    # Abroad: no route of the tenant allows the United Kingdom.
    world = await make_world(client, sessions)
    did, _, far_end = await forwarded_number(client, world, sipp, NEVER_IP, ABROAD)
    await applier.settled()
    await far_end.start()
    await carrier_calls(sipp, did)  # answered by the refusal's announcement, then hung up
    (leg,) = await outbound_legs(sessions, world.tenant_id, did)
    assert (leg.refusal_reason, leg.billable) == ("destination-not-allowed", False)
    # Suspended: even a number the route allows is refused.
    suspended = await make_world(client, sessions)
    did, _, other_far_end = await forwarded_number(client, suspended, sipp, NEVER_IP, MOBILE)
    await suspend(client, suspended, applier)
    await other_far_end.start()
    await carrier_calls(sipp, did)
    (leg,) = await outbound_legs(sessions, suspended.tenant_id, did)
    assert (leg.refusal_reason, leg.billable) == ("suspended", False)
    for never_called in (far_end, other_far_end):
        untouched = await never_called.stop()
        assert untouched.received("INVITE") == [], untouched.describe()


CONFIRM_IP = "127.0.0.235"  # the follow-me's mobile, which answers but never presses 1


async def test_a_follow_me_whose_mobile_never_presses_1_falls_through_to_voicemail(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    out = await outbound_route(client, world, sipp, CONFIRM_IP, "uas_answer.xml")
    mobile = await external_number(client, world, MOBILE)
    # Step 2 rings a phone that never registered; the final destination is a voicemail box.
    absent = await new_device(client, world, "205")
    box = await new_voicemail_box(client, world, "805")
    follow = await created(
        await client.post(
            "/api/v1/follow-me",
            headers=world.admin.headers,
            json={
                "name": "Mobile, then the desk",
                "steps": [
                    {
                        "ring_seconds": 30,
                        "ring": [{"type": "external", "id": mobile["id"], "confirm": True}],
                    },
                    {"ring_seconds": 5, "ring": [{"type": "extension", "id": absent["id"]}]},
                ],
                "final": {"type": "voicemail", "id": box["id"]},
            },
        )
    )
    called = await new_number(client, world)
    await route_number(client, world, called, {"type": "follow_me", "id": follow["id"]})
    await new_trunk(client, world, CARRIER_IP)
    await applier.settled()
    await out.carrier.start()
    # The caller is answered only by the voicemail box (the mobile's answer is not the
    # caller's), stays 3 s and hangs up.
    call = await sipp.uac(
        "carrier_call_hangs_up.xml",
        ip=CARRIER_IP,
        service=called["e164"],
        keys={"caller": CALLER},
        timeout=90,
    ).run()
    assert call.ok, call.describe()
    mobile_leg = await out.carrier.wait()  # answered, then hung up by the switch: no 1
    assert mobile_leg.ok, mobile_leg.describe()
    (invite,) = mobile_leg.received("INVITE")
    assert invite.startswith(f"INVITE sip:{MOBILE}@"), invite

    inbound: list[Cdr] = []

    async def reached_voicemail() -> bool:
        async with sessions() as session:
            inbound[:] = await session.scalars(
                select(Cdr).where(
                    Cdr.tenant_id == world.tenant_id,
                    Cdr.direction == "inbound",
                    Cdr.lastapp == "VoiceMail",
                )
            )
        return bool(inbound)

    await until(reached_voicemail, "the caller's leg answered by the voicemail box")
    assert inbound[0].disposition == "ANSWERED"
    (leg,) = await outbound_legs(sessions, world.tenant_id, called["e164"])
    assert leg.to_number == MOBILE


async def test_a_follow_me_that_ends_in_itself_is_cut_after_the_documented_forwards(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    absent = await new_device(client, world, "206")  # never registered: each step fails at once
    box = await new_voicemail_box(client, world, "806")
    body: dict[str, Any] = {
        "name": "Round and round",
        "steps": [{"ring_seconds": 5, "ring": [{"type": "extension", "id": absent["id"]}]}],
        "final": {"type": "voicemail", "id": box["id"]},
    }
    follow = await created(
        await client.post("/api/v1/follow-me", headers=world.admin.headers, json=body)
    )
    itself = {**body, "final": {"type": "follow_me", "id": follow["id"]}}
    changed = await client.put(
        f"/api/v1/follow-me/{follow['id']}", headers=world.admin.headers, json=itself
    )
    assert changed.status_code == 200, changed.text
    called = await new_number(client, world)
    await route_number(client, world, called, {"type": "follow_me", "id": follow["id"]})
    await new_trunk(client, world, CARRIER_IP)
    await applier.settled()
    call = await sipp.uac(
        "carrier_call_too_many_hops.xml",
        ip=CARRIER_IP,
        service=called["e164"],
        keys={"caller": CALLER},
        timeout=60,
    ).run()
    assert call.ok, call.describe()

    async def no_channel() -> bool:
        channels = await pbx.runtime.ami.command("core show channels concise")
        return f"t{world.tenant_id}-" not in channels and absent["sip_username"] not in channels

    await until(no_channel, "no channel of the tenant left")
