"""A queue call's facts beyond its outcome, through the real Asterisk: the DID the caller
dialled (live from AMI, and in queue_log for the backfill), the device the agent answered on
and the queue's wrap-up after the call; served by the API."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx

from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.queue_calls.worker import Checkpoint, read_log
from tests.conftest import Asterisk, RunningApp
from tests.e2e.agent_tenant import one_agent_queue, retire
from tests.e2e.sipp import SippPool
from tests.e2e.test_agent_login import Sessions, answered_call, register, session_url
from tests.e2e.test_queue_calls import rows_of
from tests.waiting import until


async def test_a_queue_call_has_its_did_answering_device_and_wrap_up(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    world, agent, did = await one_agent_queue(pbx, client, sessions, applier, wrapup_seconds=2)
    phone = await register(tmp_path, asterisk, sipp, [agent], "uas_answer_hangup.xml")
    login = await client.post(session_url(agent.user_id), headers=world.supervisor.headers)
    assert login.status_code == 201, login.text
    worker = pbx.runtime.agents
    assert worker is not None
    await worker.settled()

    await answered_call(sipp, did, phone)

    async def written() -> bool:
        return len(await rows_of(sessions, world.tenant_id)) >= 1

    await until(written, "the queue call")
    (row,) = await rows_of(sessions, world.tenant_id)
    assert (row.outcome, row.agent_id, row.source) == ("answered", agent.user_id, "ami")
    assert row.did == did
    assert row.device_id == agent.device_id
    assert row.wrapup_seconds == Decimal(2)

    listed = await client.get("/api/v1/queue-calls", headers=world.supervisor.headers)
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()["items"]
    assert (item["did"], item["device_id"], Decimal(item["wrapup_seconds"])) == (
        did,
        agent.device_id,
        Decimal(2),
    )

    # queue_log has the DID too (Queue()'s URL argument on ENTERQUEUE), for the backfill.
    queue_log: Path = asterisk.sandbox.log_dir / "queue_log"
    (again,) = [
        rebuilt
        for rebuilt in read_log(queue_log, Checkpoint()).rows
        if rebuilt.tenant_id == world.tenant_id
    ]
    assert (again.caller_uniqueid, str(again.outcome), again.did) == (
        row.caller_uniqueid,
        "answered",
        did,
    )

    await retire(pbx, applier, world.tenant_id)
