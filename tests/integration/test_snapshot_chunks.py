"""A full pass reads its tenants in chunks (asterisk/applier.py): every way of slicing them
gives exactly the configuration one read of everything gives, in the same view."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.asterisk.snapshot import SnapshotReader, TenantConf, load_snapshot
from tests.factories import TenantWorld, make_world, unique

Sessions = async_sessionmaker[AsyncSession]


async def configured_world(client: httpx.AsyncClient, sessions: Sessions) -> TenantWorld:
    world = await make_world(client, sessions)
    for path, body in (
        ("/api/v1/queues", {"name": unique("q")}),
        (
            "/api/v1/devices",
            {
                "user_id": world.agent.user_id,
                "name": unique("desk"),
                "extension": "201",
                "codecs": ["ulaw"],
                "transport": "udp",
            },
        ),
    ):
        made = await client.post(path, headers=world.admin.headers, json=body)
        assert made.status_code == 201, made.text
    return world


async def read_in_chunks(
    sessions: Sessions, size: int, tenant_ids: list[int] | None = None
) -> tuple[TenantConf, ...]:
    async with sessions() as session:
        reader = await SnapshotReader.open(await session.connection())
        rows = await reader.tenant_rows(tenant_ids)
        tenants: list[TenantConf] = []
        for first in range(0, len(rows), size):
            tenants += await reader.tenants(rows[first : first + size])
        return tuple(tenants)


async def test_chunks_read_what_one_read_of_everything_gives(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    worlds = [await configured_world(client, sessions) for _ in range(5)]
    async with sessions() as session:
        whole = (await load_snapshot(await session.connection())).tenants
    ours = {world.tenant_id for world in worlds}
    assert ours <= {tenant.id for tenant in whole}
    assert all(t.devices and t.queues and t.agents for t in whole if t.id in ours)

    # Slices of every tenant are read by their range of ids.
    for size in (1, 2, 3, len(whole)):
        assert await read_in_chunks(sessions, size) == whole

    # A sparse set (a node's tenants) is read by its ids: only those tenants, all of them.
    for sparse in (sorted(ours)[::2], [min(ours), max(ours)]):
        expected = tuple(tenant for tenant in whole if tenant.id in sparse)
        for size in (1, 2, len(sparse)):
            assert await read_in_chunks(sessions, size, sparse) == expected
