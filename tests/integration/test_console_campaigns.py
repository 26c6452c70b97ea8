"""The campaign pages over HTTP: who sees which page, the forms (refused input shown again,
nothing written), start and pause, imports and their report, the agent's call screen and
preview, and another tenant's objects never reached (404)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.campaigns.models import Campaign, CampaignAttempt, Contact, DoNotCall
from tests.campaign_rows import CampaignSetup, add_attempt, add_contacts, campaign_setup
from tests.conftest import RunningApp
from tests.factories import make_world, unique
from tests.integration.test_console_auth import console_client, log_in, page_csrf

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def setup(client: httpx.AsyncClient, sessions: Sessions) -> CampaignSetup:
    return await campaign_setup(client, sessions, await make_world(client, sessions))


def form(setup: CampaignSetup, **overrides: str) -> dict[str, str]:
    return {
        "name": unique("c"),
        "list_id": str(setup.list_id),
        "queue_id": str(setup.queue_id),
        "caller_id_number_id": str(setup.automated_number_id),
        "mode": "progressive",
        "audience": "consumers",
        "ring_seconds": "25",
        "max_channels": "5",
        "machine_action": "hangup",
        "abandon_prompt_id": str(setup.prompt_id),
        "abandon_target": "0.025",
        "script": "Hello {{ name }}, about {{ fields.product }}.",
        **overrides,
    }


async def api_campaign(
    client: httpx.AsyncClient, setup: CampaignSetup, **overrides: Any
) -> dict[str, Any]:
    made = await client.post(
        "/api/v1/campaigns",
        headers=setup.world.admin.headers,
        json={
            "name": unique("c"),
            "list_id": setup.list_id,
            "queue_id": setup.queue_id,
            "caller_id_number_id": setup.automated_number_id,
            "mode": "progressive",
            "abandon_prompt_id": setup.prompt_id,
            **overrides,
        },
    )
    assert made.status_code == 201, made.text
    campaign: dict[str, Any] = made.json()
    return campaign


async def campaign_names(sessions: Sessions, tenant_id: int) -> set[str]:
    async with sessions() as session:
        rows = await session.scalars(select(Campaign.name).where(Campaign.tenant_id == tenant_id))
        return set(rows.all())


async def test_each_role_sees_its_pages(
    client: httpx.AsyncClient, sessions: Sessions, setup: CampaignSetup
) -> None:
    world = setup.world
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "admin")).status_code == 303
        listed = await browser.get("/campaigns")
        assert listed.status_code == 200
        assert 'action="/campaigns"' in listed.text  # the create form
        assert 'href="/contact-lists"' in listed.text
        assert (await browser.get("/contact-lists")).status_code == 200
        assert (await browser.get("/campaign-call")).status_code == 403
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "supervisor")).status_code == 303
        listed = await browser.get("/campaigns")
        assert listed.status_code == 200
        assert 'action="/campaigns"' not in listed.text
        assert (await browser.get("/contact-lists")).status_code == 403
        csrf = await page_csrf(browser, "/campaigns")
        refused = await browser.post("/campaigns", data={"csrf_token": csrf, **form(setup)})
        assert refused.status_code == 403
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "agent")).status_code == 303
        assert (await browser.get("/campaigns")).status_code == 403
        assert (await browser.get("/contact-lists")).status_code == 403
        screen = await browser.get("/campaign-call")
        assert screen.status_code == 200
        assert 'id="no-call"' in screen.text
        assert 'href="/campaign-call"' in screen.text  # in the agent's navigation
    assert await campaign_names(sessions, world.tenant_id) == set()


async def test_a_refused_campaign_form_is_shown_again_and_creates_nothing(
    client: httpx.AsyncClient, sessions: Sessions, setup: CampaignSetup
) -> None:
    world = setup.world
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "admin")).status_code == 303
        csrf = await page_csrf(browser, "/campaigns")
        bad = await browser.post(
            "/campaigns",
            data={"csrf_token": csrf, **form(setup, name="Not Valid!", ring_seconds="abc")},
        )
        assert bad.status_code == 422
        assert 'id="name-error"' in bad.text and 'id="ring_seconds-error"' in bad.text
        assert 'value="Not Valid!"' in bad.text
        # A progressive campaign's caller ID outside ARCEP's ranges: the law's reason.
        plain = await browser.post(
            "/campaigns",
            data={
                "csrf_token": csrf,
                **form(setup, caller_id_number_id=str(setup.plain_number_id)),
            },
        )
        assert plain.status_code == 422
        error = re.search(r'id="caller_id_number_id-error">([^<]+)<', plain.text)
        assert error is not None and "ARCEP" in error.group(1), plain.text[-3000:]
        without_token = await browser.post("/campaigns", data=form(setup))
        assert without_token.status_code == 403
        assert await campaign_names(sessions, world.tenant_id) == set()

        name = unique("c")
        made = await browser.post("/campaigns", data={"csrf_token": csrf, **form(setup, name=name)})
        assert made.status_code == 303
        detail = await browser.get(made.headers["location"])
        assert detail.status_code == 200
        assert "The campaign was created." in detail.text
        assert await campaign_names(sessions, world.tenant_id) == {name}


async def test_start_pause_resume_and_stop_from_the_pages(
    client: httpx.AsyncClient, sessions: Sessions, setup: CampaignSetup
) -> None:
    world = setup.world
    campaign = await api_campaign(client, setup)
    page_path = f"/campaigns/{campaign['id']}"
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "supervisor")).status_code == 303
        detail = await browser.get(page_path)
        assert detail.status_code == 200
        assert 'id="campaign-progress"' in detail.text and 'id="campaign-stats"' in detail.text
        csrf = await page_csrf(browser, page_path)
        for action, status in (
            ("start", "running"),
            ("pause", "paused"),
            ("resume", "running"),
            ("stop", "stopped"),
        ):
            done = await browser.post(f"{page_path}/{action}", data={"csrf_token": csrf})
            assert done.status_code == 303, (action, done.text[-2000:])
            read = await client.get(f"/api/v1{page_path}", headers=world.admin.headers)
            assert read.json()["status"] == status
        # A stopped campaign starts no more: said on the page, 409.
        again = await browser.post(f"{page_path}/start", data={"csrf_token": csrf})
        assert again.status_code == 409
        assert 'id="campaign-problem"' in again.text
        listed = await browser.get("/campaigns")
        assert campaign["name"] in listed.text


async def test_a_contact_import_shows_its_report(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "admin")).status_code == 303
        csrf = await page_csrf(browser, "/contact-lists")
        name = unique("Clients ")
        made = await browser.post(
            "/contact-lists", data={"csrf_token": csrf, "name": name, "default_region": "FR"}
        )
        assert made.status_code == 303
        listed = await client.get("/api/v1/contact-lists", headers=world.admin.headers)
        list_id = next(i["id"] for i in listed.json()["items"] if i["name"] == name)
        taken = await browser.post(
            "/contact-lists", data={"csrf_token": csrf, "name": name, "default_region": "FR"}
        )
        assert taken.status_code == 409 and 'id="name-error"' in taken.text

        csv = (
            "number;name;product\n0612345678;Ana;fibre\nnot a number;Bob;box\n"
            "06 12 34 56 78;Ana;tv\n"
        )
        imported = await browser.post(
            "/contact-lists/imports",
            data={"csrf_token": csrf, "list_id": str(list_id)},
            files={"file": ("clients.csv", csv.encode(), "text/csv")},
        )
        assert imported.status_code == 303, imported.text[-2000:]
        report = await browser.get(imported.headers["location"])
        assert report.status_code == 200
        assert 'id="import-report"' in report.text
        assert "clients.csv" in report.text
        refusals = report.text[report.text.index('id="import-refusals"') :]
        assert '<td class="num">3</td><td>number</td>' in refusals
        assert re.search(r'data-field="added">1<', report.text)
        assert re.search(r'data-field="merged">1<', report.text)
        assert re.search(r'data-field="refused">1<', report.text)
        no_file = await browser.post(
            "/contact-lists/imports", data={"csrf_token": csrf, "list_id": str(list_id)}
        )
        assert no_file.status_code == 422 and 'id="file-error"' in no_file.text

        added = await browser.post(
            "/do-not-call",
            data={"csrf_token": csrf, "number": "0698765432", "reason": "asked by phone"},
        )
        assert added.status_code == 303
        page = await browser.get("/contact-lists")
        assert "+33698765432" in page.text
        async with sessions() as session:
            entry = await session.scalar(
                select(DoNotCall).where(DoNotCall.tenant_id == world.tenant_id)
            )
        assert entry is not None
        wrong = await browser.post(
            "/do-not-call", data={"csrf_token": csrf, "number": "hello", "reason": ""}
        )
        assert wrong.status_code == 422 and 'id="number-error"' in wrong.text
        removed = await browser.post(f"/do-not-call/{entry.id}/delete", data={"csrf_token": csrf})
        assert removed.status_code == 303
        assert "+33698765432" not in (await browser.get("/contact-lists")).text

        opposition = await browser.post(
            "/opposition-lists",
            data={"csrf_token": csrf, "list_date": "2026-11-30"},
            files={"file": ("bloctel.csv", b"0611111111\n+33622222222\n", "text/csv")},
        )
        assert opposition.status_code == 303, opposition.text[-2000:]
        page = await browser.get("/contact-lists")
        assert "bloctel.csv" in page.text
        undated = await browser.post(
            "/opposition-lists",
            data={"csrf_token": csrf, "list_date": "yesterday"},
            files={"file": ("bloctel.csv", b"0611111111\n", "text/csv")},
        )
        assert undated.status_code == 422 and 'id="list_date-error"' in undated.text


async def test_the_agent_sees_the_call_sets_its_result_and_previews(
    client: httpx.AsyncClient,
    sessions: Sessions,
    setup: CampaignSetup,
    running_app: RunningApp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = setup.world
    (contact_id,) = await add_contacts(
        sessions,
        world.tenant_id,
        setup.list_id,
        1,
        fields={"product": "<b>fibre</b>"},
        name="Ana",
    )
    campaign = await api_campaign(
        client,
        setup,
        mode="preview",
        caller_id_number_id=setup.plain_number_id,
        script="Hello {{ name }}: {{ fields.product }}",
    )
    started = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/start", headers=world.admin.headers
    )
    assert started.status_code == 200, started.text
    attempt_id = await add_attempt(
        sessions,
        world.tenant_id,
        campaign["id"],
        contact_id,
        outcome=None,
        ended=False,
        agent_user_id=world.agent.user_id,
    )
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "agent")).status_code == 303
        screen = await browser.get("/campaign-call")
        assert screen.status_code == 200
        assert "Hello Ana: &lt;b&gt;fibre&lt;/b&gt;" in screen.text  # escaped once, not twice
        assert "<b>fibre</b>" not in screen.text
        assert 'id="disposition-later"' in screen.text
        state = await browser.get("/campaign-call/state")
        assert state.json() == {"key": f"call-{attempt_id}-in_progress"}

        async with sessions() as session, session.begin():
            attempt = await session.get_one(CampaignAttempt, attempt_id)
            attempt.ended_at = attempt.placed_at
            attempt.answered_at = attempt.connected_at = attempt.placed_at
            attempt.outcome = "answered"
        state = await browser.get("/campaign-call/state")
        assert state.json() == {"key": f"call-{attempt_id}-awaiting_disposition"}
        screen = await browser.get("/campaign-call")
        assert 'id="dispositions"' in screen.text
        choice = re.search(r'name="disposition_id" value="(\d+)">Interested<', screen.text)
        assert choice is not None
        csrf = await page_csrf(browser, "/campaign-call")
        unknown = await browser.post(
            f"/campaign-call/{attempt_id}/disposition",
            data={"csrf_token": csrf, "disposition_id": "nonsense"},
        )
        assert unknown.status_code == 422
        saved = await browser.post(
            f"/campaign-call/{attempt_id}/disposition",
            data={"csrf_token": csrf, "disposition_id": choice.group(1)},
        )
        assert saved.status_code == 303
        after = await browser.get(saved.headers["location"])
        assert "The call&#39;s result was saved." in after.text and 'id="no-call"' in after.text

        # Preview: the agent asks for the next contact, then skips it.
        preview = await api_campaign(
            client,
            setup,
            mode="preview",
            caller_id_number_id=setup.plain_number_id,
            script="Call {{ number }}",
        )
        started = await client.post(
            f"/api/v1/campaigns/{preview['id']}/start", headers=world.admin.headers
        )
        assert started.status_code == 200, started.text
        screen = await browser.get("/campaign-call")
        assert f'action="/campaign-call/preview/{preview["id"]}/next"' in screen.text
        reserved = await browser.post(
            f"/campaign-call/preview/{preview['id']}/next", data={"csrf_token": csrf}
        )
        assert reserved.status_code == 303
        shown = await browser.get(reserved.headers["location"])
        match = re.search(rf"/campaign-call/preview/{preview['id']}/(\d+)/dial", shown.text)
        assert match is not None, shown.text[-3000:]
        async with sessions() as session:
            number = (await session.get_one(Contact, int(match.group(1)))).number
        assert f"Call {number}" in shown.text
        monkeypatch.setattr(running_app.runtime, "dialer", None, raising=False)
        no_dialer = await browser.post(
            f"/campaign-call/preview/{preview['id']}/{match.group(1)}/dial",
            data={"csrf_token": csrf},
        )
        assert no_dialer.status_code == 503
        skipped = await browser.post(
            f"/campaign-call/preview/{preview['id']}/{match.group(1)}/skip",
            data={"csrf_token": csrf},
        )
        assert skipped.status_code == 303
        # Skipped: the contact is no longer the agent's to show.
        gone = await browser.get(reserved.headers["location"])
        assert "/dial" not in gone.text
        # Dialling a contact the agent no longer holds is refused before the dialer is asked,
        # as through the API.
        unreserved = await browser.post(
            f"/campaign-call/preview/{preview['id']}/{match.group(1)}/dial",
            data={"csrf_token": csrf},
        )
        assert unreserved.status_code == 409
        assert "not reserved for you" in unreserved.text


async def test_another_tenants_campaigns_lists_and_calls_are_not_found(
    client: httpx.AsyncClient, sessions: Sessions, setup: CampaignSetup
) -> None:
    campaign = await api_campaign(client, setup)
    (contact_id,) = await add_contacts(sessions, setup.world.tenant_id, setup.list_id, 1)
    started = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/start", headers=setup.world.admin.headers
    )
    assert started.status_code == 200
    attempt_id = await add_attempt(
        sessions,
        setup.world.tenant_id,
        campaign["id"],
        contact_id,
        outcome="answered",
        agent_user_id=setup.world.agent.user_id,
    )
    imported = await client.post(
        f"/api/v1/contact-lists/{setup.list_id}/imports",
        headers=setup.world.admin.headers,
        files={"file": ("a.csv", b"number\nnope\n", "text/csv")},
    )
    assert imported.status_code == 201, imported.text
    other = await make_world(client, sessions)
    async with console_client(client) as browser:
        assert (await log_in(browser, other, "admin")).status_code == 303
        assert (await browser.get(f"/campaigns/{campaign['id']}")).status_code == 404
        listed = await browser.get("/campaigns")
        assert campaign["name"] not in listed.text
        csrf = await page_csrf(browser, "/campaigns")
        for action in ("start", "pause", "resume", "stop"):
            refused = await browser.post(
                f"/campaigns/{campaign['id']}/{action}", data={"csrf_token": csrf}
            )
            assert refused.status_code == 404, action
        report = await browser.get(
            f"/contact-lists?list={setup.list_id}&report={imported.json()['id']}"
        )
        assert report.status_code == 404
        into_theirs = await browser.post(
            "/contact-lists/imports",
            data={"csrf_token": csrf, "list_id": str(setup.list_id)},
            files={"file": ("b.csv", b"number\n0612345678\n", "text/csv")},
        )
        assert into_theirs.status_code == 404
    async with console_client(client) as browser:
        assert (await log_in(browser, other, "agent")).status_code == 303
        csrf = await page_csrf(browser, "/campaign-call")
        theirs = await browser.post(
            f"/campaign-call/{attempt_id}/disposition",
            data={"csrf_token": csrf, "disposition_id": "1"},
        )
        assert theirs.status_code == 404
        peek = await browser.post(
            f"/campaign-call/preview/{campaign['id']}/next", data={"csrf_token": csrf}
        )
        assert peek.status_code == 404
