"""Webhooks of real calls: a carrier's caller dials a number routed to a queue, the agent's
sipp phone answers, talks and hangs up; the tenant's endpoint (a real HTTP server on
loopback) receives call.ringing, call.answered and call.ended with the CDRs, in that order,
each signed with its secret. A caller leaves a voicemail: voicemail.left, once, with links
that serve the message and its audio."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from graam_pbx.asterisk.applier import ConfigApplier
from tests.conftest import Asterisk, RunningApp
from tests.e2e.agent_tenant import add_agent_member
from tests.e2e.phones import speaking_caller
from tests.e2e.sipp import SippPool
from tests.e2e.test_calls import (
    CALLER,
    CARRIER_IP,
    Sessions,
    created,
    leave_message,
    new_device,
    new_number,
    new_trunk,
    registered_phone,
    route_number,
)
from tests.e2e.test_voicemail_messages import routed_box
from tests.factories import make_world, unique
from tests.waiting import until
from tests.webhook_receiver import Received, receiver

HOST = "127.0.0.222"  # this file's receiver; no other test uses it


async def cdrs_of(sessions: Sessions, tenant_id: int, linkedid: str) -> int:
    async with sessions() as session:
        count = await session.scalar(
            text("SELECT count(*) FROM cdrs WHERE tenant_id = :t AND linkedid = :l"),
            {"t": tenant_id, "l": linkedid},
        )
    return int(count or 0)


async def test_a_queue_calls_ringing_answer_and_end_reach_the_endpoint_in_order_signed(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    world = await make_world(client, sessions)
    admin = world.admin.headers
    device = await new_device(client, world, "241", world.agent.user_id)
    queue = await created(
        await client.post("/api/v1/queues", headers=admin, json={"name": unique("q")})
    )
    number = await new_number(client, world)
    await route_number(client, world, number, {"type": "queue", "id": queue["id"]})
    await new_trunk(client, world, CARRIER_IP)
    async with receiver(HOST) as hooks:
        made = await created(
            await client.post(
                "/api/v1/webhooks",
                headers=admin,
                json={
                    "url": hooks.url,
                    "events": ["call.ringing", "call.answered", "call.ended"],
                },
            )
        )
        await applier.settled()
        # The agent's phone answers, talks five seconds and hangs up.
        await registered_phone(pbx, sipp, device, "uas_answer_talk_long.xml")
        await add_agent_member(pbx, world, queue, device)
        caller = await speaking_caller(
            sipp, tmp_path, number["e164"], carrier_ip=CARRIER_IP
        ).start()
        ended = await caller.wait()
        assert ended.ok, ended.describe()

        def kinds(received: list[Received]) -> list[str]:
            return [request.json()["type"] for request in received]

        async def every_cdr_ended() -> bool:
            # One call.ended per CDR of the call (a queue call answered: the caller's leg,
            # the agent its peer), once they are all written.
            if "call.answered" not in kinds(hooks.received):
                return False
            call = hooks.received[0].json()["data"]["call_id"]
            written = await cdrs_of(sessions, world.tenant_id, call)
            return bool(written) and kinds(hooks.received).count("call.ended") == written

        try:
            await until(every_cdr_ended, "a call.ended per CDR of the call", timeout=30)
        except AssertionError as err:
            raise AssertionError(f"{err}: received {kinds(hooks.received)}") from None
        received = list(hooks.received)

    bodies: list[dict[str, Any]] = [request.json() for request in received]
    assert kinds(received)[:2] == ["call.ringing", "call.answered"], kinds(received)
    assert set(kinds(received)[2:]) == {"call.ended"}, kinds(received)
    call = bodies[0]["data"]["call_id"]
    for request, body in zip(received, bodies, strict=True):
        assert request.signed_by(made["secret"], time.time()), request.headers
        assert body["tenant_id"] == world.tenant_id
        assert body["data"]["call_id"] == call  # one call: every event names it
    for body in bodies[:2]:
        data = body["data"]
        assert (data["queue_id"], data["agent_user_id"]) == (queue["id"], world.agent.user_id)
        assert data["caller"]["number"].endswith("612345678"), data
    assert bodies[1]["data"]["hold_seconds"] is not None
    cdrs = [body["data"]["cdr"] for body in bodies[2:]]
    assert {cdr["linkedid"] for cdr in cdrs} == {call}
    assert any(cdr["agent_user_id"] == world.agent.user_id for cdr in cdrs), cdrs
    assert all(cdr["disposition"] == "ANSWERED" for cdr in cdrs), cdrs
    # Delivered once each: the worker's deliveries agree with what arrived (once it recorded
    # the last answer).
    arrived = sorted(int(body["id"]) for body in bodies)
    delivered: list[int] = []

    async def recorded() -> bool:
        listed = await client.get(
            f"/api/v1/webhooks/{made['id']}/deliveries",
            headers=admin,
            params={"state": "delivered"},
        )
        delivered[:] = sorted(item["event_id"] for item in listed.json()["items"])
        return len(delivered) >= len(arrived)

    await until(recorded, "every delivery recorded as delivered")
    assert delivered == arrived


async def test_a_voicemail_left_is_announced_once_with_links_to_the_message(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    asterisk: Asterisk,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    admin = world.admin.headers
    async with receiver(HOST) as hooks:
        made = await created(
            await client.post(
                "/api/v1/webhooks",
                headers=admin,
                json={"url": hooks.url, "events": ["voicemail.left"]},
            )
        )
        box, did = await routed_box(client, world, pbx, "842")
        await leave_message(pbx, sipp, asterisk, world, box, did)
        (request,) = await hooks.count(1)
        assert request.signed_by(made["secret"], time.time())
        body = request.json()
        assert body["type"] == "voicemail.left"
        data = body["data"]
        assert (data["box_id"], data["box_number"]) == (box["id"], "842")
        assert data["caller"]["number"] == CALLER
        message = await client.get(data["links"]["message"], headers=admin)
        assert message.status_code == 200, message.text
        assert message.json()["id"] == data["msg_id"]
        audio = await client.get(data["links"]["audio"], headers=admin)
        assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"

        # Read: Asterisk announces the box again; the message is not announced twice.
        read = await client.post(f"{data['links']['message']}/read", headers=admin)
        assert read.status_code == 200, read.text
    async with sessions() as session:
        count = await session.scalar(
            text(
                "SELECT count(*) FROM webhook_events WHERE tenant_id = :t "
                "AND type = 'voicemail.left'"
            ),
            {"t": world.tenant_id},
        )
    assert count == 1
