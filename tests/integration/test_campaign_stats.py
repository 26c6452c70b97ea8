"""Campaign statistics and the law's abandon rate, from calls written as the dialer stores them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami.bus import EventBus
from graam_pbx.campaigns import stats
from graam_pbx.campaigns.models import CampaignContact
from graam_pbx.live.board import Board
from graam_pbx.live.wallboards import Wallboards
from tests.campaign_rows import add_attempt, campaign_setup
from tests.factories import TenantWorld, make_world, unique

Sessions = async_sessionmaker[AsyncSession]


@dataclass
class Started:
    world: TenantWorld
    campaign_id: int
    contacts: list[int]
    codes: dict[str, int]

    @property
    def url(self) -> str:
        return f"/api/v1/campaigns/{self.campaign_id}"


async def started_campaign(client: httpx.AsyncClient, sessions: Sessions, contacts: int) -> Started:
    """A running campaign of a new tenant, its contacts and its tenant's dispositions."""
    world = await make_world(client, sessions)
    setup = await campaign_setup(client, sessions, world, contacts)
    made = await client.post(
        "/api/v1/campaigns",
        headers=world.admin.headers,
        json={
            "name": unique("c"),
            "list_id": setup.list_id,
            "queue_id": setup.queue_id,
            "caller_id_number_id": setup.automated_number_id,
            "abandon_prompt_id": setup.prompt_id,
        },
    )
    assert made.status_code == 201, made.text
    campaign_id = made.json()["id"]
    started = await client.post(
        f"/api/v1/campaigns/{campaign_id}/start", headers=world.admin.headers
    )
    assert started.status_code == 200, started.text
    listed = await client.get("/api/v1/dispositions", headers=world.admin.headers)
    codes = {d["code"]: d["id"] for d in listed.json()["items"]}
    async with sessions() as session:
        ids = (
            await session.scalars(
                select(CampaignContact.contact_id)
                .where(CampaignContact.campaign_id == campaign_id)
                .order_by(CampaignContact.contact_id)
            )
        ).all()
    return Started(world, campaign_id, list(ids), codes)


async def test_the_abandon_rate_counts_only_calls_a_person_answered(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    run = await started_campaign(client, sessions, 6)
    now = datetime.now(UTC)
    tenant, campaign = run.world.tenant_id, run.campaign_id
    recent = now - timedelta(hours=1)
    ten_days_ago = now - timedelta(days=10)
    for contact, outcome, placed in [
        (run.contacts[0], "answered", recent),
        (run.contacts[1], "answered", recent),
        (run.contacts[2], "abandoned", recent),
        (run.contacts[3], "machine", recent),  # a machine is no person: not counted
        (run.contacts[3], "no_answer", recent),
        (run.contacts[4], "abandoned", ten_days_ago),
        (run.contacts[5], "answered", now - timedelta(days=40)),  # outside both periods
    ]:
        await add_attempt(sessions, tenant, campaign, contact, outcome=outcome, placed_at=placed)
    async with sessions() as session:
        short = await stats.abandon_figures(session, campaign, now - timedelta(hours=24), now)
        long = await stats.abandon_figures(session, campaign, now - timedelta(days=30), now)
        none = await stats.abandon_figures(session, campaign, now, now + timedelta(hours=1))
    assert short == stats.AbandonFigures(abandoned=1, live=3, rate=Decimal("0.3334"))
    assert long == stats.AbandonFigures(abandoned=2, live=4, rate=Decimal("0.5"))
    assert none == stats.AbandonFigures(abandoned=0, live=0, rate=Decimal(0))


def test_the_abandon_rate_is_rounded_up() -> None:
    # 3 abandons in 1000 live calls is the law's limit exactly; one more call's worth over it
    # must never show as within it.
    assert stats.abandon_rate(3, 1000) == Decimal("0.003")
    assert stats.abandon_rate(30, 1000) == Decimal("0.03")
    assert stats.abandon_rate(30001, 1000000) == Decimal("0.0301")
    assert stats.abandon_rate(0, 0) == Decimal(0)


async def test_statistics_per_campaign_and_per_agent(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    run = await started_campaign(client, sessions, 4)
    world = run.world
    tenant, campaign = world.tenant_id, run.campaign_id
    agent, supervisor = world.agent.user_id, world.supervisor.user_id
    a, b, c, d = run.contacts
    codes = run.codes
    await add_attempt(sessions, tenant, campaign, a, outcome="no_answer")
    await add_attempt(
        sessions,
        tenant,
        campaign,
        a,
        outcome="answered",
        agent_user_id=agent,
        talk_seconds=120,
        disposition_id=codes["interested"],
    )
    await add_attempt(
        sessions,
        tenant,
        campaign,
        b,
        outcome="answered",
        agent_user_id=agent,
        talk_seconds=30,
        disposition_id=codes["refused"],
    )
    await add_attempt(
        sessions,
        tenant,
        campaign,
        c,
        outcome="answered",
        agent_user_id=supervisor,
        talk_seconds=45,
        disposition_id=codes["interested"],
    )
    # A machine an agent took for a person: set as such, it is a machine, not a reach.
    await add_attempt(
        sessions,
        tenant,
        campaign,
        d,
        outcome="machine",
        agent_user_id=supervisor,
        talk_seconds=5,
        disposition_id=codes["answering-machine"],
    )
    await add_attempt(sessions, tenant, campaign, d, outcome="abandoned")
    await add_attempt(sessions, tenant, campaign, d, outcome=None, ended=False)
    response = await client.get(f"{run.url}/stats", headers=world.supervisor.headers)
    assert response.status_code == 200, response.text
    figures = response.json()
    assert figures["attempts"] == 7
    assert figures["answered"] == 3
    assert figures["machines"] == 1
    assert figures["abandoned"] == 1
    assert Decimal(figures["abandon_rate_24h"]) == Decimal("0.25")
    assert Decimal(figures["abandon_rate_30d"]) == Decimal("0.25")
    assert figures["contacts_reached"] == 3
    assert figures["dispositions"] == {"interested": 2, "refused": 1, "answering-machine": 1}
    assert figures["talk_seconds"] == 200
    assert sorted(figures["agents"], key=lambda a: a["display_name"]) == [
        {
            "user_id": agent,
            "display_name": "Agent",
            "calls": 2,
            "talk_seconds": 150,
            "dispositions": {"interested": 1, "refused": 1},
        },
        {
            "user_id": supervisor,
            "display_name": "Supervisor",
            "calls": 2,
            "talk_seconds": 50,
            "dispositions": {"interested": 1, "answering-machine": 1},
        },
    ]

    progress = (await client.get(f"{run.url}/progress", headers=world.admin.headers)).json()
    assert progress["attempts"] == 7
    assert progress["by_outcome"] == {
        "no_answer": 1,
        "answered": 3,
        "machine": 1,
        "abandoned": 1,
        "in_progress": 1,
    }
    assert progress["contacts"] == 4
    assert progress["remaining"] == 4  # the dialer, not these rows, moves contacts on

    attempts = await client.get(
        f"{run.url}/attempts", headers=world.admin.headers, params={"limit": 5}
    )
    page = attempts.json()
    assert len(page["items"]) == 5
    rest = await client.get(
        f"{run.url}/attempts",
        headers=world.admin.headers,
        params={"limit": 5, "cursor": page["next_cursor"]},
    )
    assert len(rest.json()["items"]) == 2
    assert rest.json()["next_cursor"] is None
    assert (await client.get(f"{run.url}/stats", headers=world.agent.headers)).status_code == 403


async def test_an_empty_campaign_has_zero_figures(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    run = await started_campaign(client, sessions, 1)
    figures = (await client.get(f"{run.url}/stats", headers=run.world.admin.headers)).json()
    assert figures["attempts"] == 0
    assert Decimal(figures["abandon_rate_24h"]) == 0
    assert sorted(figures["agents"], key=lambda a: a["display_name"]) == []
    refusals = await client.get(f"{run.url}/refusals", headers=run.world.admin.headers)
    assert refusals.json() == {"items": [], "next_cursor": None}


async def test_the_wallboard_reads_the_tenants_running_campaigns_and_their_calls(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    run = await started_campaign(client, sessions, 3)
    other = await started_campaign(client, sessions, 1)
    tenant, campaign = run.world.tenant_id, run.campaign_id
    a, b, c = run.contacts
    await add_attempt(sessions, tenant, campaign, a, outcome="answered")
    await add_attempt(sessions, tenant, campaign, b, outcome="abandoned")
    await add_attempt(sessions, tenant, campaign, c, outcome=None, ended=False)
    await add_attempt(
        sessions, other.world.tenant_id, other.campaign_id, other.contacts[0], outcome="answered"
    )
    boards = Wallboards(sessions, EventBus(), None)
    board = Board(tenant_id=tenant, seq=0)
    assert await boards._read_campaigns(board)
    line = board.campaigns[campaign]
    assert list(board.campaigns) == [campaign]
    assert (line.attempts, line.answered, line.in_progress) == (3, 1, 1)
    assert line.abandon_rate_24h == Decimal("0.5")
    assert not await boards._read_campaigns(board)  # nothing changed
    paused = await client.post(f"{run.url}/pause", headers=run.world.admin.headers)
    assert paused.status_code == 200, paused.text
    assert await boards._read_campaigns(board)
    assert board.campaigns == {}
