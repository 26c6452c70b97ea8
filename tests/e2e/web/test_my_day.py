"""An agent's My day in the browser: log in, pause with a reason of the catalogue, resume, log
out, its figures; a login refused for licences; who may see the page; French; axe."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents.models import AgentStateEvent
from tests.e2e.web.agent_console import (
    add_pause_reason,
    api_session,
    assert_forbidden,
    give_device,
    log_in_to,
    lunch_world,
)
from tests.e2e.web.browser import (
    SEEN_WITHIN_MS,
    assert_accessible,
    log_in,
    save_screenshot,
)
from tests.factories import PASSWORD, make_world, unique

Sessions = async_sessionmaker[AsyncSession]


async def test_an_agent_logs_in_pauses_with_a_reason_resumes_and_logs_out(
    page: Page, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await lunch_world(client, sessions)
    training = await add_pause_reason(client, world, "3", "Training")

    await log_in(page, console, world.slug, world.agent.email, PASSWORD)
    await expect(page).to_have_url(f"{console}/my-day")
    await expect(page.locator("#my-state")).to_contain_text("You are not logged in")
    await assert_accessible(page)

    await page.get_by_role("button", name="Log in to the queues").click()
    await expect(page.get_by_role("status")).to_contain_text("You are logged in")
    await expect(page.locator("#my-state")).to_have_text("Available")
    live = await api_session(client, world)
    assert live["source"] == "web" and live["paused"] is False

    await page.get_by_label("Pause reason").select_option(label="2 · Lunch")
    await page.get_by_role("button", name="Pause", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("You are paused")
    await expect(page.locator("#my-state")).to_have_text("Paused")
    await expect(page.locator("#my-pause-reason")).to_have_text("2 · Lunch")
    live = await api_session(client, world)
    assert live["paused"] is True and live["pause_reason"] == "2"
    await assert_accessible(page)

    # A reason taken out of the catalogue meanwhile: refused next to its field, nothing changes.
    await page.get_by_label("Change my pause reason").select_option(label="3 · Training")
    deleted = await client.delete(f"/api/v1/pause-reasons/{training}", headers=world.admin.headers)
    assert deleted.status_code == 204, deleted.text
    await page.get_by_role("button", name="Change my pause").click()
    await expect(page.locator("#reason-error")).to_have_text("Choose a reason from the list.")
    await expect(page.locator("#reason")).to_have_attribute("aria-invalid", "true")
    assert (await api_session(client, world))["pause_reason"] == "2"
    await assert_accessible(page)

    await page.goto(f"{console}/my-day")
    await page.get_by_role("button", name="Resume taking calls").click()
    await expect(page.get_by_role("status")).to_contain_text("You are back")
    await expect(page.locator("#my-state")).to_have_text("Available")
    # Today's figures: time available and paused, the pause under its reason.
    await expect(page.locator("#paused-by-reason")).to_contain_text("2 · Lunch")
    await expect(page.locator("#time-by-state")).to_contain_text("Paused")
    await expect(page.locator("#my-figures")).to_contain_text("Answered calls")
    await save_screenshot(page, "my_day")

    await page.get_by_role("button", name="Log out of the queues").click()
    await expect(page.get_by_role("status")).to_contain_text("You are logged out")
    await expect(page.locator("#my-state")).to_contain_text("You are not logged in")
    gone = await client.get(
        f"/api/v1/agents/{world.agent.user_id}/session", headers=world.supervisor.headers
    )
    assert gone.status_code == 404


async def test_an_agent_with_two_phones_picks_one(
    page: Page, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    await give_device(client, world, world.agent.user_id)
    second = await give_device(client, world, world.agent.user_id, "202")
    await log_in(page, console, world.slug, world.agent.email, PASSWORD)
    await page.get_by_label("Device").select_option(str(second))
    await page.get_by_role("button", name="Log in to the queues").click()
    await expect(page.get_by_role("status")).to_contain_text("You are logged in")
    assert (await api_session(client, world))["device_id"] == second


async def test_a_login_refused_for_licences_says_no_licence_is_free(
    page: Page, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=1)
    await give_device(client, world, world.agent.user_id)
    # Another agent holds the tenant's only licence.
    email = f"{unique('agent')}@{world.slug}.example"
    other = await client.post(
        "/api/v1/users",
        headers=world.admin.headers,
        json={"email": email, "display_name": "Other", "role": "agent", "password": PASSWORD},
    )
    assert other.status_code == 201, other.text
    other_id = other.json()["id"]
    await give_device(client, world, other_id, "202")
    taken = await client.post(
        f"/api/v1/agents/{other_id}/session", headers=world.supervisor.headers
    )
    assert taken.status_code == 201, taken.text

    await log_in(page, console, world.slug, world.agent.email, PASSWORD)
    await page.get_by_role("button", name="Log in to the queues").click()
    refusal = page.locator("#licence-refused")
    await expect(refusal).to_be_visible(timeout=SEEN_WITHIN_MS)
    await expect(refusal).to_have_attribute("role", "alert")
    await expect(refusal).to_contain_text("No licence is free")
    await expect(refusal).to_contain_text("(1 of 1)")
    await expect(refusal).to_contain_text("Ask your supervisor")
    await assert_accessible(page)
    await save_screenshot(page, "my_day_licence_refused")
    assert (
        await client.get(
            f"/api/v1/agents/{world.agent.user_id}/session", headers=world.supervisor.headers
        )
    ).status_code == 404
    # The refusal's event is kept, as the API keeps it.
    async with sessions() as session:
        refusals = (
            await session.execute(
                select(AgentStateEvent.source, AgentStateEvent.reason).where(
                    AgentStateEvent.user_id == world.agent.user_id,
                    AgentStateEvent.kind == "refused",
                )
            )
        ).all()
    assert [tuple(r) for r in refusals] == [("web", "licence-exhausted")]


async def test_my_day_is_an_agents_page(
    page: Page, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    await log_in_to(page, console, "/agents", world, world.supervisor.email)
    await assert_forbidden(page, f"{console}/my-day")


async def test_my_day_in_french(
    browser: Browser, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await lunch_world(client, sessions)
    context = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        await log_in(page, console, world.slug, world.agent.email, PASSWORD, language="fr")
        await expect(page.get_by_role("heading", name="Ma journée")).to_be_visible(
            timeout=SEEN_WITHIN_MS
        )
        await expect(page.locator("html")).to_have_attribute("lang", "fr")
        await page.get_by_role("button", name="Me connecter aux files").click()
        await expect(page.get_by_role("status")).to_contain_text("Vous êtes connecté")
        await page.get_by_label("Motif de pause").select_option(label="2 · Lunch")
        await page.get_by_role("button", name="Pause", exact=True).click()
        await expect(page.locator("#my-state")).to_have_text("En pause")
        await expect(page.get_by_role("heading", name="Mes chiffres du jour")).to_be_visible()
        await assert_accessible(page)
        await save_screenshot(page, "my_day_fr")
    finally:
        await context.close()


async def test_an_agent_pauses_from_my_day_and_the_supervisors_wallboard_shows_it(
    browser: Browser, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await lunch_world(client, sessions)
    supervisor_context = await browser.new_context(
        locale="en-GB", viewport={"width": 1400, "height": 900}
    )
    agent_context = await browser.new_context(locale="en-GB")
    try:
        supervisor = await supervisor_context.new_page()
        await log_in_to(supervisor, console, "/wallboard", world, world.supervisor.email)
        await expect(supervisor.locator("#wallboard-status")).to_have_attribute(
            "data-state", "live", timeout=SEEN_WITHIN_MS
        )
        row = supervisor.locator(f'#wallboard-agents tr[data-agent="{world.agent.user_id}"]')

        agent = await agent_context.new_page()
        await log_in(agent, console, world.slug, world.agent.email, PASSWORD)
        await agent.get_by_role("button", name="Log in to the queues").click()
        await expect(agent.get_by_role("status")).to_contain_text("You are logged in")
        # The open wallboard follows without a reload: the agent appears, available.
        await expect(row.locator('[data-field="state"]')).to_have_text(
            "Available", timeout=SEEN_WITHIN_MS
        )

        await agent.get_by_label("Pause reason").select_option(label="2 · Lunch")
        await agent.get_by_role("button", name="Pause", exact=True).click()
        await expect(agent.get_by_role("status")).to_contain_text("You are paused")
        await expect(row.locator('[data-field="state"]')).to_have_text(
            "Paused", timeout=SEEN_WITHIN_MS
        )
        await expect(row.locator('[data-field="reason"]')).to_have_text(
            "2 · Lunch", timeout=SEEN_WITHIN_MS
        )
        await save_screenshot(supervisor, "wallboard_agent_paused_from_my_day")
    finally:
        await agent_context.close()
        await supervisor_context.close()
