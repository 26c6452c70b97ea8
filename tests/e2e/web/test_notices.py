"""Notices in the browser: the operator publishes one (a date too soon is refused beside
its field), the users of the tenants it concerns see it in a banner, others never do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.notices.service import one_month_after
from tests.e2e.web.browser import assert_accessible, log_in, save_screenshot
from tests.factories import PASSWORD, make_world, unique


async def test_the_operator_publishes_and_the_tenants_users_see_the_banner(
    page: Page,
    browser: Browser,
    console: str,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    concerned = await make_world(client, sessions)
    other = await make_world(client, sessions)
    title = unique("Trunk maintenance ")
    today = datetime.now(UTC).date()

    await log_in(page, console, None, concerned.operator.email, PASSWORD)
    await page.goto(f"{console}/operator/notices")
    await expect(page.get_by_role("heading", name="Publish a notice")).to_be_visible()
    await assert_accessible(page)

    await page.get_by_label("Title").fill(title)
    await page.get_by_label("What changes").fill("Calls may drop for a minute at 02:00.")
    await page.get_by_label("Effective date").fill((today + timedelta(days=7)).isoformat())
    await page.get_by_label("Only the tenants chosen below").check()
    await page.get_by_label("Tenants concerned").select_option(str(concerned.tenant_id))
    await page.get_by_role("button", name="Publish").click()
    await expect(page.locator("#effective_on-error")).to_contain_text("at least one month")
    await expect(page.get_by_label("Title")).to_have_value(title)
    await assert_accessible(page)

    effective = one_month_after(today) + timedelta(days=2)
    await page.get_by_label("Effective date").fill(effective.isoformat())
    await page.get_by_role("button", name="Publish").click()
    await expect(page.get_by_role("status")).to_contain_text("The notice is published")
    row = page.locator("#notices tr", has_text=title)
    await expect(row).to_contain_text(f"Tenant {concerned.slug}")
    await assert_accessible(page)
    await save_screenshot(page, "notices_operator")

    for role, home in (("supervisor", "/wallboard"), ("agent", "/my-day")):
        context = await browser.new_context(locale="en-GB")
        user_page = await context.new_page()
        try:
            await log_in(user_page, console, concerned.slug, concerned.actor(role).email, PASSWORD)
            await user_page.goto(f"{console}{home}")
            banner = user_page.locator(".operator-notices")
            await expect(banner).to_contain_text("Notices from the operator")
            await expect(banner).to_contain_text(title)
            await banner.get_by_text(title).click()
            await expect(banner).to_contain_text("Calls may drop for a minute at 02:00.")
            await assert_accessible(user_page)
            await save_screenshot(user_page, f"notices_banner_{role}")
        finally:
            await context.close()

    context = await browser.new_context(locale="en-GB")
    outsider = await context.new_page()
    try:
        await log_in(outsider, console, other.slug, other.admin.email, PASSWORD)
        await outsider.goto(f"{console}/support")
        await expect(outsider.get_by_role("heading", name="File a request")).to_be_visible()
        await expect(outsider.get_by_text(title)).to_have_count(0)
    finally:
        await context.close()
