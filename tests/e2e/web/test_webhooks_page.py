"""The Webhooks pages in the browser: an admin adds an endpoint pointing at a real HTTP
receiver on loopback, sees its secret once, an event of the tenant reaches the receiver signed
with it, and the page lists the delivery as delivered (then retried by hand); a URL on a
private address is refused with the service's reason beside the field; an admin changes,
disables, enables, rotates and deletes an endpoint; a supervisor reads without a form, an
agent and another tenant's admin are refused, an operator acting in the tenant acts as its
admins; the French page."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from playwright.async_api import Browser, Dialog, Page, expect
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.e2e.web.agent_console import assert_forbidden
from tests.e2e.web.browser import SEEN_WITHIN_MS, assert_accessible, log_in, save_screenshot
from tests.factories import PASSWORD, TenantWorld, make_world
from tests.waiting import until
from tests.webhook_receiver import receiver

Sessions = async_sessionmaker[AsyncSession]
HOST = "127.0.0.231"  # this file's receivers; no other test uses it
REFUSED = "http://10.0.0.7/hooks"  # private: the session's app allows loopback only


async def write_event(sessions: Sessions, tenant_id: int, event_type: str) -> int:
    """One event of the tenant, written as the recorder writes it; its id."""
    async with sessions() as session, session.begin():
        made = await session.execute(
            text(
                "INSERT INTO webhook_events (tenant_id, type, ordering_key, occurred_at, payload) "
                "VALUES (:tenant, :type, 'call:page', now(), CAST(:payload AS jsonb)) "
                "RETURNING id"
            ),
            {"tenant": tenant_id, "type": event_type, "payload": json.dumps({"call_id": "page"})},
        )
        return int(made.scalar_one())


async def endpoint_of(sessions: Sessions, tenant_id: int) -> WebhookEndpoint:
    async with sessions() as session:
        return (
            await session.scalars(
                select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant_id)
            )
        ).one()


async def delivery_of(sessions: Sessions, endpoint_id: int) -> WebhookDelivery:
    async with sessions() as session:
        return (
            await session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
            )
        ).one()


async def delivered(sessions: Sessions, endpoint_id: int, attempts: int) -> None:
    async def done() -> bool:
        found = await delivery_of(sessions, endpoint_id)
        return found.state == "delivered" and found.attempts == attempts

    await until(done, f"the delivery recorded as delivered after {attempts} attempt(s)")


async def api_endpoint(
    client: httpx.AsyncClient, world: TenantWorld, url: str, events: list[str]
) -> dict[str, Any]:
    made = await client.post(
        "/api/v1/webhooks", headers=world.admin.headers, json={"url": url, "events": events}
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def accept(page: Page) -> None:
    async def yes(dialog: Dialog) -> None:
        await dialog.accept()

    page.once("dialog", yes)


async def test_an_admin_adds_an_endpoint_sees_its_secret_once_and_its_delivery(
    page: Page, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    await log_in(page, console, world.slug, world.admin.email, PASSWORD)
    await page.get_by_role("link", name="Webhooks").click()
    await expect(page.get_by_role("heading", name="Add an endpoint")).to_be_visible()
    await expect(page.locator("#no-webhooks")).to_be_visible()
    await assert_accessible(page)

    # Refused by the schema: each field says why, nothing is made.
    add = page.get_by_role("button", name="Add the endpoint")
    await page.get_by_label("URL").fill("ftp://crm.example.com/hooks")
    await add.click()
    await expect(page.locator("#url-error")).to_contain_text("An http or https URL")
    await expect(page.locator("#events-error")).to_contain_text("Choose at least one event type")
    await expect(page.get_by_label("URL")).to_have_attribute("aria-invalid", "true")
    await assert_accessible(page)

    # Refused by the service: a private address, the reason beside the field.
    await page.get_by_label("URL").fill(REFUSED)
    await page.get_by_role("checkbox", name="call.ended").check()
    await add.click()
    await expect(page.locator("#url-error")).to_contain_text("not a public address")
    await expect(page.locator("#events-error")).to_have_count(0)
    await expect(page.get_by_label("URL")).to_have_value(REFUSED)
    await expect(page.get_by_role("checkbox", name="call.ended")).to_be_checked()
    await expect(page.locator("#no-webhooks")).to_be_visible()
    await assert_accessible(page)

    async with receiver(HOST) as hooks:
        await page.get_by_label("URL").fill(hooks.url)
        await page.get_by_label("Description").fill("CRM")
        await add.click()
        once = page.locator(".secret-once")
        await expect(once).to_contain_text("Copy it now: it will not be shown again.")
        secret = await page.get_by_label("Secret", exact=True).input_value()
        assert secret.startswith("whsec_")
        await expect(page.get_by_role("status")).to_contain_text("The endpoint is added.")
        await expect(page.locator("#endpoint-events")).to_have_text("call.ended")
        await assert_accessible(page)
        await save_screenshot(page, "webhooks_secret_once")
        endpoint = await endpoint_of(sessions, world.tenant_id)
        assert endpoint.secret == secret and endpoint.description == "CRM"

        # An event of the tenant reaches the receiver, signed with that secret.
        event_id = await write_event(sessions, world.tenant_id, "call.ended")
        (request,) = await hooks.count(1)
        assert request.json()["id"] == str(event_id)
        assert request.signed_by(secret, time.time())
        await delivered(sessions, endpoint.id, attempts=1)

        # The list, then the endpoint's page: the delivery, never the secret again.
        await page.get_by_role("link", name="All endpoints").click()
        row = page.locator(f'#webhooks tr[data-webhook="{endpoint.id}"]')
        await expect(row).to_contain_text("call.ended")
        await expect(row.locator(".state")).to_contain_text("Enabled")
        await row.get_by_role("link", name=hooks.url).click()
        delivery = page.locator("#deliveries tbody tr").first
        await expect(delivery.locator(".delivery-state")).to_contain_text("Delivered")
        await expect(delivery.locator(".attempts")).to_have_text("1")
        await expect(delivery.locator(".status")).to_have_text("200")
        await expect(delivery).to_contain_text("call.ended")
        await expect(page.locator(".secret-once")).to_have_count(0)
        assert secret not in await page.content()
        await assert_accessible(page)
        await save_screenshot(page, "webhooks_delivered")

        filters = page.get_by_role("navigation", name="Deliveries shown")
        await filters.get_by_role("link", name="Dead").click()
        await expect(page.locator("#no-deliveries")).to_have_text("No delivery in this state.")
        await filters.get_by_role("link", name="Delivered").click()
        await expect(page.locator("#deliveries tbody tr")).to_have_count(1)

        # A dead delivery (as after a day of failures) is retried by hand, and delivered.
        found = await delivery_of(sessions, endpoint.id)
        async with sessions() as session, session.begin():
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == found.id)
                .values(state="dead", last_status=503, last_error="HTTP 503")
            )
        await filters.get_by_role("link", name="Dead").click()
        dead = page.locator(f'#deliveries tr[data-delivery="{found.id}"]')
        await expect(dead.locator(".delivery-state")).to_contain_text("Dead")
        await expect(dead.locator(".last-error")).to_have_text("HTTP 503")
        await expect(dead.locator(".status")).to_have_text("503")
        await assert_accessible(page)
        await dead.get_by_role("button", name="Retry").click()
        await expect(page.get_by_role("status")).to_contain_text("The delivery is tried again")
        assert "state=dead" in page.url
        received = await hooks.count(2)
        assert [r.json()["id"] for r in received] == [str(event_id)] * 2
        await delivered(sessions, endpoint.id, attempts=2)
        await filters.get_by_role("link", name="All").click()
        await expect(page.locator(".delivery-state").first).to_contain_text(
            "Delivered", timeout=SEEN_WITHIN_MS
        )
        await expect(page.locator(".attempts").first).to_have_text("2")


async def test_an_admin_changes_disables_rotates_and_deletes_an_endpoint(
    page: Page, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    made = await api_endpoint(client, world, f"http://{HOST}:9/hooks", ["call.ended"])
    await log_in(page, console, world.slug, world.admin.email, PASSWORD)
    await page.goto(f"{console}/webhooks")
    await page.get_by_role("link", name=made["url"]).click()
    await expect(page.get_by_role("heading", name="Change the endpoint")).to_be_visible()
    await assert_accessible(page)

    # Changed: events and description; a refused URL and no event at all say why.
    save = page.get_by_role("button", name="Save")
    await page.get_by_role("checkbox", name="call.ended").uncheck()
    await page.get_by_label("URL").fill(REFUSED)
    await save.click()
    await expect(page.locator("#events-error")).to_contain_text("Choose at least one event type")
    await page.get_by_role("checkbox", name="call.ringing").check()
    await page.get_by_role("checkbox", name="call.answered").check()
    await save.click()
    await expect(page.locator("#url-error")).to_contain_text("not a public address")
    await expect(page.locator("#endpoint-events")).to_have_text("call.ended")  # unchanged
    await assert_accessible(page)
    await page.get_by_label("URL").fill(made["url"])
    await page.get_by_label("Description").fill("Help desk")
    await save.click()
    await expect(page.get_by_role("status")).to_have_text("The endpoint is saved.")
    await expect(page.locator("#endpoint-events")).to_have_text("call.ringing, call.answered")
    await expect(page.locator("#endpoint-description")).to_have_text("Help desk")

    # Disabled, then enabled again.
    await page.get_by_role("button", name="Disable").click()
    await expect(page.get_by_role("status")).to_contain_text("The endpoint is disabled")
    await expect(page.locator("#endpoint-state")).to_contain_text("Disabled")
    await expect(page.locator("#endpoint-state")).to_contain_text("Disabled by an administrator.")
    await assert_accessible(page)
    await page.get_by_role("button", name="Enable").click()
    await expect(page.get_by_role("status")).to_contain_text("The endpoint is enabled")
    await expect(page.locator("#endpoint-state")).to_have_text("Enabled")

    # A new secret, shown once (asked first); asking for its page again shows it no more.
    accept(page)
    await page.get_by_role("button", name="Rotate the secret").click()
    await expect(page.locator(".secret-once")).to_contain_text("it will not be shown again")
    secret = await page.get_by_label("Secret", exact=True).input_value()
    assert secret.startswith("whsec_") and secret != made["secret"]
    assert (await endpoint_of(sessions, world.tenant_id)).secret == secret
    await page.goto(page.url)  # the rotation's address, asked with GET
    await expect(page.get_by_role("heading", name="Change the endpoint")).to_be_visible()
    await expect(page.locator(".secret-once")).to_have_count(0)
    assert page.url.endswith(f"/webhooks/{made['id']}")

    # Deleted (asked first).
    accept(page)
    await page.get_by_role("button", name="Delete").click()
    await expect(page.get_by_role("status")).to_contain_text("The endpoint is deleted")
    await expect(page.locator("#no-webhooks")).to_be_visible()
    gone = await client.get(f"/api/v1/webhooks/{made['id']}", headers=world.admin.headers)
    assert gone.status_code == 404


async def test_a_supervisor_reads_without_a_form_others_are_refused_an_operator_acts(
    page: Page,
    browser: Browser,
    console: str,
    client: httpx.AsyncClient,
    sessions: Sessions,
) -> None:
    world = await make_world(client, sessions)
    async with receiver(HOST) as hooks:
        made = await api_endpoint(client, world, hooks.url, ["agent.state_changed"])
        await write_event(sessions, world.tenant_id, "agent.state_changed")
        await hooks.count(1)
        await delivered(sessions, made["id"], attempts=1)

    await log_in(page, console, world.slug, world.supervisor.email, PASSWORD)
    await page.get_by_role("link", name="Webhooks").click()
    await expect(page.locator(f'#webhooks tr[data-webhook="{made["id"]}"]')).to_contain_text(
        "agent.state_changed"
    )
    await expect(page.locator("main form")).to_have_count(0)
    await assert_accessible(page)
    await page.get_by_role("link", name=made["url"]).click()
    await expect(page.locator("#deliveries .delivery-state")).to_contain_text("Delivered")
    await expect(page.locator("main form")).to_have_count(0)
    await expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    await assert_accessible(page)
    await save_screenshot(page, "webhooks_supervisor")
    # Writing is an admin's: a supervisor's POST is refused whatever the page shows.
    token = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    refused = await page.request.post(
        f"{console}/webhooks/{made['id']}/delete", form={"csrf_token": token or ""}
    )
    assert refused.status == 403 and "a supervisor may not do this" in await refused.text()

    agent_context = await browser.new_context(locale="en-GB")
    try:
        agent = await agent_context.new_page()
        await log_in(agent, console, world.slug, world.agent.email, PASSWORD)
        await expect(agent.get_by_role("link", name="Webhooks")).to_have_count(0)
        await assert_forbidden(agent, f"{console}/webhooks")
    finally:
        await agent_context.close()

    # Another tenant's admin finds no such endpoint.
    other = await make_world(client, sessions)
    other_context = await browser.new_context(locale="en-GB")
    try:
        stranger = await other_context.new_page()
        await log_in(stranger, console, other.slug, other.admin.email, PASSWORD)
        answer = await stranger.goto(f"{console}/webhooks/{made['id']}")
        assert answer is not None and answer.status == 404
        await stranger.goto(f"{console}/webhooks")
        await expect(stranger.locator("#no-webhooks")).to_be_visible()
    finally:
        await other_context.close()

    operator_context = await browser.new_context(locale="en-GB")
    try:
        operator = await operator_context.new_page()
        await log_in(operator, console, None, world.operator.email, PASSWORD)
        await operator.goto(f"{console}/webhooks?tenant={world.tenant_id}")
        await expect(operator.get_by_role("heading", name="Add an endpoint")).to_be_visible()
        await operator.get_by_role("link", name=made["url"]).click()
        await operator.get_by_role("button", name="Disable").click()
        await expect(operator.get_by_role("status")).to_contain_text("The endpoint is disabled")
        assert f"tenant={world.tenant_id}" in operator.url
    finally:
        await operator_context.close()


async def test_the_french_page(
    browser: Browser, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    async with receiver(HOST) as hooks:
        made = await api_endpoint(client, world, hooks.url, ["call.ended"])
        await write_event(sessions, world.tenant_id, "call.ended")
        await delivered(sessions, made["id"], attempts=1)

    french = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    try:
        page = await french.new_page()
        await log_in(page, console, world.slug, world.admin.email, PASSWORD, language="fr")
        await page.get_by_role("link", name="Webhooks").click()
        await expect(page.locator("html")).to_have_attribute("lang", "fr")
        await expect(page.get_by_role("heading", name="Points de terminaison")).to_be_visible()
        await expect(page.locator("#webhooks .state")).to_contain_text("Actif")
        await page.get_by_label("URL").fill(REFUSED)
        await page.get_by_role("checkbox", name="call.ringing").check()
        await page.get_by_role("button", name="Ajouter le point de terminaison").click()
        await expect(page.locator("#url-error")).to_contain_text(
            "Cette URL est refusée : 10.0.0.7 est 10.0.0.7 : ce n'est pas une adresse publique"
        )
        await assert_accessible(page)
        await save_screenshot(page, "webhooks_fr")
        await page.get_by_role("link", name=made["url"]).click()
        await expect(page.get_by_role("heading", name="Livraisons")).to_be_visible()
        await expect(page.locator("#deliveries .delivery-state")).to_contain_text("Livrée")
        await expect(page.get_by_role("button", name="Renouveler le secret")).to_be_visible()
        await assert_accessible(page)
    finally:
        await french.close()
