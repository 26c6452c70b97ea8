"""The campaign pages in the browser: an admin builds a contact list (CSV import and its
report, a do-not-call number, Bloctel's answer) and a campaign (a refusal beside the field
first), a supervisor starts it and follows it (its page, the wallboard's campaigns), an agent
takes a call on the call screen (updated by its script when the call ends), sets its result,
and works a preview campaign; the pages in French; axe and a screenshot on each."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.campaigns.models import CampaignAttempt
from graam_pbx.live.wallboards import CAMPAIGNS_INTERVAL
from tests.campaign_rows import CampaignSetup, add_attempt, add_contacts, campaign_setup
from tests.e2e.web.browser import SEEN_WITHIN_MS, assert_accessible, log_in, save_screenshot
from tests.factories import PASSWORD, make_world, unique

Sessions = async_sessionmaker[AsyncSession]


async def _running(
    client: httpx.AsyncClient, setup: CampaignSetup, **overrides: object
) -> dict[str, object]:
    made = await client.post(
        "/api/v1/campaigns",
        headers=setup.world.admin.headers,
        json={
            "name": unique("c"),
            "list_id": setup.list_id,
            "queue_id": setup.queue_id,
            "caller_id_number_id": setup.plain_number_id,
            "mode": "preview",
            **overrides,
        },
    )
    assert made.status_code == 201, made.text
    started = await client.post(
        f"/api/v1/campaigns/{made.json()['id']}/start", headers=setup.world.admin.headers
    )
    assert started.status_code == 200, started.text
    campaign: dict[str, object] = made.json()
    return campaign


async def test_an_admin_builds_a_list_and_a_campaign_a_supervisor_starts_it(
    page: Page,
    browser: Browser,
    console: str,
    client: httpx.AsyncClient,
    sessions: Sessions,
    tmp_path: Path,
) -> None:
    world = await make_world(client, sessions)
    setup = await campaign_setup(client, sessions, world)
    await log_in(page, console, world.slug, world.admin.email, PASSWORD)

    # A list, its import and the report of what was refused.
    await page.get_by_role("link", name="Contact lists", exact=True).click()
    await expect(page.get_by_role("heading", name="Your contact lists")).to_be_visible()
    list_name = unique("Spring clients ")
    await page.locator("#name").fill(list_name)
    await page.get_by_role("button", name="Create the list").click()
    await expect(page.get_by_role("status")).to_contain_text("The list was created.")
    csv = tmp_path / "clients.csv"
    csv.write_text(
        "number;name;product\n0612345678;Ana;fibre\n12;Bob;box\n0756123456;Chloé;tv\n",
        encoding="utf-8",
    )
    await page.get_by_label("Into the list").select_option(label=list_name)
    await page.get_by_label("CSV file").set_input_files(str(csv))
    await page.get_by_role("button", name="Import", exact=True).click()
    report = page.locator("#import-report")
    await expect(report).to_contain_text("clients.csv")
    await expect(report.locator('[data-field="added"]')).to_have_text("2")
    await expect(report.locator('[data-field="refused"]')).to_have_text("1")
    await expect(page.locator("#import-refusals tbody tr")).to_contain_text("3")
    await expect(page.locator("#import-refusals tbody tr")).to_contain_text("number")

    await page.locator("#dnc-number").fill("0698765432")
    await page.locator("#dnc-reason").fill("asked by phone")
    await page.get_by_role("button", name="Add to the list").click()
    await expect(page.locator("#do-not-call")).to_contain_text("+33698765432")
    bloctel = tmp_path / "bloctel.csv"
    bloctel.write_text("0611111111\n+33622222222\n", encoding="utf-8")
    await page.locator("#list_date").fill("2026-11-30")
    await page.locator("#opposition-file").set_input_files(str(bloctel))
    await page.get_by_role("button", name="Import the opposition list").click()
    await expect(page.locator("#opposition-lists")).to_contain_text("bloctel.csv")
    await assert_accessible(page)
    await save_screenshot(page, "campaigns_contact_lists")

    # A campaign: first refused (a progressive campaign's caller ID outside ARCEP's ranges).
    await page.get_by_role("link", name="Campaigns", exact=True).click()
    await expect(page.get_by_role("heading", name="Create a campaign")).to_be_visible()
    name = unique("spring")
    await page.get_by_label("Name", exact=True).fill(name)
    await page.get_by_label("Contact list").select_option(label=list_name)
    await page.get_by_label("Queue", exact=True).select_option(value=str(setup.queue_id))
    await page.get_by_label("Caller ID").select_option(value=str(setup.plain_number_id))
    await page.get_by_label("Progressive").check()
    await page.get_by_label("Script").fill("Hello {{ name }}, about {{ fields.product }}.")
    await page.get_by_role("button", name="Create the campaign").click()
    await expect(page.locator("#caller_id_number_id-error")).to_contain_text("ARCEP")
    await expect(page.get_by_label("Caller ID")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("Name", exact=True)).to_have_value(name)
    await assert_accessible(page)
    await save_screenshot(page, "campaigns_form_refused")
    await page.get_by_label("Preview").check()
    await page.get_by_role("button", name="Create the campaign").click()
    await expect(page.get_by_role("status")).to_contain_text("The campaign was created.")
    await expect(page.locator("#campaign-status")).to_have_text("Draft")
    campaign_url = page.url

    supervisor_context = await browser.new_context(locale="en-GB")
    supervisor = await supervisor_context.new_page()
    try:
        await log_in(supervisor, console, world.slug, world.supervisor.email, PASSWORD)
        await supervisor.goto(f"{console}/campaigns")
        row = supervisor.locator("#campaigns tr", has_text=name)
        await expect(row).to_contain_text("Draft")
        await expect(supervisor.get_by_role("heading", name="Create a campaign")).to_have_count(0)
        await row.get_by_role("button", name=f"Start {name}").click()
        await expect(supervisor.get_by_role("status")).to_contain_text("started")
        await expect(supervisor.locator("#campaigns tr", has_text=name)).to_contain_text("Running")
        await assert_accessible(supervisor)
        await save_screenshot(supervisor, "campaigns_list")
        await supervisor.goto(campaign_url)
        await expect(supervisor.locator("#campaign-progress [data-field='contacts']")).to_have_text(
            "2"
        )
        await supervisor.get_by_role("button", name=f"Pause {name}").click()
        await expect(supervisor.locator("#campaign-status")).to_have_text("Paused")
        await assert_accessible(supervisor)
        await save_screenshot(supervisor, "campaign_detail")
    finally:
        await supervisor_context.close()


async def test_the_campaign_page_and_the_wallboard_show_its_figures(
    page: Page, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    setup = await campaign_setup(client, sessions, world, contacts=0)
    contacts = await add_contacts(sessions, world.tenant_id, setup.list_id, 4, name="Ana")
    campaign = await _running(client, setup)
    campaign_id = int(str(campaign["id"]))
    listed = await client.get("/api/v1/dispositions", headers=world.admin.headers)
    codes = {d["code"]: d["id"] for d in listed.json()["items"]}
    for contact_id, outcome in zip(contacts, ("answered", "answered", "no_answer"), strict=False):
        await add_attempt(
            sessions,
            world.tenant_id,
            campaign_id,
            contact_id,
            outcome=outcome,
            agent_user_id=world.agent.user_id if outcome == "answered" else None,
            talk_seconds=95 if outcome == "answered" else None,
            disposition_id=codes["interested"] if outcome == "answered" else None,
        )
    await add_attempt(sessions, world.tenant_id, campaign_id, contacts[3], outcome="abandoned")
    open_attempt = await add_attempt(
        sessions, world.tenant_id, campaign_id, contacts[3], outcome=None, ended=False
    )
    await log_in(page, console, world.slug, world.supervisor.email, PASSWORD)
    await page.goto(f"{console}/campaigns/{campaign_id}")
    stats = page.locator("#campaign-stats")
    await expect(stats.locator("[data-field='attempts']")).to_have_text("5")
    await expect(stats.locator("[data-field='answered']")).to_have_text("2")
    await expect(stats.locator("[data-field='abandoned']")).to_have_text("1")
    # 1 abandoned among 3 answered by a person.
    await expect(stats.locator("[data-field='abandon-24h']")).to_have_text("33.34%")
    await expect(page.locator("#campaign-dispositions")).to_contain_text("Interested")
    await expect(page.locator("#campaign-agents")).to_contain_text("3:10")
    await assert_accessible(page)
    await save_screenshot(page, "campaign_statistics")

    await page.get_by_role("link", name="Wallboard", exact=True).click()
    row = page.locator(f'#wallboard-campaigns tr[data-campaign="{campaign_id}"]')
    await expect(row.locator("[data-field='in-progress']")).to_have_text(
        "1", timeout=SEEN_WITHIN_MS
    )
    await expect(row.locator("[data-field='attempts']")).to_have_text("5")
    await expect(row.locator("[data-field='abandon-rate-24h']")).to_have_text("33.3%")
    await expect(page.locator("#wallboard-status")).to_have_text("Live", timeout=SEEN_WITHIN_MS)
    # The call in progress ends: the board's next read of the campaigns says so, live.
    async with sessions() as session, session.begin():
        found = await session.get_one(CampaignAttempt, open_attempt)
        found.ended_at = found.placed_at
        found.outcome = "no_answer"
    await expect(row.locator("[data-field='in-progress']")).to_have_text(
        "0", timeout=SEEN_WITHIN_MS + int(CAMPAIGNS_INTERVAL * 1000)
    )
    await expect(row.locator("[data-field='attempts']")).to_have_text("5")
    await assert_accessible(page)
    await save_screenshot(page, "wallboard_campaigns")


async def test_an_agent_takes_a_call_sets_its_result_and_works_a_preview(
    page: Page, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    setup = await campaign_setup(client, sessions, world, contacts=0)
    (contact_id,) = await add_contacts(
        sessions, world.tenant_id, setup.list_id, 1, fields={"product": "fibre"}, name="Ana"
    )
    # A second contact: the campaign keeps one to call once Ana's call has its result.
    await add_contacts(sessions, world.tenant_id, setup.list_id, 1, name="Bruno")
    campaign = await _running(
        client, setup, mode="preview", script="Hello {{ name }}, about {{ fields.product }}."
    )
    attempt_id = await add_attempt(
        sessions,
        world.tenant_id,
        int(str(campaign["id"])),
        contact_id,
        outcome=None,
        ended=False,
        agent_user_id=world.agent.user_id,
    )
    await log_in(page, console, world.slug, world.agent.email, PASSWORD)
    await page.get_by_role("link", name="Campaign call", exact=True).click()
    await expect(page.locator("#call-script")).to_contain_text("Hello Ana, about fibre.")
    await expect(page.locator("#contact-card")).to_contain_text("fibre")
    await expect(page.locator("#disposition-later")).to_be_visible()
    await assert_accessible(page)
    await save_screenshot(page, "campaign_call_in_progress")

    # The call ends: the page's script sees it and shows the results to choose from.
    async with sessions() as session, session.begin():
        attempt = await session.get_one(CampaignAttempt, attempt_id)
        attempt.answered_at = attempt.connected_at = attempt.ended_at = attempt.placed_at
        attempt.outcome = "answered"
        attempt.talk_seconds = 60
    await expect(page.locator("#dispositions")).to_be_visible(timeout=SEEN_WITHIN_MS)
    await assert_accessible(page)
    await save_screenshot(page, "campaign_call_ended")
    await page.get_by_role("button", name="Interested", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("The call's result was saved.")

    # Preview: the next contact (Ana's is done), then skip it.
    await page.reload()
    await page.get_by_role("button", name=f"Next contact of {campaign['name']}").click()
    await expect(page.locator("#contact-card")).to_contain_text("Bruno")
    await expect(page.get_by_role("button", name="Dial")).to_be_visible()
    await assert_accessible(page)
    await save_screenshot(page, "campaign_call_preview")
    await page.get_by_role("button", name="Skip").click()
    await expect(page.get_by_role("status")).to_contain_text("The contact was skipped.")


async def test_the_campaign_pages_in_french(
    browser: Browser, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    context = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        await log_in(page, console, world.slug, world.admin.email, PASSWORD, language="fr")
        await page.goto(f"{console}/campaigns")
        await expect(page.get_by_role("heading", name="Créer une campagne")).to_be_visible()
        await expect(page.get_by_label("Numéro présenté")).to_be_visible()
        await assert_accessible(page)
        await save_screenshot(page, "campaigns_french")
        await page.goto(f"{console}/contact-lists")
        await expect(
            page.get_by_role("heading", name="Liste d'opposition (Bloctel)")
        ).to_be_visible()
        await save_screenshot(page, "contact_lists_french")
    finally:
        await context.close()
