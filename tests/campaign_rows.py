"""What campaign tests start from: a tenant's queue, prompt and numbers through the API, its
contacts and calls (attempts) written directly, as the importer and the dialer store them."""

from __future__ import annotations

import itertools
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.campaigns.models import CampaignAttempt, Contact, ContactList
from tests.factories import TenantWorld, unique
from tests.unit.test_wav import make_wav

Sessions = async_sessionmaker[AsyncSession]
_suffix = itertools.count(secrets.randbelow(9_000) * 100)


def french_number(prefix: str) -> str:
    """A French number under ``prefix`` (E.164) that no other test uses."""
    return f"{prefix}{next(_suffix):0{12 - len(prefix)}d}"


async def held_number(client: httpx.AsyncClient, world: TenantWorld, e164: str) -> int:
    """``e164`` put in the catalogue by the operator and bought by the tenant: its id."""
    loaded = await client.post(
        "/api/v1/catalogue/numbers",
        headers=world.operator.headers,
        json=[{"e164": e164, "monthly_price": "1.00", "currency": "EUR"}],
    )
    assert loaded.status_code == 201, loaded.text
    bought = await client.post("/api/v1/numbers", headers=world.admin.headers, json={"e164": e164})
    assert bought.status_code == 201, bought.text
    number_id: int = bought.json()["id"]
    return number_id


async def checked_opposition_list(client: httpx.AsyncClient, world: TenantWorld) -> None:
    """Today's answer of the opposition list (none of the tenant's numbers on it): consumer
    campaigns may start only with one checked within 30 days."""
    imported = await client.post(
        "/api/v1/opposition-lists",
        headers=world.admin.headers,
        data={"list_date": datetime.now(UTC).date().isoformat()},
        files={"file": ("bloctel.csv", b"0100000000\n", "text/csv")},
    )
    assert imported.status_code == 201, imported.text


@dataclass
class CampaignSetup:
    """A tenant's objects a campaign names."""

    world: TenantWorld
    queue_id: int
    prompt_id: int
    plain_number_id: int  # a Paris number, outside ARCEP's automated-calling ranges
    automated_number_id: int  # +33 1 62…: reserved for automated calling systems
    list_id: int


async def campaign_setup(
    client: httpx.AsyncClient,
    sessions: Sessions,
    world: TenantWorld,
    contacts: int = 3,
    *,
    opposition_list: bool = True,
) -> CampaignSetup:
    queue = await client.post(
        "/api/v1/queues", headers=world.admin.headers, json={"name": unique("q")}
    )
    assert queue.status_code == 201, queue.text
    prompt = await client.post(
        "/api/v1/prompts",
        headers=world.admin.headers,
        data={"name": unique("abandon")},
        files={"file": ("abandon.wav", make_wav(seconds=0.5), "audio/wav")},
    )
    assert prompt.status_code == 201, prompt.text
    list_id = await contact_list(sessions, world.tenant_id, contacts)
    if opposition_list:
        await checked_opposition_list(client, world)
    return CampaignSetup(
        world=world,
        queue_id=queue.json()["id"],
        prompt_id=prompt.json()["id"],
        plain_number_id=await held_number(client, world, french_number("+3314")),
        automated_number_id=await held_number(client, world, french_number("+33162")),
        list_id=list_id,
    )


async def contact_list(sessions: Sessions, tenant_id: int, contacts: int) -> int:
    """A list of ``contacts`` mobile numbers in metropolitan France."""
    async with sessions() as session, session.begin():
        made = ContactList(tenant_id=tenant_id, name=unique("list"), default_region="FR")
        session.add(made)
        await session.flush()
        list_id = made.id
    await add_contacts(sessions, tenant_id, list_id, contacts)
    return list_id


async def add_contacts(
    sessions: Sessions,
    tenant_id: int,
    list_id: int,
    count: int,
    *,
    fields: dict[str, Any] | None = None,
    name: str | None = None,
) -> list[int]:
    async with sessions() as session, session.begin():
        rows = [
            Contact(
                tenant_id=tenant_id,
                list_id=list_id,
                number=french_number("+336"),
                region="FR",
                time_zones=["Europe/Paris"],
                name=name,
                fields=fields or {},
            )
            for _ in range(count)
        ]
        session.add_all(rows)
        await session.flush()
        return [row.id for row in rows]


async def add_attempt(
    sessions: Sessions,
    tenant_id: int,
    campaign_id: int,
    contact_id: int,
    *,
    outcome: str | None,
    placed_at: datetime | None = None,
    agent_user_id: int | None = None,
    talk_seconds: int | None = None,
    ended: bool = True,
    disposition_id: int | None = None,
) -> int:
    """One call as the dialer records it (answered ones with an agent and a talk time)."""
    placed = placed_at or datetime.now(UTC)
    answered = outcome in ("answered", "abandoned", "machine")
    async with sessions() as session, session.begin():
        contact = await session.get_one(Contact, contact_id)
        attempt = CampaignAttempt(
            tenant_id=tenant_id,
            campaign_id=campaign_id,
            contact_id=contact_id,
            number=contact.number,
            channel_id=f"camp-{uuid.uuid4().hex}",
            mode="progressive",
            placed_at=placed,
            answered_at=placed if answered else None,
            connected_at=placed if outcome == "answered" else None,
            ended_at=placed if ended else None,
            outcome=outcome,
            agent_user_id=agent_user_id,
            talk_seconds=talk_seconds,
            disposition_id=disposition_id,
            disposition_at=placed if disposition_id else None,
        )
        session.add(attempt)
        await session.flush()
        return attempt.id
