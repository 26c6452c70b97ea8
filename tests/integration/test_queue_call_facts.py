"""Writing queue calls to the real Postgres: the answering device and the wrap-up are filled in,
from the live path (the device named by AMI) and from the queue_log backfill (the device the
agent was logged in from), and a call nobody answered has neither."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.db import create_engine, plain_url, session_factory
from graam_pbx.queue_calls.models import QueueCall
from graam_pbx.queue_calls.store import write_rows
from graam_pbx.queue_calls.tracker import Outcome, QueueCallRow

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DID = "+33142685300"


@dataclass
class Tenant:
    tenant_id: int
    queue_id: int
    agent_id: int
    desk: int  # the agent's own device
    hot_desk: int  # another device, the one the agent logged in from


@pytest.fixture(scope="module")
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url, pool_size=4)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture(scope="module")
async def tenant(database_url: str) -> Tenant:
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        tenant_id = await conn.fetchval(
            "INSERT INTO tenants (slug, name, country, timezone, status, plan, licences, "
            "version) VALUES ('facts', 'facts', 'FR', 'Europe/Paris', 'active', 'standard', 2, "
            "1) RETURNING id"
        )
        queue_id = await conn.fetchval(
            "INSERT INTO queues (tenant_id, name, strategy, ring_timeout, retry, wrapup_time, "
            "music_on_hold, announce_position, announce_holdtime, announce_frequency, weight, "
            "version) VALUES ($1, 'q', 'ringall', 15, 1, 7, 'default', false, false, 0, 0, 1) "
            "RETURNING id",
            tenant_id,
        )
        agent_id = await conn.fetchval(
            "INSERT INTO users (tenant_id, email, display_name, role, password_hash, disabled, "
            "version) VALUES ($1, 'a@facts.example', 'A', 'agent', 'x', false, 1) RETURNING id",
            tenant_id,
        )
        devices = []
        for name, extension in (("facts-desk", "201"), ("facts-hot", "202")):
            devices.append(
                await conn.fetchval(
                    "INSERT INTO agent_devices (tenant_id, user_id, sip_username, password_ha1, "
                    "extension, codecs, transport, max_contacts, version) VALUES ($1, $2, $3, "
                    "$4, $5, '{ulaw}', 'udp', 1, 1) RETURNING id",
                    tenant_id,
                    agent_id,
                    name,
                    "0" * 32,
                    extension,
                )
            )
        # Logged in from the hot desk an hour before the calls, and still.
        await conn.execute(
            "INSERT INTO agent_sessions (tenant_id, user_id, device_id, source, started_at, "
            "paused) VALUES ($1, $2, $3, 'api', $4, false)",
            tenant_id,
            agent_id,
            devices[1],
            AT - timedelta(hours=1),
        )
    finally:
        await conn.close()
    return Tenant(tenant_id, queue_id, agent_id, devices[0], devices[1])


def row(tenant: Tenant, uniqueid: str, *, answered: bool, device: str | None) -> QueueCallRow:
    return QueueCallRow(
        tenant_id=tenant.tenant_id,
        queue_id=tenant.queue_id,
        queue_name=f"t{tenant.tenant_id}-q{tenant.queue_id}",
        caller_uniqueid=uniqueid,
        entry=1,
        linkedid=uniqueid,
        caller_number="+33612345678",
        entered_at=AT,
        position_at_entry=1,
        ended_at=AT + timedelta(seconds=30),
        answered_at=AT + timedelta(seconds=5) if answered else None,
        agent_id=tenant.agent_id if answered else None,
        wait_seconds=Decimal(5),
        talk_seconds=Decimal(25) if answered else Decimal(0),
        outcome=Outcome.ANSWERED if answered else Outcome.ABANDONED,
        did=DID,
        device=device,
    )


async def test_answered_rows_get_their_device_and_the_queues_wrap_up(
    sessions: async_sessionmaker[AsyncSession], tenant: Tenant
) -> None:
    async with sessions() as session, session.begin():
        await write_rows(session, [row(tenant, "live", answered=True, device="facts-desk")], "ami")
        await write_rows(
            session,
            [
                row(tenant, "backfilled", answered=True, device=None),
                row(tenant, "abandoned", answered=False, device=None),
            ],
            "queue_log",
        )
    async with sessions() as session:
        stored = {
            call.caller_uniqueid: call
            for call in await session.scalars(
                select(QueueCall).where(QueueCall.tenant_id == tenant.tenant_id)
            )
        }
    live, backfilled, abandoned = stored["live"], stored["backfilled"], stored["abandoned"]
    # Live: the device AMI named; backfilled: the one the agent was logged in from.
    assert (live.device_id, backfilled.device_id, abandoned.device_id) == (
        tenant.desk,
        tenant.hot_desk,
        None,
    )
    assert (live.wrapup_seconds, backfilled.wrapup_seconds, abandoned.wrapup_seconds) == (
        Decimal(7),
        Decimal(7),
        Decimal(0),
    )
    assert {call.did for call in stored.values()} == {DID}


async def test_a_device_of_another_tenant_is_never_named(
    sessions: async_sessionmaker[AsyncSession], tenant: Tenant, database_url: str
) -> None:
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        other = await conn.fetchval(
            "INSERT INTO tenants (slug, name, country, timezone, status, plan, licences, "
            "version) VALUES ('facts-other', 'o', 'FR', 'Europe/Paris', 'active', 'standard', "
            "1, 1) RETURNING id"
        )
    finally:
        await conn.close()
    foreign = row(tenant, "foreign", answered=True, device="facts-desk")
    foreign.tenant_id = other
    foreign.queue_name = f"t{other}-q1"
    async with sessions() as session, session.begin():
        await write_rows(session, [foreign], "ami")
    async with sessions() as session:
        call = await session.scalar(select(QueueCall).where(QueueCall.tenant_id == other))
    assert call is not None
    assert (call.device_id, call.agent_id, call.queue_id) == (None, None, None)
