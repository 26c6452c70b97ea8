"""The console's phone in Debian's chromium, with a WAV file as its microphone: it registers
over Asterisk's SIP WebSocket, answers a queue call from a sipp carrier, audio flows both
ways (Asterisk's own RTP counters of the browser's channel), the agent hangs up from the
page, and the call's CDR names the agent and its browser device; hold, mute, a tone and a
blind transfer to a colleague's phone or to a queue; a preview call placed from the campaign
screen; and the phone goes off with its console session."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, expect
from sqlalchemy import text

from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.web import phone as phone_page
from tests.conftest import Asterisk, RunningApp
from tests.e2e.agent_tenant import retire
from tests.e2e.phones import speaking_caller
from tests.e2e.rtp_stats import channels, rtp_counts
from tests.e2e.sipp import Sipp, SippPool
from tests.e2e.test_agent_login import (
    CARRIER_IP,
    Phone,
    Sessions,
    configured,
    new_number_to_queue,
    new_tenant,
    queue_members,
    raw_connection,
    register,
    session_url,
)
from tests.e2e.test_dialer import (
    attempts_of,
    contact_number,
    dialer,
    dialer_tenant,
    invites_by_number,
    legal_hours,
    new_campaign,
)
from tests.e2e.web.browser import SEEN_WITHIN_MS, assert_accessible, log_in
from tests.factories import PASSWORD, TenantWorld, browser_device
from tests.waiting import until

EXTENSION = "7001"


@dataclass
class Scene:
    world: TenantWorld
    device: dict[str, Any]  # the agent's browser device, as the API made it
    queue_id: int
    did: str
    colleagues: list[Phone]


async def browser_member(
    pbx: RunningApp, client: httpx.AsyncClient, world: TenantWorld, queue_id: int
) -> dict[str, Any]:
    """The tenant's agent (the one who logs in to the console) made a member of ``queue_id``,
    and its browser device."""
    conn = await raw_connection(pbx)
    try:
        await conn.execute(
            "INSERT INTO queue_members (tenant_id, queue_id, user_id, penalty) "
            "VALUES ($1, $2, $3, 0)",
            world.tenant_id,
            queue_id,
            world.agent.user_id,
        )
    finally:
        await conn.close()
    return await browser_device(client, world, EXTENSION)


async def browser_agent(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    colleagues: int = 0,
) -> Scene:
    """A tenant whose agent (the one who logs in to the console) has a browser device and is
    a member of a queue, and the number whose IVR sends 1 there; ``colleagues`` more agents
    with SIP phones (extensions 2000, 2001, …), not logged in."""
    world, made = await new_tenant(pbx, client, sessions, licences=2, agents=colleagues)
    device = await browser_member(pbx, client, world, made.queue_id)
    did = await new_number_to_queue(client, world, made.queue_id)
    await configured(applier, {world.tenant_id})
    return Scene(world, device, made.queue_id, did, made.agents)


async def browser_rtp(pbx: RunningApp, sip_username: str) -> tuple[int, int]:
    """(packets received, packets sent) by Asterisk on the browser's channel; (0, 0) when
    it has none."""
    names = [
        name
        for name in await channels(pbx.runtime.ami)
        if name.startswith(f"PJSIP/{sip_username}-")
    ]
    return await rtp_counts(pbx.runtime.ami, names[0]) if names else (0, 0)


async def audio_both_ways(pbx: RunningApp, sip_username: str, packets: int = 100) -> None:
    try:
        async with asyncio.timeout(20):
            while True:
                received, sent = await browser_rtp(pbx, sip_username)
                if received >= packets and sent >= packets:
                    return
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(
            f"no audio both ways within 20 s: received {received}, sent {sent}"
        ) from None


async def phone_in_queue(
    context: BrowserContext,
    console: str,
    pbx: RunningApp,
    client: httpx.AsyncClient,
    scene: Scene,
) -> Page:
    """The agent's Phone page, registered, and the agent logged in to the queue with it (a
    member in Asterisk)."""
    world, device = scene.world, scene.device
    page = await context.new_page()
    await log_in(page, console, world.slug, world.agent.email, PASSWORD)
    await page.goto(f"{console}/phone")
    status = page.locator("#phone-status")
    await expect(status).to_have_attribute("data-state", "registered", timeout=SEEN_WITHIN_MS)
    login = await client.post(
        session_url(world.agent.user_id),
        headers=world.supervisor.headers,
        json={"device_id": device["id"]},
    )
    assert login.status_code == 201, login.text
    queue, member = f"t{world.tenant_id}-q{scene.queue_id}", f"PJSIP/{device['sip_username']}"
    async with asyncio.timeout(20):
        while (queue, member) not in await queue_members(pbx, [queue]):
            await asyncio.sleep(0.05)
    return page


async def test_the_agent_answers_a_queue_call_in_the_browser_and_hangs_up(
    phone_context: BrowserContext,
    console: str,
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    scene = await browser_agent(pbx, client, sessions, applier)
    world, device = scene.world, scene.device
    name = str(device["sip_username"])
    page = await phone_in_queue(phone_context, console, pbx, client, scene)

    caller = await speaking_caller(sipp, tmp_path, scene.did, carrier_ip=CARRIER_IP).start()
    try:
        await expect(page.locator("#phone-call")).to_contain_text(
            "Incoming call", timeout=SEEN_WITHIN_MS
        )
        await page.locator("#phone-answer").click()
        await expect(page.locator("#phone-call")).to_contain_text(
            "On a call", timeout=SEEN_WITHIN_MS
        )
        await audio_both_ways(pbx, name)
        await page.locator("#phone-hangup").click()
        await expect(page.locator("#phone-call")).to_have_text("Call ended")
        ended = await caller.wait()
        assert ended.ok, ended.describe()
    finally:
        if caller.running:
            await caller.stop()
    await expect(page.locator("#phone-log tbody tr")).to_have_count(1)

    async with asyncio.timeout(20):
        while True:
            async with sessions() as session:
                row = (
                    await session.execute(
                        text(
                            "SELECT agent_user_id, device, dstchannel FROM cdrs "
                            "WHERE tenant_id = :t AND agent_user_id IS NOT NULL"
                        ),
                        {"t": world.tenant_id},
                    )
                ).first()
            if row is not None:
                break
            await asyncio.sleep(0.1)
    assert row.agent_user_id == world.agent.user_id
    assert row.dstchannel.startswith(f"PJSIP/{name}-"), row
    await page.close()
    await retire(pbx, applier, world.tenant_id)


async def session_end(sessions: Sessions, user_id: int) -> str:
    """Why the agent's last queue session ended, once it has (waited for)."""
    async with asyncio.timeout(20):
        while True:
            async with sessions() as session:
                row = (
                    await session.execute(
                        text(
                            "SELECT ended_at, end_reason FROM agent_sessions "
                            "WHERE user_id = :u ORDER BY id DESC LIMIT 1"
                        ),
                        {"u": user_id},
                    )
                ).first()
            if row is not None and row.ended_at is not None:
                return str(row.end_reason)
            await asyncio.sleep(0.1)


async def test_the_phone_stops_with_its_console_session_and_the_queue_session_with_it(
    phone_context: BrowserContext,
    console: str,
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(phone_page, "SESSION_CHECK_SECONDS", 1)
    scene = await browser_agent(pbx, client, sessions, applier)
    world, device = scene.world, scene.device
    page: Page = await phone_context.new_page()
    await log_in(page, console, world.slug, world.agent.email, PASSWORD)
    await page.goto(f"{console}/phone")
    status = page.locator("#phone-status")
    await expect(status).to_have_attribute("data-state", "registered", timeout=SEEN_WITHIN_MS)
    await assert_accessible(page)
    login = await client.post(
        session_url(world.agent.user_id),
        headers=world.supervisor.headers,
        json={"device_id": device["id"]},
    )
    assert login.status_code == 201, login.text

    # The agent logs out of the console in another tab: the phone goes off by itself.
    other = await phone_context.new_page()
    await other.goto(f"{console}/my-day")
    await other.get_by_role("button", name="Log out", exact=True).click()
    await expect(other).to_have_url(f"{console}/login")
    await expect(status).to_have_attribute("data-state", "signed-out", timeout=SEEN_WITHIN_MS)
    assert await session_end(sessions, world.agent.user_id) == "unregistered"
    async with sessions() as session:
        contacts = await session.scalar(
            text("SELECT count(*) FROM ps_contacts WHERE endpoint = :name"),
            {"name": device["sip_username"]},
        )
    assert contacts == 0
    await page.close()
    await other.close()
    await retire(pbx, applier, world.tenant_id)


async def answered_on_the_page(page: Page, sipp: SippPool, workdir: Path, did: str) -> Sipp:
    """A speaking caller to ``did``'s queue, answered on the page (the pool stops it if the
    test fails)."""
    caller = await speaking_caller(sipp, workdir, did, carrier_ip=CARRIER_IP).start()
    call = page.locator("#phone-call")
    await expect(call).to_contain_text("Incoming call", timeout=SEEN_WITHIN_MS)
    await page.locator("#phone-answer").click()
    await expect(call).to_contain_text("On a call", timeout=SEEN_WITHIN_MS)
    return caller


async def test_the_agent_holds_mutes_and_transfers_a_call_to_a_colleague_from_the_page(
    phone_context: BrowserContext,
    console: str,
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    scene = await browser_agent(pbx, client, sessions, applier, colleagues=1)
    (colleague,) = scene.colleagues
    page = await phone_in_queue(phone_context, console, pbx, client, scene)
    call = page.locator("#phone-call")
    caller = await answered_on_the_page(page, sipp, tmp_path, scene.did)
    try:
        hold = page.locator("#phone-hold")
        await hold.click()
        await expect(hold).to_have_attribute("aria-pressed", "true", timeout=SEEN_WITHIN_MS)
        await expect(call).to_contain_text("On hold")
        await hold.click()
        await expect(hold).to_have_attribute("aria-pressed", "false", timeout=SEEN_WITHIN_MS)
        await expect(call).to_contain_text("On a call")
        mute = page.locator("#phone-mute")
        await mute.click()
        await expect(mute).to_have_attribute("aria-pressed", "true")
        await page.locator('#phone-keypad [data-tone="5"]').click()

        # Blind transfer to the colleague's extension: the colleague's phone gets the caller
        # (answers, then hangs up), and the page's call ends.
        phone = await register(tmp_path, asterisk, sipp, [colleague], "uas_answer_hangup.xml")
        await page.locator("#phone-transfer-to").fill("2000")
        await page.get_by_role("button", name="Transfer", exact=True).click()
        await expect(call).to_have_text("Call ended", timeout=SEEN_WITHIN_MS)
        answered = await phone.wait()
        assert answered.ok, answered.describe()
        ended = await caller.wait()
        assert ended.ok, ended.describe()
    finally:
        if caller.running:
            await caller.stop()
    await page.close()
    await retire(pbx, applier, scene.world.tenant_id)


async def test_the_agent_transfers_a_call_to_a_queue_from_the_page(
    phone_context: BrowserContext,
    console: str,
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    scene = await browser_agent(pbx, client, sessions, applier, colleagues=1)
    world, (colleague,) = scene.world, scene.colleagues
    page = await phone_in_queue(phone_context, console, pbx, client, scene)
    call = page.locator("#phone-call")
    caller = await answered_on_the_page(page, sipp, tmp_path, scene.did)
    try:
        # The queue's other agent takes over: the browser's agent leaves the queue (its call
        # goes on), the colleague logs in with its SIP phone.
        supervisor = world.supervisor.headers
        out = await client.delete(session_url(world.agent.user_id), headers=supervisor)
        assert out.status_code == 204, out.text
        phone = await register(tmp_path, asterisk, sipp, [colleague], "uas_answer_hangup.xml")
        joined = await client.post(session_url(colleague.user_id), headers=supervisor)
        assert joined.status_code == 201, joined.text
        queue = f"t{world.tenant_id}-q{scene.queue_id}"
        async with asyncio.timeout(20):
            while (queue, f"PJSIP/{colleague.sip_username}") not in await queue_members(
                pbx, [queue]
            ):
                await asyncio.sleep(0.05)

        # The queue is offered by its name; its value is what the dialplan knows it by.
        option = page.locator(f'#phone-queues option[value="queue-{scene.queue_id}"]')
        await expect(option).to_have_text("support")
        await page.locator("#phone-transfer-to").fill(f"queue-{scene.queue_id}")
        await page.get_by_role("button", name="Transfer", exact=True).click()
        await expect(call).to_have_text("Call ended", timeout=SEEN_WITHIN_MS)
        answered = await phone.wait()
        assert answered.ok, answered.describe()
        ended = await caller.wait()
        assert ended.ok, ended.describe()
    finally:
        if caller.running:
            await caller.stop()
    await page.close()
    await retire(pbx, applier, world.tenant_id)


async def test_a_preview_call_from_the_campaign_screen_rings_the_browser_then_the_contact(
    phone_context: BrowserContext,
    console: str,
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
    tmp_path: Path,
) -> None:
    dialing = await dialer_tenant(pbx, client, sessions, applier, sipp, tmp_path)
    world = dialing.world
    # The agent who logs in to the console, with its browser phone, in the campaign's queue.
    device = await browser_member(pbx, client, world, dialing.queue_id)
    await configured(applier, {world.tenant_id})
    agent = Phone(world.agent.user_id, device["id"], device["sip_username"], device["password"])
    setup = dataclasses.replace(dialing, agent=agent)
    scene = Scene(world, device, setup.queue_id, "", [])
    phone = await phone_in_queue(phone_context, console, pbx, client, scene)
    person = contact_number("person")
    campaign_id, _contacts = await new_campaign(sessions, setup, [person], mode="preview")

    # The agent's campaign screen, beside its phone: the next contact, then Dial.
    screen = await phone_context.new_page()
    with legal_hours(dialer(pbx)):
        await screen.goto(f"{console}/campaign-call")
        await screen.get_by_role("button", name=re.compile("^Next contact of")).click()
        await screen.get_by_role("button", name="Dial", exact=True).click()
        # A preview call rings the agent first, then the contact.
        call = phone.locator("#phone-call")
        await expect(call).to_contain_text("Incoming call", timeout=SEEN_WITHIN_MS)
        await phone.locator("#phone-answer").click()
        await expect(call).to_contain_text("On a call", timeout=SEEN_WITHIN_MS)

        # Then the contact: the carrier's leg answered (the attempt's facts come at its end).
        async def contact_answered() -> bool:
            events = await pbx.runtime.ami.action_list("CoreShowChannels", {})
            return any(
                event.name == "CoreShowChannel"
                and event.get("Channel", "").startswith("PJSIP/trunk-")
                and event.get("ChannelStateDesc") == "Up"
                for event in events
            )

        await until(contact_answered, "the contact's leg answered", timeout=30)
        await phone.locator("#phone-hangup").click()
        await expect(call).to_have_text("Call ended")

        async def ended() -> bool:
            return all(a.ended_at is not None for a in await attempts_of(sessions, campaign_id))

        await until(ended, "the preview call's end", timeout=30)
    (attempt,) = await attempts_of(sessions, campaign_id)
    assert (attempt.outcome, attempt.mode) == ("answered", "preview"), attempt.__dict__
    assert attempt.agent_user_id == world.agent.user_id
    assert attempt.connected_at is not None and attempt.talk_seconds is not None
    far_end = await setup.carrier.stop()
    assert invites_by_number(far_end) == {person: 1}, far_end.describe()
    await phone.close()
    await screen.close()
    await retire(pbx, applier, world.tenant_id)
