"""An agent records its call on demand from My day in the browser, pauses it and is told so;
the real Asterisk records and stops (what the API then reads), every change audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, expect
from sqlalchemy import select

from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.audit.models import AuditEntry
from tests.conftest import RunningApp
from tests.e2e.phones import speaking_caller
from tests.e2e.sipp import SippPool
from tests.e2e.test_calls import CARRIER_IP, Sessions
from tests.e2e.test_recording_control import URL, on_demand
from tests.e2e.test_recordings import recorded_queue
from tests.e2e.web.browser import assert_accessible, log_in, save_screenshot
from tests.factories import PASSWORD, make_world
from tests.waiting import until


async def test_an_agent_records_and_pauses_its_call_from_my_day(
    page: Page,
    console: str,
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    world = await make_world(client, sessions)
    queue, number = await recorded_queue(
        pbx, client, sessions, applier, sipp, world, "236", phone_scenario="uas_answer.xml"
    )
    await on_demand(client, world, queue["id"])
    await applier.settled()
    await log_in(page, console, world.slug, world.agent.email, PASSWORD)
    await expect(page).to_have_url(f"{console}/my-day")
    await expect(page.locator("#my-call")).to_have_count(0)  # no call, no section

    caller = await speaking_caller(sipp, tmp_path, number["e164"], carrier_ip=CARRIER_IP).start()
    found: list[dict[str, Any]] = []

    async def recordable() -> bool:
        response = await client.get(URL, headers=world.agent.headers)
        if response.status_code == 200 and response.json()["recordable"]:
            found.append(response.json())
            return True
        return False

    await until(recordable, "the agent's answered call, ready to be recorded")
    await page.goto(f"{console}/my-day")
    await expect(page.locator("#call-recording")).to_have_text("This call is not being recorded.")
    await assert_accessible(page)

    await page.get_by_role("button", name="Record this call").click()
    await expect(page.get_by_role("status")).to_have_text("Your call is being recorded.")
    await expect(page.locator("#call-recording")).to_have_text("This call is being recorded.")
    assert (await client.get(URL, headers=world.agent.headers)).json()["recording"] is True
    await save_screenshot(page, "my_day_call_recording")

    await page.get_by_role("button", name="Pause the recording").click()
    await expect(page.get_by_role("status")).to_contain_text("recording is paused")
    await expect(page.locator("#call-recording")).to_have_text("This call is not being recorded.")
    assert (await client.get(URL, headers=world.agent.headers)).json()["recording"] is False

    # The call ends meanwhile: the page's button is refused, said plainly.
    await pbx.runtime.ami.action("Hangup", {"Channel": found[-1]["channel"]})
    ended = await caller.wait()
    assert ended.ok, ended.describe()
    await page.get_by_role("button", name="Record this call").click()
    await expect(page.locator("#recording-refused")).to_have_text("You are not on a call any more.")
    await expect(page.locator("#my-call")).to_have_count(0)

    async with sessions() as session:
        actions = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(
                    AuditEntry.tenant_id == world.tenant_id,
                    AuditEntry.object_type == "call",
                    AuditEntry.object_id == found[-1]["call"],
                )
                .order_by(AuditEntry.id)
            )
        )
    assert actions == ["recording-start", "recording-pause"]
