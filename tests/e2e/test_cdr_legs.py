"""Each leg's CDR through the real Asterisk: its owner, what was dialled, its disposition and
whether billing counts it.

sipp phones and carriers as in test_calls.py; the session's app writes the CDRs and serves
them, and each test reads them through the API as a tenant's user would.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.cdr.parse import _CDR_TEXT, moment, seconds
from tests.conftest import RunningApp
from tests.e2e.agent_tenant import add_agent_member
from tests.e2e.listings import listed
from tests.e2e.sipp import SippPool
from tests.e2e.test_calls import (
    CALLER,
    CARRIER_IP,
    add_queue_member,
    ami_events,
    created,
    new_agent,
    new_device,
    new_number,
    new_trunk,
    outbound_setup,
    phone_call,
    registered_phone,
    route_number,
    suspend,
)
from tests.factories import TenantWorld, make_world

Sessions = async_sessionmaker[AsyncSession]


async def legs(
    client: httpx.AsyncClient, headers: dict[str, str], count: int, **filters: str
) -> list[dict[str, Any]]:
    """The legs the API lists for ``filters`` once there are ``count`` of them."""
    return await listed(client, headers, "/api/v1/cdrs", count, timeout=30, **filters)


def micros_of(epoch: str) -> int:
    """Asterisk's ``%ld.%06ld`` epoch as microseconds."""
    whole, _, fraction = epoch.partition(".")
    return int(whole) * 1_000_000 + int(fraction.ljust(6, "0"))


async def summary_of(client: httpx.AsyncClient, world: TenantWorld) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/cdrs/summary", headers=world.admin.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_the_agents_leg_of_a_queue_call_is_the_agents_own(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    admin = world.admin.headers
    device = await new_device(client, world, "201")
    queue = await created(
        await client.post("/api/v1/queues", headers=admin, json={"name": "sales"})
    )
    number = await new_number(client, world)
    await route_number(client, world, number, {"type": "queue", "id": queue["id"]})
    await new_trunk(client, world, CARRIER_IP)
    await applier.settled()
    agent_phone = await registered_phone(pbx, sipp, device, "uas_answer_talk.xml")
    await add_queue_member(pbx, world, queue, device, penalty=0)

    queue_name = f"t{world.tenant_id}-q{queue['id']}"
    async with ami_events(pbx, "AgentConnect", "Cdr") as events:
        call = await sipp.uac(
            "carrier_call_answered.xml",
            ip=CARRIER_IP,
            service=number["e164"],
            keys={"caller": CALLER},
        ).run()
        assert call.ok, call.describe()
        answered = await agent_phone.wait()
        assert answered.ok, answered.describe()
        await events.wait_for(lambda event: event.get("Queue") == queue_name)
        cdr = await events.wait_for(
            lambda event: event.name == "Cdr" and event.get("GraamDevice") == device["sip_username"]
        )

    # Asterisk's own event as framed from the stream takes the parser's hot path, its
    # Timestamp header (manager.conf timestampevents = yes) included.
    assert cdr.get("Timestamp"), cdr
    assert cdr.block is not None
    assert _CDR_TEXT.fullmatch(cdr.block) is not None, cdr.block

    (leg,) = await legs(client, admin, 1, agent_id=str(world.agent.user_id))
    assert leg["device"] == device["sip_username"], leg
    assert leg["queue_id"] == queue["id"], leg
    assert leg["direction"] == "inbound", leg
    assert leg["to_number"] == number["e164"], leg
    assert leg["disposition"] == "answered", leg
    assert leg["billable"] is False, leg  # inbound: never billed
    # The agent's own answer, after the queue answered the caller: its billsec is its own.
    assert leg["answered_at"] is not None, leg
    assert leg["started_at"] < leg["answered_at"] <= leg["ended_at"], leg
    queue_answer, agent_answer = cdr.get("AnswerEpoch", ""), cdr.get("GraamAgentAnswer", "")
    assert Decimal(queue_answer) < Decimal(agent_answer), cdr
    answered_at = datetime.fromisoformat(leg["answered_at"])
    assert answered_at == moment(micros_of(agent_answer)), (leg, cdr)
    talk = datetime.fromisoformat(leg["ended_at"]) - answered_at
    assert Decimal(leg["billsec"]) == seconds(talk // timedelta(microseconds=1)), leg
    every = await legs(client, admin, 1, linkedid=leg["linkedid"], min_billsec="0")
    assert every == [leg], every
    # The agent reads its own leg.
    (own,) = await legs(client, world.agent.headers, 1)
    assert own["id"] == leg["id"], own
    (by_number,) = await legs(client, admin, 1, to=number["e164"])
    assert by_number["id"] == leg["id"], by_number


async def test_an_agent_whose_phone_rang_unanswered_owns_that_leg(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    admin = world.admin.headers
    other = await new_agent(client, world)
    answering = await new_device(client, world, "201")
    ringing = await new_device(client, world, "202", user_id=other)
    queue = await created(
        await client.post("/api/v1/queues", headers=admin, json={"name": "sales"})
    )  # rings all its members at once
    number = await new_number(client, world)
    await route_number(client, world, number, {"type": "queue", "id": queue["id"]})
    await new_trunk(client, world, CARRIER_IP)
    await applier.settled()
    answerer = await registered_phone(pbx, sipp, answering, "uas_answer_talk.xml")
    await registered_phone(pbx, sipp, ringing, "queue_agent_rings.xml")
    await add_queue_member(pbx, world, queue, answering, penalty=0)
    await add_agent_member(pbx, world, queue, ringing)

    call = await sipp.uac(
        "carrier_call_answered.xml", ip=CARRIER_IP, service=number["e164"], keys={"caller": CALLER}
    ).run()
    assert call.ok, call.describe()
    answered = await answerer.wait()
    assert answered.ok, answered.describe()

    (taken,) = await legs(client, admin, 1, agent_id=str(world.agent.user_id))
    assert (taken["device"], taken["disposition"]) == (answering["sip_username"], "answered")
    (missed,) = await legs(client, admin, 1, agent_id=str(other))
    assert missed["device"] == ringing["sip_username"], missed
    assert missed["disposition"] == "no-answer", missed
    assert (missed["answered_at"], Decimal(missed["billsec"])) == (None, 0), missed
    assert (missed["queue_id"], missed["linkedid"]) == (queue["id"], taken["linkedid"]), missed
    # Each agent reads its own leg of the call, and only it.
    (own,) = await legs(client, world.agent.headers, 1)
    assert own["id"] == taken["id"], own


async def test_an_internal_call_is_to_the_extension_and_owned_by_its_agent(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    caller = await new_device(client, world, "201")
    callee = await new_device(client, world, "202")
    await applier.settled()
    phone = await registered_phone(pbx, sipp, callee)
    await phone_call(sipp, caller, "202")
    assert (await phone.wait()).ok

    (leg,) = await legs(client, world.admin.headers, 1, to="202")
    assert leg["direction"] == "internal", leg
    assert leg["agent_id"] == world.agent.user_id, leg
    assert leg["device"] == callee["sip_username"], leg
    assert leg["disposition"] == "answered", leg
    assert leg["billable"] is False, leg


async def refused_call(sipp: SippPool, device: dict[str, Any], number: str) -> None:
    await phone_call(sipp, device, number, "uac_call_hungup.xml")


def assert_counted_apart(items: list[dict[str, Any]], direction: str, refused: int) -> None:
    (row,) = [item for item in items if item["direction"] == direction]
    assert row["answered"] == 0, row
    assert row["refused"] == refused, row
    assert row["billable"] == 0, row
    assert row["billable_billsec"] == "0", row


async def test_a_suspended_tenants_outbound_call_is_refused_and_never_billed(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    device, _, _ = await outbound_setup(client, world, sipp)
    await suspend(client, world, applier)
    await refused_call(sipp, device, "+33145678901")

    (leg,) = await legs(client, world.admin.headers, 1, disposition="refused")
    assert leg["refusal_reason"] == "suspended", leg
    assert leg["billable"] is False, leg
    assert leg["direction"] == "outbound", leg
    assert leg["to_number"] == "+33145678901", leg
    assert await legs(client, world.admin.headers, 0, disposition="answered") == []
    assert await legs(client, world.admin.headers, 0, billable="true") == []
    assert_counted_apart(await summary_of(client, world), "outbound", refused=1)


async def test_a_destination_not_allowed_is_refused_and_never_billed(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    device, _, _ = await outbound_setup(client, world, sipp)  # France only
    await applier.settled()
    await refused_call(sipp, device, "+14155550123")

    (leg,) = await legs(client, world.admin.headers, 1)
    assert leg["disposition"] == "refused", leg
    assert leg["refusal_reason"] == "destination-not-allowed", leg
    assert leg["billable"] is False, leg
    assert leg["to_number"] == "+14155550123", leg
    assert_counted_apart(await summary_of(client, world), "outbound", refused=1)
    export = await client.get("/api/v1/cdrs/export.csv", headers=world.admin.headers)
    assert export.status_code == 200, export.text
    (row,) = list(csv.DictReader(io.StringIO(export.text)))
    assert (row["disposition"], row["refusal_reason"], row["billable"]) == (
        "refused",
        "destination-not-allowed",
        "false",
    ), row
    assert row["to_number"] == "+14155550123", row


async def test_a_feature_code_call_is_neither_answered_nor_billed(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    device = await new_device(client, world, "201")
    await applier.settled()
    await refused_call(sipp, device, "*45")

    (leg,) = await legs(client, world.admin.headers, 1, direction="feature")
    assert leg["to_number"] == "*45", leg
    assert leg["billable"] is False, leg
    assert leg["refusal_reason"] is None, leg
    assert_counted_apart(await summary_of(client, world), "feature", refused=0)
