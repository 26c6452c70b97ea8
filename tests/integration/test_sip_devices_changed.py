"""Whatever changes what Asterisk reads of a device says so at commit (migration 0038): the
device's SIP username on ``graam_sip_devices``, for the nodes to expire their cached copies
(graam_pbx/asterisk/sip_cache.py). Nothing is sent for a transaction rolled back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from graam_pbx.asterisk.sip_cache import CHANNEL, decode
from graam_pbx.cluster.signals import EVERYTHING
from graam_pbx.db import plain_url
from tests.factories import TenantWorld, make_world
from tests.integration.test_devices_api import Sessions, create_device

WAIT_S = 10


@pytest.fixture
async def heard(database_url: str) -> AsyncIterator[asyncio.Queue[str]]:
    """The payloads sent on the channel from now on."""
    payloads: asyncio.Queue[str] = asyncio.Queue()
    connection = await asyncpg.connect(plain_url(database_url))
    await connection.add_listener(CHANNEL, lambda *args: payloads.put_nowait(args[3]))
    yield payloads
    await connection.close()


async def named(payloads: asyncio.Queue[str], name: str) -> None:
    """Until a payload names the device (other tests' devices may come first)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            devices = decode(await payloads.get())
            if devices is None or name in devices:
                assert devices is not None, "every device expired for one device's change"
                return


async def device_heard(
    client: httpx.AsyncClient, sessions: Sessions, heard: asyncio.Queue[str]
) -> tuple[TenantWorld, dict[str, Any]]:
    """A new tenant's device, once its creation was named."""
    world = await make_world(client, sessions)
    device = await create_device(client, world)
    await named(heard, device["sip_username"])
    return world, device


async def test_a_device_created_changed_renamed_and_deleted_is_named(
    client: httpx.AsyncClient, sessions: Sessions, heard: asyncio.Queue[str]
) -> None:
    world, device = await device_heard(client, sessions, heard)
    name = device["sip_username"]

    changed = await client.patch(
        f"/api/v1/devices/{device['id']}", headers=world.admin.headers, json={"codecs": ["alaw"]}
    )
    assert changed.status_code == 200, changed.text
    await named(heard, name)

    # The agent's name is the device's caller name: a change of the user is the device's.
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE users SET display_name = 'Renamed' WHERE id = :id"),
            {"id": world.agent.user_id},
        )
    await named(heard, name)

    deleted = await client.delete(f"/api/v1/devices/{device['id']}", headers=world.admin.headers)
    assert deleted.status_code == 204, deleted.text
    await named(heard, name)


async def test_a_rolled_back_change_sends_nothing(
    client: httpx.AsyncClient, sessions: Sessions, heard: asyncio.Queue[str]
) -> None:
    world, device = await device_heard(client, sessions, heard)
    name = device["sip_username"]
    async with sessions() as session:
        await session.execute(
            text("UPDATE agent_devices SET codecs = '{ulaw}' WHERE id = :id"), {"id": device["id"]}
        )
        await session.rollback()
    # A marker committed after it: whatever the rollback had sent would have come first.
    marker = await create_device(client, world, extension="299")
    async with asyncio.timeout(WAIT_S):
        while True:
            devices = decode(await heard.get())
            assert devices is not None and name not in devices, devices
            if marker["sip_username"] in devices:
                break


async def test_a_node_changed_expires_every_device(
    sessions: Sessions, heard: asyncio.Queue[str]
) -> None:
    """A node's views depend on the node table (the node a connection names, the default
    node): any insert, delete, rename or state change there names every device. The trigger
    is per statement, so an update of no row is enough to see it and changes no node."""
    async with sessions() as session, session.begin():
        await session.execute(text("UPDATE asterisk_nodes SET state = state WHERE false"))
    async with asyncio.timeout(WAIT_S):
        while await heard.get() != EVERYTHING:
            pass


def test_a_payload_names_devices_or_every_device() -> None:
    assert decode("alice,bob") == frozenset({"alice", "bob"})
    assert decode(EVERYTHING) is None
    assert decode("") == frozenset()
