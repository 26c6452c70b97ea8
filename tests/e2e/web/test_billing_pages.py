"""The billing pages in the browser: an admin reads its invoices and statement, downloads an
invoice's PDF, contests an invoice (a refusal beside the field first); the rates page with
its filter and the monthly price change to come; both pages in French; axe on each."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
from playwright.async_api import Browser, Page, expect
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.billing import decks
from graam_pbx.billing.models import BillingPlan, Price, Rate, RateDeck
from graam_pbx.tenants.models import Tenant
from tests.conftest import RunningApp
from tests.e2e.web.browser import SEEN_WITHIN_MS, assert_accessible, log_in, save_screenshot
from tests.factories import PASSWORD, TenantWorld, make_world, unique
from tests.integration.test_console_billing import billing_today, euros, seed_invoices

Sessions = async_sessionmaker[AsyncSession]


async def test_an_admin_reads_its_invoices_downloads_one_and_contests_another(
    page: Page,
    console: str,
    client: httpx.AsyncClient,
    sessions: Sessions,
    pbx: RunningApp,
) -> None:
    world = await make_world(client, sessions)
    seeded = await seed_invoices(sessions, pbx.runtime.settings, world)
    await log_in(page, console, world.slug, world.admin.email, PASSWORD)
    await page.get_by_role("link", name="Billing", exact=True).click()
    await expect(page.get_by_role("heading", name="Your invoices")).to_be_visible()
    overdue = page.locator(f'tr[data-invoice="{seeded.overdue.id}"]')
    recent = page.locator(f'tr[data-invoice="{seeded.recent.id}"]')
    await expect(overdue.locator(".status")).to_have_text("Overdue")
    await expect(overdue.locator(".total")).to_have_text(euros("120.00"))
    await expect(recent.locator(".status")).to_have_text("Partly paid")
    await expect(page.locator("#statement-balance")).to_have_text(euros("170.00"))
    await expect(page.locator("#statement-indemnities")).to_have_text(euros("40.00"))
    await assert_accessible(page)
    await save_screenshot(page, "billing_invoices")

    async with page.expect_download() as downloading:
        await overdue.get_by_role("link", name=f"PDF {seeded.overdue.number}").click()
    download = await downloading.value
    assert download.suggested_filename == f"{seeded.overdue.number}.pdf"
    path = await download.path()
    assert path.read_bytes().startswith(b"%PDF")

    # No invoice chosen, no reason: refused beside each field, the page still usable.
    await page.get_by_role("button", name="Contest the invoice").click()
    await expect(page.locator("#invoice-error")).to_contain_text("Choose the invoice")
    await expect(page.locator("#reason-error")).to_contain_text("1 to 10,000 characters")
    await expect(page.get_by_label("Invoice", exact=True)).to_have_attribute("aria-invalid", "true")
    await assert_accessible(page)
    await save_screenshot(page, "billing_contest_refused")

    await page.get_by_label("Invoice", exact=True).select_option(str(seeded.recent.id))
    await page.get_by_label("What is wrong").fill("The calls of the 3rd to Spain were not ours.")
    await page.get_by_role("button", name="Contest the invoice").click()
    await expect(page.get_by_role("status")).to_contain_text(
        f"Invoice {seeded.recent.number} is contested", timeout=SEEN_WITHIN_MS
    )
    await expect(recent.locator(".status")).to_have_text("Disputed")
    await expect(page.locator("#nothing-to-contest")).to_be_visible()
    await assert_accessible(page)
    await save_screenshot(page, "billing_contested")


async def far_deck(sessions: Sessions) -> str:
    """A deck to take effect decades ahead (never in force during the tests), two rates."""
    name = unique("Far deck ")
    offset = timedelta(days=365 * 60, seconds=secrets.randbelow(10**6))
    async with sessions() as session, session.begin():
        deck = RateDeck(
            name=name, activates_at=datetime.now(UTC) + offset, published_by="operator@test"
        )
        session.add(deck)
        await session.flush()
        session.add_all(
            [
                Rate(
                    deck_id=deck.id,
                    prefix="4420",
                    destination_country="GB",
                    number_type="geographic",
                    price_per_minute=Decimal("0.0234"),
                ),
                Rate(
                    deck_id=deck.id,
                    prefix="33",
                    destination_country="FR",
                    price_per_minute=Decimal("0.01"),
                ),
            ]
        )
    return name


async def plan_price_change(sessions: Sessions, world: TenantWorld, pbx: RunningApp) -> None:
    """The tenant on a plan of its own, priced now and priced anew in 35 days."""
    today = billing_today(pbx.runtime.settings)
    code = unique("plan").lower()
    async with sessions() as session, session.begin():
        session.add(BillingPlan(code=code, name=f"Plan {code}"))
        await session.flush()
        session.add_all(
            [
                Price(
                    item="plan",
                    plan_code=code,
                    amount=Decimal("49.00"),
                    effective_on=today - timedelta(days=90),
                    published_by="operator@test",
                ),
                Price(
                    item="plan",
                    plan_code=code,
                    amount=Decimal("54.00"),
                    effective_on=today + timedelta(days=35),
                    published_by="operator@test",
                ),
            ]
        )
        await session.execute(update(Tenant).where(Tenant.id == world.tenant_id).values(plan=code))


async def test_the_rates_page_and_both_pages_in_french(
    page: Page,
    browser: Browser,
    console: str,
    client: httpx.AsyncClient,
    sessions: Sessions,
    pbx: RunningApp,
) -> None:
    world = await make_world(client, sessions)
    seeded = await seed_invoices(sessions, pbx.runtime.settings, world)
    await plan_price_change(sessions, world, pbx)
    # A deck published far ahead, so that some deck is always the next (another test's may
    # come sooner: the page shows whichever is next).
    deck_name = await far_deck(sessions)
    await log_in(page, console, world.slug, world.admin.email, PASSWORD)
    await page.get_by_role("link", name="Rates", exact=True).click()
    await expect(page.get_by_role("heading", name="Upcoming price changes")).to_be_visible()
    change = page.locator("#price-changes tbody tr")
    await expect(change).to_have_count(1)
    await expect(change).to_contain_text("Your plan")
    await expect(change).to_contain_text(euros("54.00"))
    await expect(page.get_by_role("link", name="Read the operator's notices")).to_be_visible()
    await assert_accessible(page)
    await save_screenshot(page, "billing_rates")
    await page.get_by_role("link", name="See the new rates").click()
    async with sessions() as session:
        following = await decks.deck_in_force(session, "next")
    assert following is not None
    await expect(page.locator("#deck-line")).to_contain_text(following.name)
    await expect(page.locator("#rates tbody tr").first).to_be_visible()
    if following.name == deck_name:
        await expect(page.locator('#rates tr[data-prefix="4420"] .price')).to_have_text("€0.0234")
    await assert_accessible(page)
    await save_screenshot(page, "billing_rates_next")
    await page.get_by_role("link", name="Back to the rates in force").click()
    await page.get_by_label("Destination country").select_option("FR")
    await page.get_by_role("button", name="Show").click()
    await expect(page).to_have_url(f"{console}/billing/rates?country=FR")
    await expect(page.get_by_label("Destination country")).to_have_value("FR")
    await assert_accessible(page)

    french = await browser.new_context(locale="fr-FR")
    page_fr = await french.new_page()
    try:
        await log_in(page_fr, console, world.slug, world.admin.email, PASSWORD, language="fr")
        await page_fr.get_by_role("link", name="Facturation", exact=True).click()
        await expect(page_fr.locator("html")).to_have_attribute("lang", "fr")
        await expect(page_fr.get_by_role("heading", name="Vos factures")).to_be_visible()
        overdue = page_fr.locator(f'tr[data-invoice="{seeded.overdue.id}"]')
        await expect(overdue.locator(".status")).to_have_text("En retard de paiement")
        await expect(overdue.locator(".total")).to_have_text(euros("120.00", "fr"))
        await expect(page_fr.get_by_role("heading", name="Contester une facture")).to_be_visible()
        await assert_accessible(page_fr)
        await save_screenshot(page_fr, "billing_invoices_fr")
        await page_fr.get_by_role("link", name="Tarifs", exact=True).click()
        await expect(
            page_fr.get_by_role("heading", name="Changements de prix à venir")
        ).to_be_visible()
        await expect(page_fr.locator("#price-changes")).to_contain_text("Votre abonnement")
        await expect(page_fr.locator("#price-changes")).to_contain_text(euros("54.00", "fr"))
        await assert_accessible(page_fr)
        await save_screenshot(page_fr, "billing_rates_fr")
    finally:
        await french.close()
