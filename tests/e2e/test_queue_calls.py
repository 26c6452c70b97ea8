"""Queue calls through the real Asterisk: one row per caller's stay in a queue, its outcome
and times, written live from AMI events and rebuilt identically from Asterisk's queue_log.

One tenant, two queues: "sales" with one agent whose phone answers and talks two seconds,
"waiting" with nobody in it (callers wait, give up, or reach its maximum wait); and a number
routed to a queue called out of hours.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.queue_calls.models import QueueCall
from graam_pbx.queue_calls.store import write_rows
from graam_pbx.queue_calls.worker import Checkpoint, read_log
from tests.conftest import Asterisk, RunningApp
from tests.e2e.agent_tenant import add_agent_member
from tests.e2e.sipp import SippPool, free_udp_port
from tests.e2e.test_calls import (
    CALLER,
    CARRIER_IP,
    Sessions,
    closed_number,
    created,
    leave_message,
    new_device,
    new_number,
    new_trunk,
    new_voicemail_box,
    registered_phone,
    route_number,
)
from tests.factories import make_world
from tests.waiting import until

ONE_SECOND = timedelta(seconds=1)


def whole_second(at: datetime) -> datetime:
    """A time as queue_log writes it: the whole seconds, truncated."""
    return at.replace(microsecond=0)


async def rows_of(sessions: Sessions, tenant_id: int) -> list[QueueCall]:
    async with sessions() as session:
        statement = select(QueueCall).where(QueueCall.tenant_id == tenant_id).order_by(QueueCall.id)
        return list((await session.scalars(statement)).all())


async def call_queue(sipp: SippPool, did: str, scenario: str) -> None:
    rtp_port = free_udp_port(CARRIER_IP, pair=True)
    keys = {"caller": CALLER, "rtp_ip": CARRIER_IP, "rtp_port": str(rtp_port)}
    result = await sipp.uac(scenario, ip=CARRIER_IP, service=did, keys=keys).run()
    assert result.ok, result.describe()


async def test_answered_abandoned_and_timed_out_calls_are_recorded_once_from_either_source(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    admin = world.admin.headers
    agent_id = world.agent.user_id
    device = await new_device(client, world, "201", agent_id)
    sales = await created(
        await client.post("/api/v1/queues", headers=admin, json={"name": "sales"})
    )
    waiting = await created(
        await client.post("/api/v1/queues", headers=admin, json={"name": "waiting", "max_wait": 6})
    )
    to_sales = await new_number(client, world)
    await route_number(client, world, to_sales, {"type": "queue", "id": sales["id"]})
    to_waiting = await new_number(client, world)
    await route_number(client, world, to_waiting, {"type": "queue", "id": waiting["id"]})
    await new_trunk(client, world, CARRIER_IP)
    await applier.settled()
    phone = await registered_phone(pbx, sipp, device, "uas_answer_talk.xml")
    await add_agent_member(pbx, world, sales, device)  # members are dynamic

    # 1. Answered by the agent, who talks two seconds and hangs up.
    await call_queue(sipp, to_sales["e164"], "carrier_queue_hold.xml")
    answered_by_phone = await phone.wait()
    assert answered_by_phone.ok, answered_by_phone.describe()
    # 2. Gives up after three seconds of waiting (the queue's maximum is six).
    await call_queue(sipp, to_waiting["e164"], "carrier_queue_abandon.xml")
    # 3. Waits until the maximum wait; the fallback (none: hang up) ends the call.
    await call_queue(sipp, to_waiting["e164"], "carrier_queue_hold.xml")

    async def three_rows() -> bool:
        return len(await rows_of(sessions, world.tenant_id)) >= 3

    await until(three_rows, "three queue calls")
    answered, abandoned, timed_out = await rows_of(sessions, world.tenant_id)

    assert (answered.outcome, answered.queue_id, answered.agent_id) == (
        "answered",
        sales["id"],
        agent_id,
    )
    assert answered.answered_at is not None
    assert answered.caller_number == CALLER
    assert answered.position_at_entry == 1
    assert Decimal(1) <= answered.talk_seconds <= Decimal(4)
    assert answered.wait_seconds <= Decimal(3)
    assert answered.entry == 1

    assert (abandoned.outcome, abandoned.queue_id, abandoned.agent_id) == (
        "abandoned",
        waiting["id"],
        None,
    )
    assert abandoned.abandon_position == 1
    assert abandoned.answered_at is None
    assert Decimal(2) <= abandoned.wait_seconds <= Decimal(5)

    assert (timed_out.outcome, timed_out.queue_id) == ("timeout", waiting["id"])
    assert timed_out.answered_at is None
    assert Decimal(5) <= timed_out.wait_seconds <= Decimal(8)

    # The same calls rebuilt from Asterisk's queue_log: the same rows (the log counts whole
    # seconds), under the same keys.
    queue_log: Path = asterisk.sandbox.log_dir / "queue_log"
    rebuilt = [
        row for row in read_log(queue_log, Checkpoint()).rows if row.tenant_id == world.tenant_id
    ]
    assert len(rebuilt) == 3
    for stored, again in zip([answered, abandoned, timed_out], rebuilt, strict=True):
        assert (again.caller_uniqueid, again.queue_name, again.entry) == (
            stored.caller_uniqueid,
            stored.queue_name,
            stored.entry,
        )
        assert str(again.outcome) == stored.outcome
        assert again.agent_id == stored.agent_id
        assert again.position_at_entry == stored.position_at_entry
        assert again.abandon_position == stored.abandon_position
        assert again.caller_number == stored.caller_number
        assert abs(again.entered_at - whole_second(stored.entered_at)) <= ONE_SECOND
        assert again.ended_at is not None
        assert stored.ended_at is not None
        assert abs(again.ended_at - whole_second(stored.ended_at)) <= ONE_SECOND
        assert abs(again.wait_seconds - stored.wait_seconds) <= 1
        assert abs(again.talk_seconds - stored.talk_seconds) <= 1

    # Backfilled again (as after a restart, and by the writer itself): nothing doubled.
    async with sessions() as session, session.begin():
        await write_rows(session, rebuilt, "queue_log")
    worker = pbx.runtime.queue_calls
    assert worker is not None
    before = worker.backfills
    worker.request_backfill()

    async def backfilled() -> bool:
        return worker.backfills > before

    await until(backfilled, "backfill from queue_log")
    async with sessions() as session:
        count = await session.scalar(
            select(func.count()).where(QueueCall.tenant_id == world.tenant_id)
        )
    assert count == 3

    # Listed through the API: the supervisor sees the tenant's, the agent only its answered.
    response = await client.get("/api/v1/queue-calls", headers=world.supervisor.headers)
    assert response.status_code == 200, response.text
    assert [item["outcome"] for item in response.json()["items"]] == [
        "answered",
        "abandoned",
        "timeout",
    ]
    page: dict[str, Any] = (
        await client.get("/api/v1/queue-calls", headers=world.agent.headers)
    ).json()
    assert [item["id"] for item in page["items"]] == [answered.id]
    response = await client.get(
        "/api/v1/queue-calls",
        headers=world.supervisor.headers,
        params={"outcome": "abandoned", "queue_id": waiting["id"]},
    )
    assert [item["id"] for item in response.json()["items"]] == [abandoned.id]
    export = await client.get("/api/v1/queue-calls/export.csv", headers=admin)
    assert export.status_code == 200
    assert len(export.text.strip().splitlines()) == 4


async def test_a_queue_number_called_out_of_hours_is_a_closed_queue_call(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    admin = world.admin.headers
    queue = await created(await client.post("/api/v1/queues", headers=admin, json={"name": "q"}))
    box = await new_voicemail_box(client, world)
    number = await closed_number(
        client,
        world,
        "no-opening-hours",
        {"type": "queue", "id": queue["id"]},
        {"type": "voicemail", "id": box["id"]},
    )
    await new_trunk(client, world, CARRIER_IP)
    await applier.settled()

    await leave_message(pbx, sipp, asterisk, world, box, number["e164"])

    async def one_row() -> bool:
        return len(await rows_of(sessions, world.tenant_id)) >= 1

    await until(one_row, "closed queue call")
    (row,) = await rows_of(sessions, world.tenant_id)
    assert (row.outcome, row.queue_id, row.wait_seconds) == ("closed", queue["id"], 0)
    assert row.answered_at is None and row.position_at_entry is None
    assert row.caller_number == CALLER
    queue_log: Path = asterisk.sandbox.log_dir / "queue_log"
    (again,) = [
        row for row in read_log(queue_log, Checkpoint()).rows if row.tenant_id == world.tenant_id
    ]
    assert (again.caller_uniqueid, again.entry, str(again.outcome), again.caller_number) == (
        row.caller_uniqueid,
        row.entry,
        row.outcome,
        row.caller_number,
    )


async def test_calls_made_while_the_writer_was_away_are_written_from_queue_log(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    admin = world.admin.headers
    queue = await created(
        await client.post("/api/v1/queues", headers=admin, json={"name": "away", "max_wait": 30})
    )
    number = await new_number(client, world)
    await route_number(client, world, number, {"type": "queue", "id": queue["id"]})
    await new_trunk(client, world, CARRIER_IP)
    await applier.settled()
    worker = pbx.runtime.queue_calls
    assert worker is not None

    await worker.stop()  # as if the control plane were down: no AMI event reaches it
    try:
        await call_queue(sipp, number["e164"], "carrier_queue_abandon.xml")
        assert await rows_of(sessions, world.tenant_id) == []
    finally:
        await worker.start()  # reads the queue_log after its checkpoint

    async def one_row() -> bool:
        return len(await rows_of(sessions, world.tenant_id)) >= 1

    await until(one_row, "backfilled queue call")
    (row,) = await rows_of(sessions, world.tenant_id)
    assert (row.outcome, row.source, row.abandon_position) == ("abandoned", "queue_log", 1)
    assert Decimal(2) <= row.wait_seconds <= Decimal(5)
