"""The Forwarding page in the browser: an agent finds it in the navigation, forwards busy calls
to a colleague's extension and unanswered ones to an external number, a refused value is shown
beside its field with every choice kept, the saved rules are what the API reads; another
user's page is refused to the agent, an admin opens it by choosing the user; the French page;
axe."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.e2e.web.agent_console import assert_forbidden, give_device
from tests.e2e.web.browser import SEEN_WITHIN_MS, assert_accessible, log_in, save_screenshot
from tests.factories import PASSWORD, TenantWorld, make_world

Sessions = async_sessionmaker[AsyncSession]


async def voicemail_box(client: httpx.AsyncClient, world: TenantWorld) -> int:
    made = await client.post(
        "/api/v1/voicemail-boxes",
        headers=world.admin.headers,
        json={"number": "800", "name": "Sales box", "pin": "4711"},
    )
    assert made.status_code == 201, made.text
    box_id: int = made.json()["id"]
    return box_id


async def external_number(client: httpx.AsyncClient, world: TenantWorld) -> int:
    made = await client.post(
        "/api/v1/external-numbers",
        headers=world.admin.headers,
        json={"name": "Night duty", "number": "+33612345678"},
    )
    assert made.status_code == 201, made.text
    number_id: int = made.json()["id"]
    return number_id


async def test_an_agent_forwards_their_calls_and_an_admin_opens_anyones_rules(
    page: Page, browser: Browser, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    await give_device(client, world, world.agent.user_id, "201")
    colleague = await give_device(client, world, world.supervisor.user_id, "202")
    box = await voicemail_box(client, world)
    mobile = await external_number(client, world)

    await log_in(page, console, world.slug, world.agent.email, PASSWORD)
    await page.get_by_role("link", name="Forwarding").click()
    await expect(page).to_have_url(f"{console}/forwarding")
    await expect(page.get_by_role("heading", name="Forwarding", exact=True)).to_be_visible()
    await expect(page.locator("#now-busy")).to_have_text("Off")
    # Do not disturb sends calls to a voicemail box, or to nobody: no other choice.
    dnd_to = page.get_by_label("During do not disturb, calls go to")
    await expect(dnd_to.locator("option")).to_have_text(
        ["Nobody: callers hear busy", "800 · Sales box"]
    )
    await assert_accessible(page)

    busy = page.get_by_label("When busy")
    no_answer = page.get_by_label("When not answered")
    seconds = page.get_by_label("Seconds before no answer")
    await busy.select_option(label="202 · Supervisor")
    await no_answer.select_option(label="Night duty · +33612345678")
    await seconds.fill("200")
    await page.get_by_role("checkbox", name="Do not disturb: the phones never ring").check()
    await dnd_to.select_option(label="800 · Sales box")
    await page.get_by_role("button", name="Save the rules").click()

    # Refused beside its field; every choice stays as it was made.
    await expect(page.locator("#no_answer_seconds-error")).to_have_text(
        "A whole number of seconds, from 5 to 120.", timeout=SEEN_WITHIN_MS
    )
    await expect(seconds).to_have_value("200")
    await expect(seconds).to_have_attribute("aria-invalid", "true")
    await expect(busy).to_have_value(f"extension:{colleague}")
    await expect(no_answer).to_have_value(f"external:{mobile}")
    await expect(dnd_to).to_have_value(f"voicemail:{box}")
    await expect(page.locator("#now-busy")).to_have_text("Off")
    await assert_accessible(page)
    await save_screenshot(page, "forwarding_refused")

    await seconds.fill("15")
    await page.get_by_role("button", name="Save the rules").click()
    await expect(page.get_by_role("status")).to_have_text(
        "The forwarding rules are saved: they apply from the next call."
    )
    await expect(page.locator("#now-busy")).to_have_text("202 · Supervisor")
    await expect(page.locator("#now-no_answer")).to_contain_text("Night duty · +33612345678")
    await expect(page.locator("#now-do_not_disturb")).to_have_text("On: 800 · Sales box")
    await expect(busy).to_have_value(f"extension:{colleague}")
    await save_screenshot(page, "forwarding_saved")
    read = await client.get(
        f"/api/v1/users/{world.agent.user_id}/forwarding", headers=world.agent.headers
    )
    assert read.status_code == 200, read.text
    assert read.json() == {
        "user_id": world.agent.user_id,
        "version": 1,
        "do_not_disturb": True,
        "do_not_disturb_to": {"type": "voicemail", "id": box},
        "unconditional": None,
        "busy": {"type": "extension", "id": colleague},
        "no_answer": {"type": "external", "id": mobile},
        "no_answer_seconds": 15,
        "unreachable": None,
    }

    # Another user's rules are an admin's only.
    await assert_forbidden(page, f"{console}/forwarding/{world.admin.user_id}")

    admin = await browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    try:
        admin_page = await admin.new_page()
        await log_in(admin_page, console, world.slug, world.admin.email, PASSWORD)
        await admin_page.get_by_role("link", name="Forwarding").click()
        await admin_page.get_by_label("Whose rules").select_option(
            label=f"Agent · {world.agent.email}"
        )
        await admin_page.get_by_role("button", name="Show").click()
        await expect(admin_page).to_have_url(f"{console}/forwarding/{world.agent.user_id}")
        await expect(admin_page.get_by_role("heading", name="Forwarding of Agent")).to_be_visible()
        await expect(admin_page.locator("#now-busy")).to_have_text("202 · Supervisor")
        await admin_page.get_by_label("When busy").select_option(label="Off")
        await admin_page.get_by_role("button", name="Save the rules").click()
        await expect(admin_page.get_by_role("status")).to_be_visible()
        await expect(admin_page.locator("#now-busy")).to_have_text("Off")
        await assert_accessible(admin_page)
    finally:
        await admin.close()
    again = await client.get(
        f"/api/v1/users/{world.agent.user_id}/forwarding", headers=world.agent.headers
    )
    assert again.json()["busy"] is None and again.json()["version"] == 2

    french = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    try:
        page_fr = await french.new_page()
        await log_in(page_fr, console, world.slug, world.agent.email, PASSWORD, language="fr")
        await page_fr.get_by_role("link", name="Renvoi d'appels").click()
        await expect(page_fr.locator("html")).to_have_attribute("lang", "fr")
        await expect(page_fr.get_by_role("heading", name="Renvoi d'appels")).to_be_visible()
        await expect(page_fr.locator("#now-do_not_disturb")).to_have_text(
            "Activé : 800 · Sales box"
        )
        await expect(page_fr.get_by_label("Sur non-réponse")).to_have_value(f"external:{mobile}")
        await expect(page_fr.get_by_role("button", name="Enregistrer les règles")).to_be_visible()
        await assert_accessible(page_fr)
        await save_screenshot(page_fr, "forwarding_fr")
    finally:
        await french.close()
