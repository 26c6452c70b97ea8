"""A progressive campaign through the real Asterisk: 50 contacts behind a sipp far end (people
who answer, busy lines, lines nobody answers, answering machines) and sipp agents taking the
answered calls from the campaign's queue.

The campaign ends by itself (finished) with every contact where its kind and the retries put
it; every call a person answered reached an agent; each attempt is one call at the far end;
the outbound leg of every answered call is billable, once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.campaigns import placing
from graam_pbx.campaigns.models import CampaignAttempt, CampaignContact, Contact
from graam_pbx.campaigns.placing import CampaignPlan
from tests.conftest import Asterisk, RunningApp
from tests.e2e.agent_tenant import retire
from tests.e2e.campaign_world import (
    BUSY,
    MACHINE,
    NO_ANSWER,
    PERSON,
    CampaignWorld,
    campaign_world,
    invites_by_number,
    judge_at_legal_hours,
)
from tests.e2e.sipp import SippPool
from tests.e2e.test_agent_login import Sessions
from tests.waiting import until

FAR_END_IP = "127.0.0.61"  # no other test's trunk uses it
AGENTS = 10
CONTACTS = {PERSON: 26, BUSY: 8, NO_ANSWER: 8, MACHINE: 8}
# The shortest delay the API allows (60 s); one retry of each outcome that has one.
RETRY = {"delay_seconds": 60, "max": 1}
RETRIES = {"busy": RETRY, "no_answer": RETRY, "machine": RETRY, "failed": RETRY}
# What each kind of contact ends with: its last outcome and its number of attempts.
EXPECTED = {PERSON: ("answered", 1), BUSY: ("busy", 2), NO_ANSWER: ("no_answer", 2)}
EXPECTED[MACHINE] = ("machine", 2)
FINISH_TIMEOUT = 420.0
# How long an answered person may wait in the queue for an agent here. The law's 2 s (1 s
# after AMD) is a timing this test does not judge: under a loaded run an agent's phone can take
# longer than that to answer, and the person would be abandoned. Abandonment has its own test
# (test_dialer's "no agent takes in time").
AGENT_WAIT_SECONDS = 30


def wait_for_agents(plan: CampaignPlan) -> int:
    return AGENT_WAIT_SECONDS


async def campaign_status(client: httpx.AsyncClient, cw: CampaignWorld, campaign_id: int) -> str:
    response = await client.get(
        f"/api/v1/campaigns/{campaign_id}", headers=cw.world.supervisor.headers
    )
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


async def wait_finished(
    client: httpx.AsyncClient, sessions: Sessions, cw: CampaignWorld, campaign_id: int
) -> None:
    """Wait for the dialer to finish the campaign; say where it stands when it does not."""

    async def finished() -> bool:
        return await campaign_status(client, cw, campaign_id) == "finished"

    try:
        await until(finished, "finished campaign", timeout=FINISH_TIMEOUT)
    except AssertionError:
        progress = await client.get(
            f"/api/v1/campaigns/{campaign_id}/progress", headers=cw.world.supervisor.headers
        )
        raise AssertionError(f"campaign not finished: {progress.text}") from None


async def attempts_of(sessions: Sessions, campaign_id: int) -> list[CampaignAttempt]:
    async with sessions() as session:
        rows = await session.scalars(
            select(CampaignAttempt)
            .where(CampaignAttempt.campaign_id == campaign_id)
            .order_by(CampaignAttempt.id)
        )
        return list(rows)


async def contacts_of(
    sessions: Sessions, campaign_id: int
) -> list[tuple[CampaignContact, Contact]]:
    async with sessions() as session:
        rows = await session.execute(
            select(CampaignContact, Contact)
            .join(Contact, Contact.id == CampaignContact.contact_id)
            .where(CampaignContact.campaign_id == campaign_id)
        )
        return [(link, contact) for link, contact in rows]


async def billable_legs(sessions: Sessions, tenant_id: int, linkedids: list[str]) -> Counter[str]:
    """Billable CDRs of the tenant by linkedid (an originated call's linkedid is the channel
    id the dialer gave it)."""
    async with sessions() as session:
        rows = await session.execute(
            text(
                "SELECT linkedid FROM cdrs WHERE tenant_id = :tenant AND billable "
                "AND linkedid = ANY(:ids)"
            ),
            {"tenant": tenant_id, "ids": linkedids},
        )
        return Counter(row[0] for row in rows)


def describe(attempts: list[CampaignAttempt]) -> str:
    return "\n".join(
        f"{a.id} {a.number} {a.outcome} dial={a.dial_status} amd={a.amd_status} "
        f"answered={a.answered_at} connected={a.connected_at} agent={a.agent_user_id}"
        for a in attempts
    )


async def test_a_progressive_campaign_calls_every_contact_as_its_kind_and_retries_say(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dialer = pbx.runtime.dialer
    assert dialer is not None, "the session's control plane runs no dialer"
    judge_at_legal_hours(monkeypatch, dialer)
    monkeypatch.setattr(placing, "abandon_wait_seconds", wait_for_agents)
    cw = await campaign_world(
        pbx,
        client,
        sessions,
        applier,
        asterisk,
        sipp,
        tmp_path,
        trunk_ip=FAR_END_IP,
        agents=AGENTS,
        contacts=CONTACTS,
    )
    try:
        admin = cw.world.admin.headers
        made = await client.post(
            "/api/v1/campaigns", headers=admin, json=cw.campaign(retries=RETRIES)
        )
        assert made.status_code == 201, made.text
        campaign: dict[str, Any] = made.json()
        started = await client.post(
            f"/api/v1/campaigns/{campaign['id']}/start", headers=cw.world.supervisor.headers
        )
        assert started.status_code == 200, started.text

        await wait_finished(client, sessions, cw, campaign["id"])
        attempts = await attempts_of(sessions, campaign["id"])
        far_end = await cw.far_end.stop()

        # Every contact where its kind puts it, after the retries its outcomes allow.
        contacts = await contacts_of(sessions, campaign["id"])
        assert len(contacts) == sum(CONTACTS.values())
        by_contact: dict[int, list[CampaignAttempt]] = defaultdict(list)
        for attempt in attempts:
            by_contact[attempt.contact_id].append(attempt)
        wrong = []
        for link, contact in contacts:
            kind = cw.kinds[contact.number]
            outcome, count = EXPECTED[kind]
            outcomes = [a.outcome for a in by_contact[contact.id]]
            if (link.state, link.last_outcome, outcomes) != ("done", outcome, [outcome] * count):
                wrong.append(f"{kind} {contact.number}: {link.state} {outcomes}")
        assert not wrong, "\n".join(wrong) + "\n" + describe(attempts)

        # Retries waited as configured: each second attempt at least the delay after the end
        # of the first.
        for tries in by_contact.values():
            if len(tries) == 2:
                first, second = tries
                assert first.ended_at is not None
                gap = (second.placed_at - first.ended_at).total_seconds()
                assert gap >= RETRY["delay_seconds"] - 1, describe(tries)

        # Every call a person answered reached an agent of the queue.
        agents = {agent.user_id for agent in cw.agents}
        answered = [a for a in attempts if a.outcome == "answered"]
        assert len(answered) == CONTACTS[PERSON]
        for attempt in answered:
            assert attempt.answered_at is not None, describe([attempt])
            assert attempt.connected_at is not None, describe([attempt])
            assert attempt.agent_user_id in agents, describe([attempt])

        # One call at the far end per attempt: as many INVITEs per number as attempts.
        placed = Counter(a.number for a in attempts)
        assert invites_by_number(far_end.messages) == placed, far_end.describe()

        # The outbound leg of every call the far end answered (people and machines) is
        # billable, once; no other leg of the campaign is.
        picked_up = [a.channel_id for a in attempts if a.answered_at is not None]
        assert len(picked_up) == CONTACTS[PERSON] + 2 * CONTACTS[MACHINE], describe(attempts)

        async def all_billed() -> bool:
            legs = await billable_legs(sessions, cw.world.tenant_id, picked_up)
            return set(legs) == set(picked_up)

        await until(all_billed, "a billable CDR of every answered call", timeout=30)
        legs = await billable_legs(sessions, cw.world.tenant_id, [a.channel_id for a in attempts])
        assert legs == Counter(picked_up), legs

        # The API reports the same.
        progress = await client.get(
            f"/api/v1/campaigns/{campaign['id']}/progress", headers=cw.world.supervisor.headers
        )
        assert progress.status_code == 200, progress.text
        body = progress.json()
        assert body["contacts"] == sum(CONTACTS.values()) and body["remaining"] == 0, body
        assert body["attempts"] == len(attempts), body
    finally:
        await retire(pbx, applier, cw.world.tenant_id)
