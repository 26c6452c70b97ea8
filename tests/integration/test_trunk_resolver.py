"""Trunks' host names are looked up by the control plane (real Postgres, the system's own
resolver), never by Asterisk at a reload: the generated identify names addresses only."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.asterisk.render import environment, render_all
from graam_pbx.asterisk.snapshot import load_snapshot
from graam_pbx.db import create_engine, session_factory
from graam_pbx.routing.models import Trunk
from graam_pbx.routing.worker import TrunkResolver
from tests.factories import unique


@pytest.fixture(scope="module")
async def own_sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url, pool_size=2)
    yield session_factory(engine)
    await engine.dispose()


class Changes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


async def add_trunk(sessions: async_sessionmaker[AsyncSession], host: str) -> int:
    async with sessions() as session, session.begin():
        trunk = Trunk(name=unique("resolved"), host=host, port=5060, country="FR")
        session.add(trunk)
        await session.flush()
        return trunk.id


async def read(sessions: async_sessionmaker[AsyncSession], trunk_id: int) -> Trunk:
    async with sessions() as session:
        trunk = (await session.execute(select(Trunk).where(Trunk.id == trunk_id))).scalar_one()
        return trunk


async def identify_matches(sessions: async_sessionmaker[AsyncSession], trunk_id: int) -> list[str]:
    async with sessions() as session:
        connection = await session.connection()
        snapshot = await load_snapshot(connection, [])
    text = render_all(environment(), snapshot)[f"trunks/{trunk_id}.conf"]
    return [line.split(" = ", 1)[1] for line in text.splitlines() if line.startswith("match = ")]


async def test_a_host_name_is_resolved_by_the_control_plane_and_rendered_as_addresses(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    trunk_id = await add_trunk(own_sessions, "localhost")
    before = await read(own_sessions, trunk_id)
    assert await identify_matches(own_sessions, trunk_id) == []  # never the name itself
    changes = Changes()
    resolver = TrunkResolver(own_sessions, changes, interval=300, timeout=5)

    assert await resolver.resolve_due() >= 1
    trunk = await read(own_sessions, trunk_id)
    assert trunk.resolved_host == "localhost"
    assert "127.0.0.1/32" in trunk.resolved_addresses
    assert trunk.version == before.version  # the operator's ETag still holds
    assert changes.count == 1
    [match] = await identify_matches(own_sessions, trunk_id)
    assert "127.0.0.1/32" in match.split(",")
    for entry in match.split(","):
        ipaddress.ip_network(entry)

    # Nothing is due again before the interval: no lookup, no write, no new pass.
    assert await resolver.resolve_due() == 0
    assert changes.count == 1


async def test_a_name_that_does_not_resolve_blocks_nothing_and_a_new_host_is_looked_up(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    trunk_id = await add_trunk(own_sessions, f"{unique('nowhere')}.invalid")
    changes = Changes()
    resolver = TrunkResolver(own_sessions, changes, interval=300, timeout=5)

    await resolver.resolve_due()
    trunk = await read(own_sessions, trunk_id)
    assert trunk.resolved_host == trunk.host and trunk.resolved_addresses == []
    assert await identify_matches(own_sessions, trunk_id) == []

    async with own_sessions() as session, session.begin():
        stored = await session.get(Trunk, trunk_id)
        assert stored is not None
        stored.host = "localhost"
    await resolver.resolve_due()
    trunk = await read(own_sessions, trunk_id)
    assert trunk.resolved_host == "localhost" and "127.0.0.1/32" in trunk.resolved_addresses
    assert "127.0.0.1/32" in (await identify_matches(own_sessions, trunk_id))[0].split(",")
