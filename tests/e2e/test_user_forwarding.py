"""Users' forwarding rules through the real Asterisk and sipp phones: busy, no answer and
unregistered each send a call to the rule's target, do-not-disturb sends it to voicemail, a
loop between two users ends after the documented number of forwards, and every forwarded
leg's CDR names the user who forwarded it. The phones' codes set the rules too. A queue's
call rings the agent whatever their forwarding says.

Each test has its own tenant and extensions; phones register from 127.0.0.1 (tests.e2e.phones),
the carrier calls from 127.0.0.2 and the mobile a user forwards to answers on 127.0.0.236.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.asterisk.render import MAX_FORWARDS
from graam_pbx.cdr.models import Cdr
from tests.conftest import RunningApp
from tests.e2e.calls_api import outbound_route
from tests.e2e.phones import PHONES_IP
from tests.e2e.sipp import Sipp, SippPool
from tests.e2e.test_calls import (
    CALLER,
    CARRIER_IP,
    Sessions,
    add_queue_member,
    created,
    new_agent,
    new_device,
    new_number,
    new_trunk,
    new_voicemail_box,
    registered_phone,
    route_number,
)
from tests.factories import TenantWorld, make_world
from tests.waiting import until


async def set_rules(
    client: httpx.AsyncClient, world: TenantWorld, user_id: int, **rules: Any
) -> None:
    saved = await client.put(
        f"/api/v1/users/{user_id}/forwarding", headers=world.admin.headers, json=rules
    )
    assert saved.status_code == 200, saved.text


def to_extension(device: dict[str, Any]) -> dict[str, Any]:
    return {"type": "extension", "id": device["id"]}


class Office:
    """A tenant with three users, each with one phone: the caller (201), Ana (202), who
    forwards, and Bob (203), who takes what she forwards."""

    def __init__(
        self,
        world: TenantWorld,
        caller: dict[str, Any],
        ana: dict[str, Any],
        bob: dict[str, Any],
        ana_id: int,
        bob_id: int,
    ) -> None:
        self.world, self.caller, self.ana, self.bob = world, caller, ana, bob
        self.ana_id, self.bob_id = ana_id, bob_id

    def call(
        self, sipp: SippPool, scenario: str, extension: str, phone: dict[str, Any] | None = None
    ) -> Any:
        """``phone`` (the caller's, unless named) dials ``extension`` (not started yet)."""
        phone = phone or self.caller
        return sipp.uac(
            scenario,
            ip=PHONES_IP,
            service=extension,
            auth=(phone["sip_username"], phone["password"]),
            keys={"caller": phone["sip_username"]},
        )

    async def reaches(self, sipp: SippPool, extension: str, answering: Sipp) -> None:
        """The caller dials ``extension``, and the phone ``answering`` answers."""
        call = await self.call(sipp, "uac_call.xml", extension).run()
        assert call.ok, call.describe()
        answered = await answering.wait()
        assert answered.ok, answered.describe()


async def office(client: httpx.AsyncClient, sessions: Sessions) -> Office:
    world = await make_world(client, sessions)
    ana_id = await new_agent(client, world)
    bob_id = await new_agent(client, world)
    caller = await new_device(client, world, "201")
    ana = await new_device(client, world, "202", ana_id)
    bob = await new_device(client, world, "203", bob_id)
    return Office(world, caller, ana, bob, ana_id, bob_id)


async def forwarded_legs(
    sessions: Sessions, tenant_id: int, *user_ids: int, count: int = 1
) -> list[Cdr]:
    """The tenant's legs one of ``user_ids`` forwarded, once ``count`` are written."""
    legs: list[Cdr] = []

    async def written() -> bool:
        async with sessions() as session:
            legs[:] = await session.scalars(
                select(Cdr).where(Cdr.tenant_id == tenant_id, Cdr.forwarded_from.in_(user_ids))
            )
        return len(legs) >= count

    await until(written, f"{count} legs forwarded by users {user_ids}")
    return legs


async def test_busy_no_answer_and_unregistered_each_send_the_call_to_the_rules_target(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    place = await office(client, sessions)
    # Busy: Ana's phone refuses with 486; the call goes to Bob's phone, which answers.
    await set_rules(client, place.world, place.ana_id, busy=to_extension(place.bob))
    await applier.settled()
    ana_phone = await registered_phone(pbx, sipp, place.ana, "queue_agent_rejects.xml")
    bob_phone = await registered_phone(pbx, sipp, place.bob)
    await place.reaches(sipp, "202", bob_phone)
    (leg,) = await forwarded_legs(sessions, place.world.tenant_id, place.ana_id)
    assert (leg.agent_user_id, leg.disposition, leg.direction) == (
        place.bob_id,
        "ANSWERED",
        "internal",
    )
    assert leg.device == place.bob["sip_username"]
    refused = await ana_phone.stop()
    assert len(refused.received("INVITE")) == 1, refused.describe()

    # No answer: Ana's phone rings for the rule's 5 seconds, then Bob's answers.
    await set_rules(
        client,
        place.world,
        place.ana_id,
        no_answer=to_extension(place.bob),
        no_answer_seconds=5,
    )
    await applier.settled()
    ana_phone = await registered_phone(pbx, sipp, place.ana, "queue_agent_rings.xml")
    bob_phone = await registered_phone(pbx, sipp, place.bob)
    await place.reaches(sipp, "202", bob_phone)
    rang = await ana_phone.stop()
    assert len(rang.received("INVITE")) == 1 and rang.received("CANCEL"), rang.describe()
    legs = await forwarded_legs(sessions, place.world.tenant_id, place.ana_id, count=2)
    assert [leg.disposition for leg in legs] == ["ANSWERED", "ANSWERED"]

    # Unreachable: Cleo's phone never registered; Bob answers.
    cleo_id = await new_agent(client, place.world)
    await new_device(client, place.world, "204", cleo_id)
    await set_rules(client, place.world, cleo_id, unreachable=to_extension(place.bob))
    await applier.settled()
    bob_phone = await registered_phone(pbx, sipp, place.bob)
    await place.reaches(sipp, "204", bob_phone)
    (leg,) = await forwarded_legs(sessions, place.world.tenant_id, cleo_id)
    assert (leg.agent_user_id, leg.disposition) == (place.bob_id, "ANSWERED")


async def test_do_not_disturb_sends_the_call_to_voicemail_and_the_phone_never_rings(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    place = await office(client, sessions)
    box = await new_voicemail_box(client, place.world, "802")
    await set_rules(
        client,
        place.world,
        place.ana_id,
        do_not_disturb=True,
        do_not_disturb_to={"type": "voicemail", "id": box["id"]},
    )
    await applier.settled()
    ana_phone = await registered_phone(pbx, sipp, place.ana)
    call = await place.call(sipp, "uac_call.xml", "202").run()
    assert call.ok, call.describe()  # answered by the voicemail box
    (leg,) = await forwarded_legs(sessions, place.world.tenant_id, place.ana_id)
    assert (leg.lastapp, leg.disposition) == ("VoiceMail", "ANSWERED"), leg
    untouched = await ana_phone.stop()
    assert untouched.received("INVITE") == [], untouched.describe()


async def test_a_loop_between_two_users_ends_after_the_documented_forwards(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    place = await office(client, sessions)
    await set_rules(client, place.world, place.ana_id, unconditional=to_extension(place.bob))
    await set_rules(client, place.world, place.bob_id, unconditional=to_extension(place.ana))
    await applier.settled()
    call = await place.call(sipp, "uac_call_too_many_hops.xml", "202").run()
    assert call.ok, call.describe()
    # Ana → Bob → Ana …: MAX_FORWARDS forwards, then the call ends; no channel is left.
    (cut,) = await forwarded_legs(sessions, place.world.tenant_id, place.ana_id, place.bob_id)
    assert cut.disposition != "ANSWERED" and cut.dstchannel == "", cut

    async def no_channel() -> bool:
        channels = await pbx.runtime.ami.command("core show channels concise")
        return place.caller["sip_username"] not in channels

    await until(no_channel, "the caller's channel gone")
    assert MAX_FORWARDS == 5  # docs/forwarding.md says so


async def test_the_phones_codes_set_the_users_own_forwarding_and_do_not_disturb(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    place = await office(client, sessions)
    url = f"/api/v1/users/{place.ana_id}/forwarding"
    await applier.settled()

    async def dial_code(code: str) -> dict[str, Any]:
        dialled = await place.call(sipp, "uac_feature_code.xml", code, place.ana).run()
        assert dialled.ok, dialled.describe()
        read = await client.get(url, headers=place.world.admin.headers)
        assert read.status_code == 200, read.text
        rules: dict[str, Any] = read.json()
        return rules

    # *72<extension>: every call to Ana goes to Bob's phone, hers never rings.
    assert (await dial_code("*72203"))["unconditional"] == to_extension(place.bob)
    await applier.settled()
    bob_phone = await registered_phone(pbx, sipp, place.bob)
    await place.reaches(sipp, "202", bob_phone)

    # *7200<number>: to a mobile, kept as one of the tenant's external numbers.
    unconditional = (await dial_code("*720033698765432"))["unconditional"]
    assert unconditional["type"] == "external"
    external = await client.get(
        f"/api/v1/external-numbers/{unconditional['id']}", headers=place.world.admin.headers
    )
    assert external.json()["number"] == "+33698765432", external.text
    # A number that is neither an extension nor a valid number changes nothing.
    assert (await dial_code("*72999"))["unconditional"] == unconditional
    # *73 stops forwarding; *78 and *79 turn do-not-disturb on and off.
    assert (await dial_code("*73"))["unconditional"] is None
    assert (await dial_code("*78"))["do_not_disturb"] is True
    await applier.settled()
    # No voicemail box named: the caller hears busy; Ana's phone never rings.
    ana_phone = await registered_phone(pbx, sipp, place.ana)
    busy = await place.call(sipp, "uac_call_busy.xml", "202").run()
    assert busy.ok, busy.describe()
    untouched = await ana_phone.stop()
    assert untouched.received("INVITE") == [], untouched.describe()
    assert (await dial_code("*79"))["do_not_disturb"] is False


async def test_a_queue_call_rings_the_agent_whatever_their_forwarding_says(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    place = await office(client, sessions)
    await set_rules(client, place.world, place.ana_id, unconditional=to_extension(place.bob))
    queue = await created(
        await client.post(
            "/api/v1/queues",
            headers=place.world.admin.headers,
            json={"name": "sales", "strategy": "linear"},
        )
    )
    number = await new_number(client, place.world)
    await route_number(client, place.world, number, {"type": "queue", "id": queue["id"]})
    await new_trunk(client, place.world, CARRIER_IP)
    await applier.settled()
    ana_phone = await registered_phone(pbx, sipp, place.ana)
    bob_phone = await registered_phone(pbx, sipp, place.bob)
    await add_queue_member(pbx, place.world, queue, place.ana, penalty=0)
    call = await sipp.uac(
        "carrier_call_hangs_up.xml", ip=CARRIER_IP, service=number["e164"], keys={"caller": CALLER}
    ).run()
    assert call.ok, call.describe()
    answered = await ana_phone.wait()
    assert answered.ok, answered.describe()
    untouched = await bob_phone.stop()
    assert untouched.received("INVITE") == [], untouched.describe()


FAR_END_IP = "127.0.0.236"  # the mobile a user forwards to


async def test_a_user_forwarding_to_a_mobile_places_a_billed_outbound_leg_naming_them(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    place = await office(client, sessions)
    # The far end talks a second: a leg hung up as it is answered may bill no second at all.
    out = await outbound_route(client, place.world, sipp, FAR_END_IP, "uas_answer_talk.xml")
    mobile = await created(
        await client.post(
            "/api/v1/external-numbers",
            headers=place.world.admin.headers,
            json={"name": "Ana's mobile", "number": "+33698765432"},
        )
    )
    await set_rules(
        client, place.world, place.ana_id, unconditional={"type": "external", "id": mobile["id"]}
    )
    await applier.settled()
    await out.carrier.start()
    call = await place.call(sipp, "uac_call_hungup.xml", "202").run()
    assert call.ok, call.describe()
    answered = await out.carrier.wait()
    assert answered.ok, answered.describe()
    legs = await forwarded_legs(sessions, place.world.tenant_id, place.ana_id, count=2)
    outbound = [leg for leg in legs if leg.direction == "outbound"]
    assert len(outbound) == 1, [(leg.direction, leg.channel) for leg in legs]
    (leg,) = outbound
    assert (leg.to_number, leg.disposition, leg.billable) == ("+33698765432", "ANSWERED", True)
