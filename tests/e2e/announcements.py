"""A tenant's number that answers and plays a prompt, for tests that load Asterisk with calls."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.asterisk.applier import ConfigApplier
from tests.e2e.test_calls import created, new_number, new_trunk, route_number
from tests.factories import make_world
from tests.unit.test_wav import make_wav


async def announced_number(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    applier: ConfigApplier,
    *,
    prompt_name: str,
    seconds: float,
    carrier_ip: str,
) -> tuple[int, str]:
    """A number of a tenant of its own, called from ``carrier_ip``, that answers and plays
    ``seconds`` of a prompt named ``prompt_name``: the tenant's id and the number (E.164)."""
    world = await make_world(client, sessions)
    number = await new_number(client, world)
    prompt = await created(
        await client.post(
            "/api/v1/prompts",
            headers=world.admin.headers,
            data={"name": prompt_name},
            files={"file": ("a.wav", make_wav(seconds=seconds), "audio/wav")},
        )
    )
    await route_number(client, world, number, {"type": "announcement", "id": prompt["id"]})
    await new_trunk(client, world, carrier_ip)
    await applier.settled()
    return world.tenant_id, str(number["e164"])
