"""The operator's Tenants page in the browser: create a tenant (its errors next to the fields),
set its licence ceiling, suspend it, act in it; axe."""

from __future__ import annotations

import httpx
from playwright.async_api import Dialog, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.e2e.web.browser import SEEN_WITHIN_MS, assert_accessible, log_in, save_screenshot
from tests.factories import PASSWORD, make_world, unique

Sessions = async_sessionmaker[AsyncSession]


async def test_the_operator_creates_a_tenant_sets_a_ceiling_and_suspends_it(
    page: Page, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    await log_in(page, console, None, world.operator.email, PASSWORD)
    await expect(page).to_have_url(f"{console}/operator/tenants")
    await expect(page.get_by_role("heading", name="Every tenant")).to_be_visible()
    await assert_accessible(page)

    slug = unique("ops")
    name = f"Ops {slug}"
    await page.get_by_label("Short name").fill(slug)
    await page.get_by_label("Name", exact=True).fill(name)
    await page.get_by_label("Country").fill("Nowhere")
    await page.get_by_label("Licences", exact=True).fill("4")
    await page.get_by_label("Licence ceiling", exact=True).fill("6")
    await page.get_by_role("button", name="Create the tenant").click()
    # Refused next to its field; what was typed is kept.
    country_error = page.locator("#country-error")
    await expect(country_error).to_have_text(
        "A country code of two capital letters (ISO 3166-1), e.g. FR."
    )
    await expect(country_error).to_have_attribute("role", "alert")
    await expect(page.get_by_label("Short name")).to_have_value(slug)
    await assert_accessible(page)

    await page.get_by_label("Country").fill("FR")
    await page.get_by_role("button", name="Create the tenant").click()
    await expect(page.get_by_role("status")).to_have_text(f"Tenant {name} created.")
    row = page.locator(f'#tenants tr[data-slug="{slug}"]')
    await expect(row).to_contain_text("Active")
    ceiling = row.get_by_label(f"Licence ceiling of {name}")
    await expect(ceiling).to_have_value("6")

    # The ceiling, changed in the tenant's row.
    await ceiling.fill("10")
    await row.get_by_role("button", name=f"Set the ceiling of {name}").click()
    await expect(page.get_by_role("status")).to_have_text(f"Tenant {name} changed.")
    await expect(row.get_by_label(f"Licence ceiling of {name}")).to_have_value("10")

    # Suspended, after the browser's confirmation.
    async def confirm(dialog: Dialog) -> None:
        assert dialog.message.startswith(f"Suspend {name}?")
        await dialog.accept()

    page.once("dialog", confirm)
    await row.get_by_role("button", name=f"Suspend {name}").click()
    await expect(row.locator("td.status")).to_have_text("Suspended", timeout=SEEN_WITHIN_MS)
    await expect(row.get_by_role("button", name=f"Reactivate {name}")).to_be_visible()
    await assert_accessible(page)
    await save_screenshot(page, "operator_tenants")

    account = row.get_by_role("link", name=f"Account {name}")
    href = await account.get_attribute("href")
    assert href is not None and href.startswith("/account?tenant=")
    made = await client.get(
        f"/api/v1/tenants/{href.rsplit('=', 1)[1]}", headers=world.operator.headers
    )
    assert made.status_code == 200, made.text
    assert made.json()["slug"] == slug and made.json()["status"] == "suspended"
    assert made.json()["licence_ceiling"] == 10 and made.json()["licences"] == 4

    # Acting in the tenant: its Account page, as the operator.
    await account.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Account")
    await expect(page.locator("#licence-ceiling")).to_have_text("10")
    await expect(page.locator("#licences-held")).to_have_text("4")
    await expect(page.get_by_text("As the operator, you may go above it.")).to_be_visible()
    await assert_accessible(page)
