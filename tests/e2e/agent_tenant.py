"""Agents taking a queue's calls from the carrier, for the tests of what those calls leave
behind (the agent's timeline, the queue call's facts, the agent's legs)."""

from __future__ import annotations

from typing import Any

import httpx

from graam_pbx.asterisk.applier import ConfigApplier
from tests.conftest import RunningApp
from tests.e2e.test_agent_login import (
    Phone,
    Sessions,
    configured,
    end_and_terminate,
    new_number_to_queue,
    new_tenant,
    raw_connection,
)
from tests.factories import TenantWorld


async def add_agent_member(
    pbx: RunningApp, world: TenantWorld, queue: dict[str, Any], device: dict[str, Any]
) -> None:
    """The device a member of the queue, named as its agent's login names it (agent-<user
    id>), as Asterisk then announces its rings and connects."""
    await pbx.runtime.ami.action(
        "QueueAdd",
        {
            "Queue": f"t{world.tenant_id}-q{queue['id']}",
            "Interface": f"PJSIP/{device['sip_username']}",
            "MemberName": f"agent-{device['user_id']}",
        },
    )


async def one_agent_queue(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    wrapup_seconds: int,
) -> tuple[TenantWorld, Phone, str]:
    """A tenant whose one agent is a member of its queue (a wrap-up of ``wrapup_seconds``
    after each call), and the number whose IVR sends 1 there; live in Asterisk."""
    world, made = await new_tenant(pbx, client, sessions, licences=1, agents=1)
    (agent,) = made.agents
    conn = await raw_connection(pbx)
    try:
        await conn.execute(
            "UPDATE queues SET wrapup_time = $1 WHERE id = $2", wrapup_seconds, made.queue_id
        )
    finally:
        await conn.close()
    did = await new_number_to_queue(client, world, made.queue_id)
    await configured(applier, {world.tenant_id})
    return world, agent, did


async def retire(pbx: RunningApp, applier: ConfigApplier, tenant_id: int) -> None:
    """The tenant's sessions end and its files leave the session-wide Asterisk."""
    conn = await raw_connection(pbx)
    try:
        await end_and_terminate(conn, [tenant_id])
    finally:
        await conn.close()
    applier.request({tenant_id})
