"""Support requests in the browser: a client files one, the operator answers it in the
operator's queue, the client reads the answer; an overdue request says so in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from playwright.async_api import Browser, Dialog, Page, expect
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.support.models import SupportRequest
from tests.e2e.web.browser import (
    assert_accessible,
    log_in,
    save_screenshot,
)
from tests.factories import PASSWORD, make_world, unique


async def test_a_client_files_a_request_the_operator_answers_the_client_reads_it(
    page: Page,
    browser: Browser,
    console: str,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(client, sessions)
    subject = unique("Queue silent ")
    await log_in(page, console, world.slug, world.supervisor.email, PASSWORD)
    await page.goto(f"{console}/support")
    await expect(page.get_by_role("heading", name="File a request")).to_be_visible()
    await assert_accessible(page)

    # A request without a subject is refused, the error beside the field, nothing filed.
    await page.get_by_label("Your message").fill("Nobody hears the callers.")
    await page.get_by_role("button", name="File the request").click()
    await expect(page.locator("#subject-error")).to_contain_text("1 to 200 characters")
    await expect(page.get_by_label("Your message")).to_have_value("Nobody hears the callers.")
    await expect(page.get_by_label("Subject")).to_have_attribute("aria-invalid", "true")
    await assert_accessible(page)

    await page.get_by_label("Subject").fill(subject)
    await page.get_by_label("High").check()
    await page.get_by_role("button", name="File the request").click()
    await expect(page.get_by_role("status")).to_contain_text("Your request was filed")
    await expect(page.locator(".conversation")).to_contain_text("Nobody hears the callers.")
    await expect(page.locator("#request-status")).to_have_text("Waiting for the operator")
    await assert_accessible(page)
    request_url = page.url

    operator_context = await browser.new_context(locale="en-GB")
    operator = await operator_context.new_page()
    try:
        await log_in(operator, console, None, world.operator.email, PASSWORD)
        await operator.goto(f"{console}/operator/support")
        row = operator.locator("#support-queue tr", has_text=subject)
        await expect(row).to_contain_text(f"Tenant {world.slug}")
        await expect(row).to_contain_text("High")
        await assert_accessible(operator)
        await save_screenshot(operator, "support_operator_queue")
        await row.get_by_role("link").click()
        await expect(operator.locator(".conversation")).to_contain_text("Nobody hears the callers.")
        await assert_accessible(operator)
        await operator.get_by_label("Your answer").fill("Your queue had no members: fixed.")
        await operator.get_by_role("button", name="Send the answer").click()
        await expect(operator.get_by_role("status")).to_contain_text("Your answer was sent")
        await expect(operator.locator("#request-status")).to_have_text("Answered by the operator")
        await save_screenshot(operator, "support_operator_answer")

        await page.goto(request_url)
        await expect(page.locator(".conversation .from-operator")).to_contain_text(
            "Your queue had no members: fixed."
        )
        await expect(page.locator("#request-status")).to_have_text("Answered by the operator")
        await page.get_by_label("Your message").fill("Thank you, it rings again.")
        await page.get_by_role("button", name="Send the message").click()
        await expect(page.get_by_role("status")).to_contain_text("Your message was added")
        await expect(page.locator("#request-status")).to_have_text("Waiting for the operator")
        await save_screenshot(page, "support_client_request")

        async def accept(dialog: Dialog) -> None:
            await dialog.accept()

        operator.once("dialog", accept)
        await operator.reload()
        await operator.get_by_role("button", name="Close the request").click()
        await expect(operator.get_by_role("status")).to_contain_text("The request is closed")
        await page.reload()
        await expect(page.locator("#request-status")).to_have_text("Closed")
        await expect(page.get_by_label("Your message")).to_have_count(0)
    finally:
        await operator_context.close()


async def test_an_overdue_request_shows_as_overdue_in_french_too(
    browser: Browser,
    page: Page,
    console: str,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(client, sessions)
    ids = {}
    for priority in ("low", "medium"):
        filed = await client.post(
            "/api/v1/support-requests",
            headers=world.admin.headers,
            json={"subject": unique(f"{priority} "), "body": "Help.", "priority": priority},
        )
        assert filed.status_code == 201, filed.text
        ids[priority] = filed.json()["id"]
    # The medium one was filed three days ago: 48 h have passed without an answer.
    filed_at = datetime.now(UTC) - timedelta(days=3)
    async with sessions() as session, session.begin():
        await session.execute(
            update(SupportRequest)
            .where(SupportRequest.id == ids["medium"])
            .values(created_at=filed_at, due_at=filed_at + timedelta(hours=48))
        )

    await log_in(page, console, world.slug, world.admin.email, PASSWORD)
    await page.goto(f"{console}/support")
    late = page.locator(f'tr[data-request="{ids["medium"]}"]')
    on_time = page.locator(f'tr[data-request="{ids["low"]}"]')
    await expect(late.locator(".due")).to_contain_text("OVERDUE")
    await expect(on_time.locator(".due")).not_to_contain_text("OVERDUE")
    rows = page.locator("#support-requests tbody tr")
    await expect(rows.first).to_have_attribute("data-request", str(ids["medium"]))
    await assert_accessible(page)
    await save_screenshot(page, "support_overdue")

    operator_context = await browser.new_context(locale="en-GB")
    operator = await operator_context.new_page()
    try:
        await log_in(operator, console, None, world.operator.email, PASSWORD)
        await operator.goto(f"{console}/operator/support?status=open")
        await expect(
            operator.locator(f'#support-queue tr[data-request="{ids["medium"]}"] .due')
        ).to_contain_text("OVERDUE")
        order = await operator.locator("#support-queue tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.request)"
        )
        assert order.index(str(ids["medium"])) < order.index(str(ids["low"]))
    finally:
        await operator_context.close()

    french = await browser.new_context(locale="fr-FR")
    page_fr = await french.new_page()
    try:
        await log_in(page_fr, console, world.slug, world.admin.email, PASSWORD, language="fr")
        await page_fr.goto(f"{console}/support")
        await expect(page_fr.locator("html")).to_have_attribute("lang", "fr")
        await expect(page_fr.get_by_role("heading", name="Déposer une demande")).to_be_visible()
        await expect(page_fr.locator(f'tr[data-request="{ids["medium"]}"] .due')).to_contain_text(
            "EN RETARD"
        )
        await assert_accessible(page_fr)
        await save_screenshot(page_fr, "support_fr")
    finally:
        await french.close()
