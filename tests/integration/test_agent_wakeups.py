"""An API process's agent changes told to the active worker after their commits, gathered
(graam_pbx.cluster.agent_signals), against a real Postgres and a real LISTEN."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from graam_pbx.agents.sessions import PENDING_KEY
from graam_pbx.cluster import signals
from graam_pbx.cluster.agent_signals import AgentWakeups
from graam_pbx.db import create_engine, plain_url, session_factory

# Longer than the test's own adds take, however slow the machine.
GATHER = 0.3
# Tenant ids no row has: only the notifications are looked at.
_ids = itertools.count(9_100_000_000)


def unique() -> int:
    return next(_ids)


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    made = create_engine(database_url, pool_size=2)
    yield made.execution_options(isolation_level="AUTOCOMMIT")
    await made.dispose()


@pytest.fixture
async def heard(database_url: str) -> AsyncIterator[asyncio.Queue[str]]:
    """The payloads the worker's channel carries, from now on."""
    queue: asyncio.Queue[str] = asyncio.Queue()

    def note(*notification: Any) -> None:
        queue.put_nowait(notification[3])  # (connection, pid, channel, payload)

    listener = await asyncpg.connect(plain_url(database_url))
    await listener.add_listener(signals.AGENTS_CHANNEL, note)
    yield queue
    await listener.close()


async def payload_naming(heard: asyncio.Queue[str], tenants: set[int]) -> set[int]:
    """The tenants of the first notification naming any of ``tenants`` (others' changes may
    come between)."""
    async with asyncio.timeout(10):
        while True:
            named = signals.decode(await heard.get()) or set()
            if named & tenants:
                return named


async def test_changes_of_one_gathering_go_in_one_notification(
    engine: AsyncEngine, heard: asyncio.Queue[str]
) -> None:
    tenants = {unique() for _ in range(3)}
    wakeups = AgentWakeups(engine, gather=GATHER)
    await wakeups.start()
    try:
        for tenant in sorted(tenants):
            wakeups.add({tenant})
        assert await payload_naming(heard, tenants) == tenants
        # A change after the gathering went out is sent with the next one.
        later = unique()
        wakeups.add({later})
        assert await payload_naming(heard, {later}) == {later}
    finally:
        await wakeups.stop()


async def test_a_stop_sends_what_was_committed_before_it(
    engine: AsyncEngine, heard: asyncio.Queue[str]
) -> None:
    tenant = unique()
    wakeups = AgentWakeups(engine, gather=3600.0)  # never sent by the gathering itself
    await wakeups.start()
    wakeups.add({tenant})
    await wakeups.stop()
    assert await payload_naming(heard, {tenant}) == {tenant}


async def test_a_committed_session_change_is_told_and_a_rolled_back_one_is_not(
    database_url: str, engine: AsyncEngine, heard: asyncio.Queue[str]
) -> None:
    """Through a session factory, as an API process wires it: the tenants a commit changed
    reach the gatherer once the commit is done, a rollback's never."""
    wakeups = AgentWakeups(engine, gather=GATHER)
    await wakeups.start()
    owner = create_engine(database_url, pool_size=1)
    sessions = session_factory(owner, on_agent_change=wakeups.add, notify_changes=True)
    kept, dropped = unique(), unique()
    try:
        with contextlib.suppress(RuntimeError):
            async with sessions() as session, session.begin():
                session.info.setdefault(PENDING_KEY, set()).add(dropped)
                raise RuntimeError("rolled back")
        async with sessions() as session, session.begin():
            session.info.setdefault(PENDING_KEY, set()).add(kept)
        assert await payload_naming(heard, {kept, dropped}) == {kept}
    finally:
        await wakeups.stop()
        await owner.dispose()
