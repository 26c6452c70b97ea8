"""The Account page in the browser: an admin raises then lowers licences within the operator's
ceiling, a change above it is refused next to the field, a login refused for licences is
visible to the agent on My day and in the admin's figures; French; axe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.e2e.web.agent_console import give_device
from tests.e2e.web.browser import SEEN_WITHIN_MS, assert_accessible, log_in, save_screenshot
from tests.factories import PASSWORD, Actor, TenantWorld, login, make_world, unique

Sessions = async_sessionmaker[AsyncSession]


async def another_agent(client: httpx.AsyncClient, world: TenantWorld) -> Actor:
    email = f"{unique('agent')}@{world.slug}.example"
    made = await client.post(
        "/api/v1/users",
        headers=world.admin.headers,
        json={
            "email": email,
            "display_name": "Second Agent",
            "role": "agent",
            "password": PASSWORD,
        },
    )
    assert made.status_code == 201, made.text
    return Actor(made.json()["id"], email, "agent", await login(client, email, world.slug))


async def set_ceiling(client: httpx.AsyncClient, world: TenantWorld, ceiling: int) -> None:
    answer = await client.patch(
        f"/api/v1/tenants/{world.tenant_id}",
        headers=world.operator.headers,
        json={"licence_ceiling": ceiling},
    )
    assert answer.status_code == 200, answer.text


async def change_licences(page: Page, count: str) -> None:
    await page.get_by_label("Number of licences").fill(count)
    await page.get_by_role("button", name="Change licences").click()


async def test_an_admin_raises_then_lowers_licences_within_the_ceiling_and_a_login_refused_for_licences_is_visible(  # noqa: E501
    page: Page,
    browser: Browser,
    console: str,
    client: httpx.AsyncClient,
    sessions: Sessions,
) -> None:
    world = await make_world(client, sessions, licences=1)
    await set_ceiling(client, world, 3)
    await give_device(client, world, world.agent.user_id, "201")
    second = await another_agent(client, world)
    await give_device(client, world, second.user_id, "202")
    notice = await client.post(
        "/api/v1/notices",
        headers=world.operator.headers,
        json={
            "title": "New call rates",
            "body": "International rates change.\nSee the rates page.",
            "effective_on": (datetime.now(UTC).date() + timedelta(days=35)).isoformat(),
            "tenant_ids": [world.tenant_id],
        },
    )
    assert notice.status_code == 201, notice.text

    await log_in(page, console, world.slug, world.admin.email, PASSWORD)
    await page.get_by_role("link", name="Account").click()
    await expect(page).to_have_url(f"{console}/account")
    held, in_use = page.locator("#licences-held"), page.locator("#licences-in-use")
    await expect(held).to_have_text("1")
    await expect(in_use).to_have_text("0")
    await expect(page.locator("#licence-ceiling")).to_have_text("3")
    await expect(page.locator("#users")).to_contain_text(second.email)
    await expect(page.locator("#devices")).to_contain_text("202")
    await expect(page.locator("#operator-notices")).to_contain_text("New call rates")
    await expect(page.get_by_text("kept in the audit log, from which it is billed")).to_be_visible()
    await assert_accessible(page)
    await save_screenshot(page, "account")

    # Raised to the ceiling: at once.
    await change_licences(page, "3")
    await expect(page.get_by_role("status")).to_have_text("Licences changed: 3 held from now on.")
    await expect(held).to_have_text("3")

    # Above the ceiling: refused next to the field, nothing changed.
    await change_licences(page, "4")
    field = page.get_by_label("Number of licences")
    alert = page.get_by_role("alert")
    await expect(alert).to_have_text("At most 3 licences: the ceiling set by your operator.")
    await expect(field).to_have_value("4")
    await expect(field).to_have_attribute("aria-invalid", "true")
    await expect(held).to_have_text("3")
    await assert_accessible(page)
    await save_screenshot(page, "account_above_ceiling")
    api = await client.get(
        f"/api/v1/tenants/{world.tenant_id}/licences", headers=world.admin.headers
    )
    assert api.json()["licences"] == 3

    # One agent logs in (through the API): one licence in use. Then lowered back to one.
    logged = await client.post(
        f"/api/v1/agents/{world.agent.user_id}/session", headers=world.agent.headers
    )
    assert logged.status_code == 201, logged.text
    await change_licences(page, "1")
    await expect(page.get_by_role("status")).to_have_text("Licences changed: 1 held from now on.")
    await expect(held).to_have_text("1")
    await expect(in_use).to_have_text("1")

    # The second agent, in its own browser, is refused on My day: no licence is free.
    context = await browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    agent_page = await context.new_page()
    try:
        await log_in(agent_page, console, world.slug, second.email, PASSWORD)
        await expect(agent_page).to_have_url(f"{console}/my-day")
        await agent_page.get_by_role("button", name="Log in to the queues").click()
        refusal = agent_page.locator("#licence-refused")
        await expect(refusal).to_be_visible(timeout=SEEN_WITHIN_MS)
        await expect(refusal).to_contain_text("No licence is free")
        await save_screenshot(agent_page, "account_login_refused_on_my_day")
    finally:
        await context.close()

    # The admin still sees one held, one in use: the refusal took nothing.
    await page.reload()
    await expect(held).to_have_text("1")
    await expect(in_use).to_have_text("1")


async def test_the_account_page_in_french(
    browser: Browser, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=2)
    await set_ceiling(client, world, 5)
    context = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        await log_in(page, console, world.slug, world.admin.email, PASSWORD, language="fr")
        await page.goto(f"{console}/account")
        await expect(page.locator("html")).to_have_attribute("lang", "fr")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Compte")
        await expect(page.get_by_text("Licences détenues")).to_be_visible()
        await expect(
            page.get_by_text("Jusqu'à 5, le plafond fixé par votre opérateur.")
        ).to_be_visible()
        await page.get_by_label("Nombre de licences").fill("6")
        await page.get_by_role("button", name="Modifier les licences").click()
        await expect(page.get_by_role("alert")).to_have_text(
            "Au plus 5 licences : le plafond fixé par votre opérateur."
        )
        await page.get_by_label("Nombre de licences").fill("beaucoup")
        await page.get_by_role("button", name="Modifier les licences").click()
        await expect(page.get_by_role("alert")).to_have_text(
            "Saisissez un nombre entier de licences."
        )
        await assert_accessible(page)
        await save_screenshot(page, "account_fr")
    finally:
        await context.close()
