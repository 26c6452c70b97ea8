"""Logging in to the console in the browser: the form, its errors, both languages, axe."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.e2e.web.browser import SEEN_WITHIN_MS, assert_accessible, log_in, screenshot_path
from tests.factories import PASSWORD, make_world


async def test_a_wrong_password_is_said_and_a_right_one_logs_in_and_out(
    page: Page,
    console: str,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(client, sessions)
    await page.goto(f"{console}/login")
    await assert_accessible(page)
    await page.get_by_label("Tenant").fill(world.slug)
    await page.get_by_label("E-mail").fill(world.admin.email)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_contain_text("Wrong e-mail, tenant or password")
    await assert_accessible(page)
    await log_in(page, console, world.slug, world.admin.email, PASSWORD)
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=SEEN_WITHIN_MS)
    # The session is over: a page sends the browser back to the login form.
    await page.goto(f"{console}/wallboard")
    await expect(page).to_have_url(f"{console}/login?next=%2Fwallboard")


async def test_the_login_page_in_french(browser: Browser, console: str) -> None:
    context = await browser.new_context(locale="fr-FR")
    page = await context.new_page()
    try:
        await page.goto(f"{console}/login")
        await expect(page.get_by_label("Mot de passe")).to_be_visible()
        await expect(page.locator("html")).to_have_attribute("lang", "fr")
        await assert_accessible(page)
        await page.screenshot(path=str(screenshot_path("login_fr")), full_page=True)
    finally:
        await context.close()


async def test_a_user_chooses_french_and_keeps_it_over_the_browsers_language(
    browser: Browser,
    console: str,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(client, sessions)
    context = await browser.new_context(locale="en-GB")
    page = await context.new_page()
    try:
        await log_in(page, console, world.slug, world.supervisor.email, PASSWORD)
        await page.get_by_label("Language").select_option("fr")
        # Choosing is not yet changing (WCAG 3.2.2): the page changes on the button only.
        await expect(page.locator("html")).to_have_attribute("lang", "en")
        await page.get_by_role("button", name="Change language").click()
        await expect(page.locator("html")).to_have_attribute("lang", "fr")
        await expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()
        await assert_accessible(page)
        await page.get_by_role("button", name="Se déconnecter").click()
        # An English browser: the login form is in English; once the user is known, the
        # user's own choice wins.
        await expect(page.get_by_role("button", name="Log in")).to_be_visible()
        await page.get_by_label("Tenant").fill(world.slug)
        await page.get_by_label("E-mail").fill(world.supervisor.email)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Log in").click()
        await expect(page.get_by_role("link", name="Rapports")).to_be_visible()
    finally:
        await context.close()
