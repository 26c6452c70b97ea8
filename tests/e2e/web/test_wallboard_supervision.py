"""Live supervision from the wallboard, in the browser: an agent on a real queue call gets
Listen, Whisper and Barge buttons (in the viewer's language); Listen calls the supervisor's
sipp phone, which once answered spies on the agent's channel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Page, expect

from graam_pbx.asterisk.applier import ConfigApplier
from tests.conftest import Asterisk, RunningApp
from tests.e2e.agent_tenant import one_agent_queue, retire
from tests.e2e.sipp import SippPool
from tests.e2e.test_agent_login import Sessions, carrier_caller, register, session_url
from tests.e2e.test_calls import new_device, registered_phone
from tests.e2e.test_supervision import hang_up
from tests.e2e.web.browser import SEEN_WITHIN_MS, assert_accessible, log_in, save_screenshot
from tests.factories import PASSWORD
from tests.waiting import until


async def member_in_asterisk(pbx: RunningApp, queue: str, sip_username: str) -> None:
    """Wait until Asterisk has the agent's phone in ``queue``, not paused."""

    async def member() -> bool:
        events = await pbx.runtime.ami.action_list("QueueStatus", {"Queue": queue})
        return any(
            event.name == "QueueMember"
            and (event.get("Location") or event.get("Interface", "")) == f"PJSIP/{sip_username}"
            and event.get("Paused") == "0"
            for event in events
        )

    await until(member, f"PJSIP/{sip_username} a member of {queue}")


async def spying(pbx: RunningApp, supervisor_device: str, agent_device: str) -> bool:
    """Whether the supervisor's device has a channel running ChanSpy on the agent's channel
    (named by its uniqueid)."""
    events = await pbx.runtime.ami.action_list("CoreShowChannels", {})
    agents = {
        event.get("Uniqueid", "")
        for event in events
        if event.get("Channel", "").startswith(f"PJSIP/{agent_device}-")
    }
    return any(
        event.get("Channel", "").startswith(f"PJSIP/{supervisor_device}-")
        and event.get("Application") == "ChanSpy"
        and event.get("ApplicationData", "").split(",")[0] in agents
        for event in events
    )


def row_of(page: Page, agent_id: int) -> Any:
    return page.locator(f'#wallboard-agents tr[data-agent="{agent_id}"]')


async def test_listen_from_the_wallboard_calls_the_supervisors_phone_onto_the_agents_call(
    page: Page,
    browser: Browser,
    console: str,
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    world, agent, did = await one_agent_queue(pbx, client, sessions, applier, wrapup_seconds=0)
    supervisors = await new_device(client, world, "301", world.supervisor.user_id)
    await applier.settled()
    supervisor_phone = await registered_phone(pbx, sipp, supervisors)
    agent_phone = await register(tmp_path, asterisk, sipp, [agent], "uas_answer.xml")
    logged_in = await client.post(session_url(agent.user_id), headers=world.supervisor.headers)
    assert logged_in.status_code == 201, logged_in.text
    (queue,) = (await client.get("/api/v1/queues", headers=world.admin.headers)).json()["items"]
    await member_in_asterisk(pbx, f"t{world.tenant_id}-q{queue['id']}", agent.sip_username)

    await log_in(page, console, world.slug, world.supervisor.email, PASSWORD)
    await page.goto(f"{console}/wallboard")
    await expect(page.locator("#wallboard-status")).to_have_text("Live", timeout=SEEN_WITHIN_MS)
    row = row_of(page, agent.user_id)
    await expect(row.locator('[data-field="state"]')).to_have_text("Available")
    await expect(row.locator('[data-field="supervise"] button')).to_have_count(0)

    caller = await carrier_caller(sipp, did, timeout=120).start()
    try:
        # Drawn by the page's script as the board changes.
        await expect(row.locator('[data-field="state"]')).to_have_text(
            "On a call", timeout=SEEN_WITHIN_MS
        )
        buttons = row.locator('[data-field="supervise"] button')
        await expect(buttons).to_have_text(
            [f"{mode} (Agent 0)" for mode in ("Listen", "Whisper", "Barge")]
        )
        await assert_accessible(page)

        # The same row in French, as the server renders it first.
        french = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
        try:
            other = await french.new_page()
            await log_in(
                other, console, world.slug, world.supervisor.email, PASSWORD, language="fr"
            )
            await other.goto(f"{console}/wallboard")
            await expect(
                row_of(other, agent.user_id).locator('[data-field="supervise"] button')
            ).to_have_text([f"{mode} (Agent 0)" for mode in ("Écouter", "Chuchoter", "Intervenir")])
            await expect(other.locator("#wallboard-agents thead")).to_contain_text("Superviser")
        finally:
            await french.close()

        await buttons.filter(has_text="Listen").click()
        await expect(page.locator("#wallboard-done")).to_have_text(
            "Your phone rings: answer it to listen to the call, unheard.",
            timeout=SEEN_WITHIN_MS,
        )
        # The supervisor's phone answered: its channel runs ChanSpy on the agent's channel.
        await until(
            lambda: spying(pbx, supervisors["sip_username"], agent.sip_username),
            "the supervisor's call spying on the agent's",
        )
        await assert_accessible(page)
        await save_screenshot(page, "wallboard-supervision")

        entries = (
            await client.get(
                "/api/v1/audit", headers=world.admin.headers, params={"object_type": "agent"}
            )
        ).json()["items"]
        (entry,) = [e for e in entries if e["action"] == "supervise"]
        assert (entry["actor_user_id"], entry["object_id"], entry["changes"]["mode"]) == (
            world.supervisor.user_id,
            str(agent.user_id),
            "listen",
        )
        assert entry["changes"]["device_id"] == supervisors["id"]
    finally:
        await hang_up(pbx, f"PJSIP/{agent.sip_username}-")
    for phone in (caller, agent_phone, supervisor_phone):
        ended = await phone.wait()
        assert ended.ok, ended.describe()
    # Off the call, the buttons are gone; a button pressed late says why nothing happened.
    await expect(row.locator('[data-field="supervise"] button')).to_have_count(
        0, timeout=SEEN_WITHIN_MS
    )
    await retire(pbx, applier, world.tenant_id)


async def test_a_late_press_says_the_agent_is_not_on_a_call_any_more(
    page: Page,
    console: str,
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
) -> None:
    world, agent, _did = await one_agent_queue(pbx, client, sessions, applier, wrapup_seconds=0)
    await new_device(client, world, "301", world.supervisor.user_id)
    await log_in(page, console, world.slug, world.supervisor.email, PASSWORD)
    await page.goto(f"{console}/wallboard")
    # The form a row had while its agent was on a call, submitted once the call is over.
    csrf = await page.locator("#wallboard-supervise").evaluate(
        "t => t.content.querySelector('input[name=csrf_token]').value"
    )
    await page.evaluate(
        """([action, csrf]) => {
            const form = document.createElement("form");
            form.method = "post";
            form.action = action;
            for (const [name, value] of [["csrf_token", csrf], ["mode", "barge"]]) {
                const input = document.createElement("input");
                input.type = "hidden";
                input.name = name;
                input.value = value;
                form.append(input);
            }
            document.body.append(form);
            form.submit();
        }""",
        [f"/wallboard/agents/{agent.user_id}/supervise", csrf],
    )
    await expect(page.locator("#wallboard-refused")).to_have_text(
        "This agent is not on a call any more.", timeout=SEEN_WITHIN_MS
    )
    await assert_accessible(page)
    await retire(pbx, applier, world.tenant_id)
