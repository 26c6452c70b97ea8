"""The supervisors' Agents page in the browser: who is connected, paused (why, since when);
changing a pause and forcing a logout, seen on the agent's My day; refusals; roles; French."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, Dialog, Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents.models import AgentSession
from tests.e2e.web.agent_console import add_pause_reason, assert_forbidden, log_in_to, lunch_world
from tests.e2e.web.browser import SEEN_WITHIN_MS, assert_accessible, log_in, save_screenshot
from tests.factories import PASSWORD, TenantWorld, make_world

Sessions = async_sessionmaker[AsyncSession]


async def accept(dialog: Dialog) -> None:
    await dialog.accept()


async def api_login_and_pause(client: httpx.AsyncClient, world: TenantWorld, code: str) -> None:
    url = f"/api/v1/agents/{world.agent.user_id}/session"
    made = await client.post(url, headers=world.agent.headers)
    assert made.status_code == 201, made.text
    paused = await client.post(
        f"{url}/pause", headers=world.agent.headers, json={"paused": True, "reason": code}
    )
    assert paused.status_code == 200, paused.text


async def test_the_supervisor_sees_a_pause_changes_it_and_forces_a_logout(
    browser: Browser, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await lunch_world(client, sessions)
    await add_pause_reason(client, world, "3", "Training")
    agent_context = await browser.new_context(locale="en-GB")
    supervisor_context = await browser.new_context(
        locale="en-GB", viewport={"width": 1400, "height": 900}
    )
    try:
        agent = await agent_context.new_page()
        await log_in(agent, console, world.slug, world.agent.email, PASSWORD)
        await agent.get_by_role("button", name="Log in to the queues").click()
        await expect(agent.get_by_role("status")).to_contain_text("You are logged in")
        await agent.get_by_label("Pause reason").select_option(label="2 · Lunch")
        await agent.get_by_role("button", name="Pause", exact=True).click()
        await expect(agent.locator("#my-pause-reason")).to_have_text("2 · Lunch")

        supervisor = await supervisor_context.new_page()
        await log_in_to(supervisor, console, "/agents", world, world.supervisor.email)
        row = supervisor.locator(f"tr[data-agent='{world.agent.user_id}']")
        await expect(row.locator("td.pause")).to_contain_text("2 · Lunch")
        await expect(row.locator("td.state")).to_contain_text("Paused")
        await expect(row.locator("td.pause")).to_contain_text("since")
        await expect(row).to_contain_text("201")
        await assert_accessible(supervisor)
        await save_screenshot(supervisor, "agents")

        # The supervisor changes the pause's reason: the agent's My day shows it on reload.
        await row.get_by_label("Pause of Agent").select_option(label="Paused: 3 · Training")
        await row.get_by_role("button", name="Apply").click()
        await expect(supervisor.get_by_role("status")).to_have_text("The agent is paused.")
        await expect(row.locator("td.pause")).to_contain_text("3 · Training")
        await agent.reload()
        await expect(agent.locator("#my-pause-reason")).to_have_text("3 · Training")

        # Resumed by the supervisor.
        await row.get_by_label("Pause of Agent").select_option(label="Not paused")
        await row.get_by_role("button", name="Apply").click()
        await expect(supervisor.get_by_role("status")).to_contain_text("The agent is back")
        await expect(row.locator("td.state")).to_contain_text("Available")
        await agent.reload()
        await expect(agent.locator("#my-state")).to_have_text("Available")

        # Forced out, after the browser asks first.
        supervisor.once("dialog", accept)
        await row.get_by_role("button", name="Force logout").click()
        await expect(supervisor.get_by_role("status")).to_contain_text("The agent was logged out")
        await expect(supervisor.locator("#no-agents")).to_be_visible()
        await assert_accessible(supervisor)
        await agent.reload()
        await expect(agent.locator("#my-state")).to_contain_text("You are not logged in")
        async with sessions() as session:
            ended = await session.scalar(
                select(AgentSession.end_reason).where(AgentSession.user_id == world.agent.user_id)
            )
        assert ended == "forced"
    finally:
        await agent_context.close()
        await supervisor_context.close()


async def test_changes_to_an_agent_gone_or_with_a_reason_gone_are_refused_clearly(
    page: Page, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await lunch_world(client, sessions)
    training = await add_pause_reason(client, world, "3", "Training")
    await api_login_and_pause(client, world, "2")

    await log_in_to(page, console, "/agents", world, world.supervisor.email)
    row = page.locator(f"tr[data-agent='{world.agent.user_id}']")
    await row.get_by_label("Pause of Agent").select_option(label="Paused: 3 · Training")
    deleted = await client.delete(f"/api/v1/pause-reasons/{training}", headers=world.admin.headers)
    assert deleted.status_code == 204, deleted.text
    async with page.expect_response(lambda r: r.request.method == "POST") as answer:
        await row.get_by_role("button", name="Apply").click()
    assert (await answer.value).status == 422
    await expect(page.get_by_role("alert")).to_contain_text(
        "This pause reason is not in the catalogue: 3"
    )
    await expect(row).to_contain_text("2 · Lunch")  # nothing changed
    await assert_accessible(page)

    gone = await client.delete(
        f"/api/v1/agents/{world.agent.user_id}/session", headers=world.agent.headers
    )
    assert gone.status_code == 204, gone.text
    page.once("dialog", accept)
    async with page.expect_response(lambda r: r.request.method == "POST") as answer:
        await row.get_by_role("button", name="Force logout").click()
    assert (await answer.value).status == 404
    await expect(page.get_by_role("alert")).to_contain_text("This agent is not logged in any more")


async def test_an_agent_may_not_open_the_agents_page(
    page: Page, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    await log_in(page, console, world.slug, world.agent.email, PASSWORD)
    await assert_forbidden(page, f"{console}/agents")


async def test_the_agents_page_in_french(
    browser: Browser, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await lunch_world(client, sessions)
    await api_login_and_pause(client, world, "2")
    context = await browser.new_context(locale="fr-FR", viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    try:
        await log_in(
            page,
            console,
            world.slug,
            world.supervisor.email,
            PASSWORD,
            next_path="/agents",
            language="fr",
        )
        await expect(page.get_by_role("heading", name="Agents")).to_be_visible(
            timeout=SEEN_WITHIN_MS
        )
        row = page.locator(f"tr[data-agent='{world.agent.user_id}']")
        await expect(row).to_contain_text("En pause")
        await expect(row).to_contain_text("2 · Lunch")
        await expect(row.get_by_role("button", name="Forcer la déconnexion")).to_be_visible()
        await expect(page.get_by_role("columnheader", name="Connecté depuis")).to_be_visible()
        await assert_accessible(page)
        await save_screenshot(page, "agents_fr")
    finally:
        await context.close()
