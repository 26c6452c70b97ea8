"""Campaigns, dispositions and the agent's call screen through the real API and database.

Calls (attempts) are written as the dialer stores them: no telephony here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit.models import AuditEntry
from graam_pbx.campaigns.calls import render_script
from graam_pbx.campaigns.models import CampaignContact, Contact
from graam_pbx.tenants.models import Tenant
from tests.campaign_rows import (
    CampaignSetup,
    add_attempt,
    add_contacts,
    campaign_setup,
    checked_opposition_list,
    contact_list,
)
from tests.conftest import RunningApp
from tests.factories import PASSWORD, Actor, fields_of, login, make_world, unique

Sessions = async_sessionmaker[AsyncSession]
CAMPAIGNS = "/api/v1/campaigns"


def body(setup: CampaignSetup, **overrides: Any) -> dict[str, Any]:
    return {
        "name": unique("c"),
        "list_id": setup.list_id,
        "queue_id": setup.queue_id,
        "caller_id_number_id": setup.automated_number_id,
        "mode": "progressive",
        "abandon_prompt_id": setup.prompt_id,
        **overrides,
    }


async def create(
    client: httpx.AsyncClient, setup: CampaignSetup, **overrides: Any
) -> dict[str, Any]:
    response = await client.post(
        CAMPAIGNS, headers=setup.world.admin.headers, json=body(setup, **overrides)
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


@pytest.fixture
async def setup(client: httpx.AsyncClient, sessions: Sessions) -> CampaignSetup:
    return await campaign_setup(client, sessions, await make_world(client, sessions))


async def dispositions(client: httpx.AsyncClient, setup: CampaignSetup) -> dict[str, int]:
    listed = await client.get("/api/v1/dispositions", headers=setup.world.admin.headers)
    assert listed.status_code == 200, listed.text
    return {d["code"]: d["id"] for d in listed.json()["items"]}


# ---- settings -------------------------------------------------------------------------------


async def test_a_campaign_is_created_as_a_draft_with_default_retries(
    client: httpx.AsyncClient, setup: CampaignSetup
) -> None:
    made = await create(client, setup, retries={"busy": {"delay_seconds": 900, "max": 3}})
    assert made["status"] == "draft"
    assert made["retries"] == {
        "no_answer": {"delay_seconds": 7200, "max": 2},
        "busy": {"delay_seconds": 900, "max": 3},
        "failed": {"delay_seconds": 3600, "max": 1},
        "machine": {"delay_seconds": 14400, "max": 1},
    }
    assert Decimal(made["abandon_target"]) == Decimal("0.025")
    world = setup.world
    read = await client.get(f"{CAMPAIGNS}/{made['id']}", headers=world.supervisor.headers)
    assert read.status_code == 200
    assert read.headers["ETag"] == f'"{made["id"]}.{made["version"]}"'
    listed = await client.get(CAMPAIGNS, headers=world.supervisor.headers)
    assert [c["id"] for c in listed.json()["items"]] == [made["id"]]
    assert (await client.get(CAMPAIGNS, headers=world.agent.headers)).status_code == 403
    by_supervisor = await client.post(CAMPAIGNS, headers=world.supervisor.headers, json=body(setup))
    assert by_supervisor.status_code == 403
    taken = await client.post(
        CAMPAIGNS, headers=world.admin.headers, json=body(setup, name=made["name"])
    )
    assert taken.status_code == 409


async def test_automated_dialling_needs_a_caller_id_in_arceps_ranges(
    client: httpx.AsyncClient, setup: CampaignSetup
) -> None:
    headers = setup.world.admin.headers
    for mode in ("progressive", "predictive"):
        refused = await client.post(
            CAMPAIGNS,
            headers=headers,
            json=body(setup, mode=mode, caller_id_number_id=setup.plain_number_id),
        )
        assert refused.status_code == 422, refused.text
        (error,) = refused.json()["details"]["errors"]
        assert error["field"] == "body.caller_id_number_id"
        assert "automated calling" in error["reason"]
    preview = await create(client, setup, mode="preview", caller_id_number_id=setup.plain_number_id)
    assert preview["caller_id_number_id"] == setup.plain_number_id
    await create(client, setup, mode="progressive")  # +33 1 62…: ARCEP's range
    # Turning the preview campaign into an automated one is the same refusal.
    changed = await client.patch(
        f"{CAMPAIGNS}/{preview['id']}", headers=headers, json={"mode": "predictive"}
    )
    assert changed.status_code == 422
    assert fields_of(changed) == {"body.caller_id_number_id"}


async def test_settings_outside_the_law_or_the_tenant_are_refused_on_their_field(
    client: httpx.AsyncClient, sessions: Sessions, setup: CampaignSetup
) -> None:
    other = await campaign_setup(client, sessions, await make_world(client, sessions), 1)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"retries": {"ringing": {"delay_seconds": 600, "max": 1}}}, "body.retries.ringing"),
        ({"retries": {"busy": {"delay_seconds": 30, "max": 1}}}, "body.retries.busy.delay_seconds"),
        ({"retries": {"busy": {"delay_seconds": 600, "max": 11}}}, "body.retries.busy.max"),
        ({"ring_seconds": 14}, "body.ring_seconds"),
        ({"abandon_target": "0.031"}, "body.abandon_target"),
        ({"machine_action": "message"}, "body.machine_prompt_id"),
        (
            {"calling_hours": [{"weekday": 5, "start": "10:00", "end": "12:00"}]},
            "body.calling_hours.0",
        ),
        (
            {"calling_hours": [{"weekday": 0, "start": "13:00", "end": "14:00"}]},
            "body.calling_hours.0",
        ),
        (
            {"calling_hours": [{"weekday": 0, "start": "12:00", "end": "11:00"}]},
            "body.calling_hours.0.end",
        ),
        ({"queue_id": other.queue_id}, "body.queue_id"),
        ({"list_id": other.list_id}, "body.list_id"),
        ({"abandon_prompt_id": other.prompt_id}, "body.abandon_prompt_id"),
        ({"caller_id_number_id": other.automated_number_id}, "body.caller_id_number_id"),
        ({"script": "Hello {{ name "}, "body.script"),
    ]
    for overrides, field in cases:
        response = await client.post(
            CAMPAIGNS, headers=setup.world.admin.headers, json=body(setup, **overrides)
        )
        assert response.status_code == 422, (overrides, response.text)
        assert fields_of(response) == {field}, (overrides, response.text)
    listed = await client.get(CAMPAIGNS, headers=setup.world.admin.headers)
    assert listed.json()["items"] == []


async def test_calling_hours_are_clipped_to_the_laws(
    client: httpx.AsyncClient, setup: CampaignSetup
) -> None:
    made = await create(
        client,
        setup,
        calling_hours=[
            {"weekday": 0, "start": "08:00", "end": "21:00"},
            {"weekday": 2, "start": "11:00", "end": "12:30"},
        ],
    )
    assert made["calling_hours"] == [
        {"weekday": 0, "start": "10:00", "end": "13:00"},
        {"weekday": 0, "start": "14:00", "end": "20:00"},
        {"weekday": 2, "start": "11:00", "end": "12:30"},
    ]


# ---- lifecycle ------------------------------------------------------------------------------


async def test_the_lifecycle_fills_contacts_and_refuses_other_transitions(
    client: httpx.AsyncClient, sessions: Sessions, setup: CampaignSetup
) -> None:
    world = setup.world
    campaign = await create(client, setup)
    url = f"{CAMPAIGNS}/{campaign['id']}"
    assert (await client.post(f"{url}/start", headers=world.agent.headers)).status_code == 403
    started = await client.post(f"{url}/start", headers=world.supervisor.headers)
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "running"
    assert started.json()["started_at"] is not None
    progress = (await client.get(f"{url}/progress", headers=world.supervisor.headers)).json()
    assert progress["contacts"] == 3
    assert progress["remaining"] == 3
    assert progress["by_state"]["pending"] == 3
    again = await client.post(f"{url}/start", headers=world.admin.headers)
    assert again.status_code == 409
    assert again.json()["error_id"] == "campaign-status"
    assert again.json()["details"]["status"] == "running"
    running_patch = await client.patch(url, headers=world.admin.headers, json={"max_channels": 5})
    assert running_patch.status_code == 409
    assert (await client.post(f"{url}/resume", headers=world.admin.headers)).status_code == 409
    paused = await client.post(f"{url}/pause", headers=world.supervisor.headers)
    assert paused.json()["status"] == "paused"
    patched = await client.patch(url, headers=world.admin.headers, json={"max_channels": 5})
    assert patched.status_code == 200
    assert patched.json()["max_channels"] == 5
    new_list = await client.patch(url, headers=world.admin.headers, json={"list_id": setup.list_id})
    assert new_list.status_code == 409  # the list of a started campaign stays
    await add_contacts(sessions, world.tenant_id, setup.list_id, 2)
    resumed = await client.post(f"{url}/resume", headers=world.supervisor.headers)
    assert resumed.json()["status"] == "running"
    progress = (await client.get(f"{url}/progress", headers=world.supervisor.headers)).json()
    assert progress["contacts"] == 5
    stopped = await client.post(f"{url}/stop", headers=world.supervisor.headers)
    assert stopped.json()["status"] == "stopped"
    assert stopped.json()["ended_at"] is not None
    for verb in ("start", "pause", "resume", "stop"):
        refused = await client.post(f"{url}/{verb}", headers=world.admin.headers)
        assert refused.status_code == 409, verb
        assert refused.json()["details"]["status"] == "stopped"
    assert (await client.delete(url, headers=world.admin.headers)).status_code == 409
    async with sessions() as session:
        actions = (
            await session.scalars(
                select(AuditEntry.action)
                .where(
                    AuditEntry.object_type == "campaign",
                    AuditEntry.object_id == str(campaign["id"]),
                )
                .order_by(AuditEntry.id)
            )
        ).all()
    assert actions == ["create", "start", "pause", "update", "resume", "stop"]


async def test_start_is_refused_for_what_the_law_or_the_contract_requires(
    client: httpx.AsyncClient, sessions: Sessions, setup: CampaignSetup
) -> None:
    world = setup.world
    headers = world.admin.headers
    without_message = await create(client, setup, abandon_prompt_id=None)
    refused = await client.post(f"{CAMPAIGNS}/{without_message['id']}/start", headers=headers)
    assert refused.status_code == 409
    assert "abandon_prompt_id" in refused.json()["message"]
    empty = await create(client, setup, list_id=await contact_list(sessions, world.tenant_id, 0))
    refused = await client.post(f"{CAMPAIGNS}/{empty['id']}/start", headers=headers)
    assert refused.status_code == 409
    assert "empty" in refused.json()["message"]
    ready = await create(client, setup)
    async with sessions() as session, session.begin():
        await session.execute(
            update(Tenant).where(Tenant.id == world.tenant_id).values(status="suspended")
        )
    try:
        refused = await client.post(f"{CAMPAIGNS}/{ready['id']}/start", headers=headers)
        assert refused.status_code == 409
        assert refused.json()["details"]["tenant_status"] == "suspended"
    finally:
        async with sessions() as session, session.begin():
            await session.execute(
                update(Tenant).where(Tenant.id == world.tenant_id).values(status="active")
            )
    # Nothing was half-done: the refused campaigns are drafts with no contact.
    for campaign in (without_message, empty, ready):
        read = await client.get(f"{CAMPAIGNS}/{campaign['id']}", headers=headers)
        assert read.json()["status"] == "draft"
        progress = await client.get(f"{CAMPAIGNS}/{campaign['id']}/progress", headers=headers)
        assert progress.json()["contacts"] == 0
    # A preview campaign needs no abandon message: an agent is on every call it places.
    preview = await create(client, setup, mode="preview", abandon_prompt_id=None)
    started = await client.post(f"{CAMPAIGNS}/{preview['id']}/start", headers=headers)
    assert started.status_code == 200, started.text


async def test_a_draft_is_deleted(client: httpx.AsyncClient, setup: CampaignSetup) -> None:
    campaign = await create(client, setup)
    url = f"{CAMPAIGNS}/{campaign['id']}"
    assert (await client.delete(url, headers=setup.world.supervisor.headers)).status_code == 403
    assert (await client.delete(url, headers=setup.world.admin.headers)).status_code == 204
    assert (await client.get(url, headers=setup.world.admin.headers)).status_code == 404


# ---- dispositions ---------------------------------------------------------------------------


async def test_the_catalogue_starts_with_the_defaults_and_refused_stays(
    client: httpx.AsyncClient, setup: CampaignSetup
) -> None:
    headers = setup.world.admin.headers
    codes = await dispositions(client, setup)
    assert set(codes) == {
        "interested",
        "callback",
        "not-interested",
        "refused",
        "wrong-number",
        "answering-machine",
    }
    assert await dispositions(client, setup) == codes  # made once
    made = await client.post(
        "/api/v1/dispositions",
        headers=headers,
        json={"code": "sale", "label": "Sale", "success": True},
    )
    assert made.status_code == 201, made.text
    taken = await client.post(
        "/api/v1/dispositions", headers=headers, json={"code": "sale", "label": "Again"}
    )
    assert taken.status_code == 409
    bad = await client.post(
        "/api/v1/dispositions", headers=headers, json={"code": "Sale!", "label": "x"}
    )
    assert fields_of(bad) == {"body.code"}
    refused = f"/api/v1/dispositions/{codes['refused']}"
    kept = await client.patch(refused, headers=headers, json={"refusal": False})
    assert kept.status_code == 409
    relabelled = await client.patch(refused, headers=headers, json={"label": "Do not call"})
    assert relabelled.json()["label"] == "Do not call"
    assert relabelled.json()["refusal"] is True
    assert (await client.delete(refused, headers=headers)).status_code == 409
    sale = f"/api/v1/dispositions/{made.json()['id']}"
    agent = setup.world.agent.headers
    assert (await client.delete(sale, headers=agent)).status_code == 403
    assert (await client.delete(sale, headers=headers)).status_code == 204


# ---- the agent's call screen ----------------------------------------------------------------


async def running_campaign(
    client: httpx.AsyncClient, setup: CampaignSetup, **overrides: Any
) -> dict[str, Any]:
    campaign = await create(client, setup, **overrides)
    started = await client.post(
        f"{CAMPAIGNS}/{campaign['id']}/start", headers=setup.world.admin.headers
    )
    assert started.status_code == 200, started.text
    return campaign


async def contact_ids(sessions: Sessions, campaign_id: int) -> list[int]:
    async with sessions() as session:
        rows = await session.scalars(
            select(CampaignContact.contact_id)
            .where(CampaignContact.campaign_id == campaign_id)
            .order_by(CampaignContact.contact_id)
        )
        return list(rows.all())


async def contact_row(sessions: Sessions, campaign_id: int, contact_id: int) -> CampaignContact:
    async with sessions() as session:
        row = await session.get(CampaignContact, (campaign_id, contact_id))
        assert row is not None
        return row


async def test_the_call_screen_shows_the_contact_and_the_script_escaped(
    client: httpx.AsyncClient, sessions: Sessions, setup: CampaignSetup
) -> None:
    world = setup.world
    (contact_id,) = await add_contacts(
        sessions,
        world.tenant_id,
        await contact_list(sessions, world.tenant_id, 0),
        1,
        fields={"product": "<b>fibre</b>"},
        name="Ana",
    )
    async with sessions() as session:
        list_id = (await session.get_one(Contact, contact_id)).list_id
    campaign = await running_campaign(
        client,
        setup,
        list_id=list_id,
        script="Hello {{ name }}: {{ fields.product }}{{ fields.unknown }}{{ fields.a.b }}.",
    )
    none = await client.get("/api/v1/campaign-calls/current", headers=world.agent.headers)
    assert none.status_code == 404
    attempt_id = await add_attempt(
        sessions,
        world.tenant_id,
        campaign["id"],
        contact_id,
        outcome=None,
        ended=False,
        agent_user_id=world.agent.user_id,
    )
    current = await client.get("/api/v1/campaign-calls/current", headers=world.agent.headers)
    assert current.status_code == 200, current.text
    screen = current.json()
    assert screen["attempt_id"] == attempt_id
    assert screen["state"] == "in_progress"
    assert screen["contact"]["name"] == "Ana"
    assert screen["contact"]["fields"] == {"product": "<b>fibre</b>"}
    assert screen["script"] == "Hello Ana: &lt;b&gt;fibre&lt;/b&gt;."
    assert "refused" in {d["code"] for d in screen["dispositions"]}
    # Another agent has no call; a call in progress takes no disposition yet.
    other = await client.get("/api/v1/campaign-calls/current", headers=world.supervisor.headers)
    assert other.status_code == 404
    codes = await dispositions(client, setup)
    early = await client.post(
        f"/api/v1/campaign-calls/{attempt_id}/disposition",
        headers=world.agent.headers,
        json={"disposition_id": codes["interested"]},
    )
    assert early.status_code == 409
    assert early.json()["error_id"] == "call-not-answered"


async def test_sandboxed_scripts_reach_no_python_internals(
    client: httpx.AsyncClient, setup: CampaignSetup
) -> None:
    contact = Contact(number="+33612345678", region="FR", name=None, fields={"x": 1})
    shown = render_script("{{ fields.__class__.__mro__ }}{{ ''.__class__ }}!", contact)
    assert shown == "!"


async def second_agent(client: httpx.AsyncClient, setup: CampaignSetup) -> Actor:
    world = setup.world
    email = f"{unique('agent')}@{world.slug}.example"
    made = await client.post(
        "/api/v1/users",
        headers=world.operator_headers,
        json={"email": email, "display_name": "Bea", "role": "agent", "password": PASSWORD},
    )
    assert made.status_code == 201, made.text
    return Actor(made.json()["id"], email, "agent", await login(client, email, world.slug))


async def test_dispositions_decide_what_becomes_of_the_contact(
    client: httpx.AsyncClient, sessions: Sessions, setup: CampaignSetup
) -> None:
    world = setup.world
    setup.list_id = await contact_list(sessions, world.tenant_id, 5)
    campaign = await running_campaign(
        client, setup, retries={"no_answer": {"delay_seconds": 600, "max": 1}}
    )
    refused_c, machine_c, callback_c, plain_c, unanswered_c = await contact_ids(
        sessions, campaign["id"]
    )
    codes = await dispositions(client, setup)
    agent = world.agent

    async def answered(contact_id: int) -> int:
        return await add_attempt(
            sessions,
            world.tenant_id,
            campaign["id"],
            contact_id,
            outcome="answered",
            agent_user_id=agent.user_id,
            talk_seconds=60,
        )

    async def dispose(attempt_id: int, code: str, actor: Actor = agent) -> httpx.Response:
        return await client.post(
            f"/api/v1/campaign-calls/{attempt_id}/disposition",
            headers=actor.headers,
            json={"disposition_id": codes[code]},
        )

    attempt = await answered(refused_c)
    awaiting = await client.get("/api/v1/campaign-calls/current", headers=agent.headers)
    assert awaiting.json()["state"] == "awaiting_disposition"
    other = await second_agent(client, setup)
    assert (await dispose(attempt, "refused", other)).status_code == 403
    done = await dispose(attempt, "refused")
    assert done.status_code == 200, done.text
    assert done.json()["contact_state"] == "done"
    assert (await dispose(attempt, "interested")).status_code == 409  # set once
    row = await contact_row(sessions, campaign["id"], refused_c)
    assert (row.state, row.last_rule, row.disposition_id) == (
        "done",
        "refused-recently",
        codes["refused"],
    )
    assert (
        await client.get("/api/v1/campaign-calls/current", headers=agent.headers)
    ).status_code == 404

    machine = await dispose(await answered(machine_c), "answering-machine")
    assert machine.json()["outcome"] == "machine"
    assert machine.json()["contact_state"] == "pending"  # the machine retry (1 by default)
    row = await contact_row(sessions, campaign["id"], machine_c)
    assert row.retries_used == {"machine": 1}
    assert row.next_attempt_at is not None

    callback = await dispose(await answered(callback_c), "callback")
    assert callback.json()["contact_state"] == "pending"
    # The single no-answer retry is used: a second callback ends the contact.
    again = await dispose(await answered(callback_c), "callback")
    assert again.json()["contact_state"] == "done"

    by_supervisor = await dispose(await answered(plain_c), "interested", world.supervisor)
    assert by_supervisor.json()["contact_state"] == "done"

    unanswered = await add_attempt(
        sessions,
        world.tenant_id,
        campaign["id"],
        unanswered_c,
        outcome="no_answer",
        agent_user_id=agent.user_id,  # a preview call the agent placed
    )
    refused = await dispose(unanswered, "interested")
    assert refused.status_code == 409
    wrong = await client.post(
        f"/api/v1/campaign-calls/{attempt}/disposition",
        headers=agent.headers,
        json={"disposition_id": 2**62},
    )
    assert fields_of(wrong) == {"body.disposition_id"}


# ---- preview --------------------------------------------------------------------------------


async def test_preview_reserves_contacts_per_agent(
    client: httpx.AsyncClient,
    sessions: Sessions,
    setup: CampaignSetup,
    running_app: RunningApp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = setup.world
    campaign = await running_campaign(
        client,
        setup,
        mode="preview",
        caller_id_number_id=setup.plain_number_id,
        script="Call {{ number }}",
    )
    url = f"{CAMPAIGNS}/{campaign['id']}/preview"
    first = await client.post(f"{url}/next", headers=world.agent.headers)
    assert first.status_code == 200, first.text
    contact = first.json()["contact"]
    assert first.json()["script"] == f"Call {contact['number']}"
    same = await client.post(f"{url}/next", headers=world.agent.headers)
    assert same.json()["contact"]["id"] == contact["id"]
    other = await second_agent(client, setup)
    theirs = await client.post(f"{url}/next", headers=other.headers)
    assert theirs.json()["contact"]["id"] != contact["id"]
    # Only the agent holding a contact dials or skips it.
    stolen = await client.post(f"{url}/{contact['id']}/dial", headers=other.headers)
    assert stolen.status_code == 409
    assert stolen.json()["error_id"] == "contact-not-reserved"
    monkeypatch.setattr(running_app.runtime, "dialer", None, raising=False)
    unavailable = await client.post(f"{url}/{contact['id']}/dial", headers=world.agent.headers)
    assert unavailable.status_code == 503
    assert unavailable.json()["error_id"] == "dialer-unavailable"
    skipped = await client.post(f"{url}/{contact['id']}/skip", headers=world.agent.headers)
    assert skipped.status_code == 204
    following = await client.post(f"{url}/next", headers=world.agent.headers)
    assert following.json()["contact"]["id"] not in (contact["id"], theirs.json()["contact"]["id"])
    assert (await client.post(f"{url}/next", headers=world.supervisor.headers)).status_code == 404
    # Pausing gives every reservation back; a paused or automated campaign reserves nothing.
    await client.post(f"{CAMPAIGNS}/{campaign['id']}/pause", headers=world.admin.headers)
    assert (await client.post(f"{url}/next", headers=world.agent.headers)).status_code == 409
    row = await contact_row(sessions, campaign["id"], following.json()["contact"]["id"])
    assert row.reserved_by is None
    progressive = await running_campaign(client, setup)
    automated = await client.post(
        f"{CAMPAIGNS}/{progressive['id']}/preview/next", headers=world.agent.headers
    )
    assert automated.status_code == 409


async def test_a_consumer_campaign_starts_only_with_an_opposition_list_checked_within_30_days(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    setup = await campaign_setup(
        client, sessions, await make_world(client, sessions), opposition_list=False
    )
    headers = setup.world.admin.headers
    consumers = await create(client, setup, name=unique("consumers"))
    refused = await client.post(f"{CAMPAIGNS}/{consumers['id']}/start", headers=headers)
    assert refused.status_code == 409, refused.text
    assert refused.json()["details"]["field"] == "audience"
    assert "opposition list" in refused.json()["message"]
    # Calls to businesses are outside the opposition list's scope.
    businesses = await create(client, setup, name=unique("businesses"), audience="businesses")
    started = await client.post(f"{CAMPAIGNS}/{businesses['id']}/start", headers=headers)
    assert started.status_code == 200, started.text
    # A list checked more than 30 days ago does not count; today's does.
    old = await client.post(
        "/api/v1/opposition-lists",
        headers=headers,
        data={"list_date": (datetime.now(UTC).date() - timedelta(days=31)).isoformat()},
        files={"file": ("bloctel.csv", b"0100000000\n", "text/csv")},
    )
    assert old.status_code == 201, old.text
    still = await client.post(f"{CAMPAIGNS}/{consumers['id']}/start", headers=headers)
    assert still.status_code == 409, still.text
    await checked_opposition_list(client, setup.world)
    now_started = await client.post(f"{CAMPAIGNS}/{consumers['id']}/start", headers=headers)
    assert now_started.status_code == 200, now_started.text
