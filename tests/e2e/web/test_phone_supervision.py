"""A supervisor supervises from the browser, against the real Asterisk: the Phone page in
chromium (a WAV file as its microphone) is the supervisor's browser phone, a carrier's caller
talks with an agent's sipp phone through a queue, and Listen on the wallboard (in another tab)
rings the page. The page shows the call as a supervision of that agent, the supervisor answers
it there, and the browser receives the call's audio: its RTP statistics grow
(``RTCPeerConnection.getStats``) and what it plays holds the caller's and the agent's tones
(the test's own media, ``rtp_peer.py``), while the caller never hears the supervisor's
microphone. The start is audited; a press while no Phone page is open is refused and audits
nothing. Whispering from the page, the agent hears the browser's microphone and the caller
does not. Without a browser phone, the page says so; the navigation offers Phone to
supervisors and admins, not to operators."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from playwright.async_api import Browser, BrowserContext, Page, expect

from graam_pbx.asterisk.applier import ConfigApplier
from tests.conftest import RunningApp
from tests.e2e.agent_tenant import retire
from tests.e2e.phones import PHONES_IP
from tests.e2e.rtp_peer import RtpPeer, rtp_peer
from tests.e2e.sipp import Sipp, SippPool
from tests.e2e.test_agent_login import Sessions, session_url
from tests.e2e.test_calls import CALLER, created, new_device, new_number, new_trunk, route_number
from tests.e2e.test_supervision import (
    AGENT_HZ,
    CALLER_HZ,
    HEARD,
    bridged,
    hang_up,
    heard,
    media_address,
    media_phone,
)
from tests.e2e.web.browser import SEEN_WITHIN_MS, assert_accessible, log_in, save_screenshot
from tests.e2e.web.test_wallboard_supervision import member_in_asterisk, row_of, spying
from tests.factories import PASSWORD, TenantWorld, browser_device, make_world, unique
from tests.waiting import until

CARRIER_IP = "127.0.0.171"  # this module's carrier; no other test's trunk uses it
MICROPHONE_HZ = 440  # the browsers' fake microphone (bench.webrtc.microphone)
# RTP packets (20 ms each) the browser must have received of the supervision call: 2 s.
PACKETS = 100
# How far above the spectrum's median a tone must stand, in the browser's own analysis of
# what it plays, to be heard there.
TONE_OVER_MEDIAN_DB = 30

# Every RTCPeerConnection the page makes, kept where the test can read its statistics (an
# init script: run before the page's own, and not subject to its Content-Security-Policy).
KEEP_PEERS = """
(() => {
  const Native = window.RTCPeerConnection;
  window.__peers = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      window.__peers.push(this);
    }
  };
})();
"""
# What the browser has received of audio over RTP, all its connections together.
INBOUND_AUDIO = """
async () => {
  const totals = { packets: 0, bytes: 0, energy: 0 };
  for (const peer of window.__peers) {
    const report = await peer.getStats();
    report.forEach((entry) => {
      if (entry.type !== "inbound-rtp" || entry.kind !== "audio") return;
      totals.packets += entry.packetsReceived || 0;
      totals.bytes += entry.bytesReceived || 0;
      totals.energy += entry.totalAudioEnergy || 0;
    });
  }
  return totals;
}
"""
# The page's remote audio (what its <audio> plays) into an analyser of the test's.
LISTEN_TO_THE_PAGE = """
async () => {
  const context = new AudioContext();
  await context.resume();
  const analyser = context.createAnalyser();
  analyser.fftSize = 8192;
  analyser.smoothingTimeConstant = 0;
  context.createMediaStreamSource(document.getElementById("phone-audio").srcObject).connect(analyser);
  window.__analyser = analyser;
}
"""
# How far each of ``hertz`` stands above the spectrum's median now, in dB.
TONES_OVER_MEDIAN = """
(hertz) => {
  const analyser = window.__analyser;
  const spectrum = new Float32Array(analyser.frequencyBinCount);
  analyser.getFloatFrequencyData(spectrum);
  const median = Array.from(spectrum).sort((a, b) => a - b)[spectrum.length >> 1];
  const width = analyser.context.sampleRate / analyser.fftSize;
  return hertz.map((hz) => {
    const bin = Math.round(hz / width);
    return Math.max(spectrum[bin - 1], spectrum[bin], spectrum[bin + 1]) - median;
  });
}
"""


@dataclass
class Scene:
    """A tenant's queue call answered by its agent's sipp phone, each side speaking its
    tone; the supervisor's browser device."""

    world: TenantWorld
    agent_device: dict[str, Any]
    supervisor_device: dict[str, Any]
    caller: RtpPeer
    agent: RtpPeer
    phones: list[Sipp]  # the caller's and the agent's


@contextlib.asynccontextmanager
async def answered_call(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> AsyncIterator[Scene]:
    """The caller in the queue talking with the agent (logged in, so on the wallboard), each
    hearing the other; at the end the agent's channel is hung up and both phones must have
    ended their call as written."""
    world = await make_world(client, sessions)
    agent_device = await new_device(client, world, "201", world.agent.user_id)
    supervisor_device = await browser_device(
        client, world, "301", "supervising", user_id=world.supervisor.user_id
    )
    queue = await created(
        await client.post("/api/v1/queues", headers=world.admin.headers, json={"name": unique("q")})
    )
    await created(
        await client.post(
            f"/api/v1/queues/{queue['id']}/members",
            headers=world.supervisor.headers,
            json={"user_id": world.agent.user_id},
        )
    )
    number = await new_number(client, world)
    await route_number(client, world, number, {"type": "queue", "id": queue["id"]})
    await new_trunk(client, world, CARRIER_IP)
    await applier.settled()
    async with (
        rtp_peer(CARRIER_IP, CALLER_HZ) as (caller, caller_port),
        rtp_peer(PHONES_IP, AGENT_HZ) as (agent, agent_port),
    ):
        agent_phone = await media_phone(pbx, sipp, agent_device, agent_port)
        logged_in = await client.post(
            session_url(world.agent.user_id), headers=world.supervisor.headers
        )
        assert logged_in.status_code == 201, logged_in.text
        await member_in_asterisk(
            pbx, f"t{world.tenant_id}-q{queue['id']}", agent_device["sip_username"]
        )
        keys = {"caller": CALLER, "rtp_ip": CARRIER_IP, "rtp_port": str(caller_port)}
        calling = sipp.uac(
            "carrier_queue_hold.xml", ip=CARRIER_IP, service=number["e164"], keys=keys, timeout=120
        )
        await calling.start()
        caller_channel, agent_channel = await bridged(pbx, agent_device)
        caller.speak_to(await media_address(pbx, caller_channel))
        agent.speak_to(await media_address(pbx, agent_channel))

        async def talking() -> bool:
            return agent.tones.count(CALLER_HZ) >= HEARD and caller.tones.count(AGENT_HZ) >= HEARD

        try:
            await until(talking, "caller and agent hearing each other")
        except AssertionError as err:
            raise AssertionError(f"{err}: caller {heard(caller)}, agent {heard(agent)}") from None
        scene = Scene(world, agent_device, supervisor_device, caller, agent, [calling, agent_phone])
        try:
            yield scene
        finally:
            await hang_up(pbx, f"PJSIP/{agent_device['sip_username']}-")
        for phone in scene.phones:
            ended = await phone.wait()
            assert ended.ok, ended.describe()


async def supervisions(client: httpx.AsyncClient, world: TenantWorld) -> list[dict[str, Any]]:
    """The tenant's audit entries of supervision starts."""
    answer = await client.get(
        "/api/v1/audit", headers=world.admin.headers, params={"object_type": "agent"}
    )
    assert answer.status_code == 200, answer.text
    return [entry for entry in answer.json()["items"] if entry["action"] == "supervise"]


async def inbound_audio(page: Page) -> dict[str, float]:
    totals: dict[str, float] = await page.evaluate(INBOUND_AUDIO)
    return totals


async def test_a_supervisor_listens_from_the_wallboard_and_hears_the_call_in_the_browser(
    phone_context: BrowserContext,
    console: str,
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    await phone_context.add_init_script(KEEP_PEERS)
    async with answered_call(pbx, client, sessions, applier, sipp) as scene:
        world, agent = scene.world, scene.agent_device
        supervisor = scene.supervisor_device

        board = await phone_context.new_page()
        await log_in(board, console, world.slug, world.supervisor.email, PASSWORD)
        await board.goto(f"{console}/wallboard")
        row = row_of(board, world.agent.user_id)
        await expect(row.locator('[data-field="state"]')).to_have_text(
            "On a call", timeout=SEEN_WITHIN_MS
        )

        # No Phone page is open: the browser phone would ring nowhere. Refused, not audited.
        await row.get_by_role("button", name="Listen").click()
        refused = board.locator("#wallboard-refused")
        await expect(refused).to_contain_text(
            "Your browser phone is off: open the Phone page in another tab, then press again.",
            timeout=SEEN_WITHIN_MS,
        )
        assert await supervisions(client, world) == []
        await assert_accessible(board)

        # The refusal's link opens the Phone page in a tab of its own; the phone registers.
        async with phone_context.expect_page() as opened:
            await refused.get_by_role("link", name="Open the Phone page in a new tab").click()
        phone = await opened.value
        await expect(phone.locator("#phone-status")).to_have_attribute(
            "data-state", "registered", timeout=SEEN_WITHIN_MS
        )
        await expect(phone.locator("#phone-heading")).to_have_text("Phone 301")
        navigation = phone.get_by_role("navigation", name="Main")
        await expect(navigation.get_by_role("link", name="Phone", exact=True)).to_have_attribute(
            "aria-current", "page"
        )

        await board.bring_to_front()
        await row.get_by_role("button", name="Listen").click()
        await expect(board.locator("#wallboard-done")).to_have_text(
            "Your browser phone rings: answer it on the Phone page to listen to the call, unheard.",
            timeout=SEEN_WITHIN_MS,
        )

        await phone.bring_to_front()
        call = phone.locator("#phone-call")
        await expect(call).to_have_text(
            "Supervision call: listen to agent 201", timeout=SEEN_WITHIN_MS
        )
        await assert_accessible(phone)
        mark = scene.caller.mark()
        await phone.get_by_role("button", name="Answer").click()
        await expect(call).to_have_text(
            "Listening to agent 201: nobody hears you", timeout=SEEN_WITHIN_MS
        )
        # Nothing to hold, dial nor transfer in a supervision call; in listen mode, nothing
        # to mute either.
        await expect(phone.locator("#phone-hangup")).to_be_visible()
        for hidden in ("#phone-mute", "#phone-hold", "#phone-keypad", "#phone-transfer"):
            await expect(phone.locator(hidden)).to_be_hidden()

        # Asterisk: the browser's channel spies on the agent's.
        await until(
            lambda: spying(pbx, supervisor["sip_username"], agent["sip_username"]),
            "the browser's call spying on the agent's",
        )

        # The browser receives the call's audio: RTP packets, not silence, still coming...
        async def receiving() -> bool:
            totals = await inbound_audio(phone)
            return totals["packets"] >= PACKETS and totals["energy"] > 0

        await until(receiving, f"{PACKETS} RTP packets of sound received by the browser")
        before = await inbound_audio(phone)

        async def still_receiving() -> bool:
            now = await inbound_audio(phone)
            return now["packets"] > before["packets"] and now["bytes"] > before["bytes"]

        await until(still_receiving, "more RTP received by the browser")

        # ...and what it plays is the call: the caller's tone and the agent's.
        await phone.evaluate(LISTEN_TO_THE_PAGE)
        levels: list[float] = []

        async def hears_both() -> bool:
            levels[:] = await phone.evaluate(TONES_OVER_MEDIAN, [CALLER_HZ, AGENT_HZ])
            return all(level >= TONE_OVER_MEDIAN_DB for level in levels)

        try:
            await until(hears_both, "the caller's and the agent's tones in the browser")
        except AssertionError as err:
            raise AssertionError(f"{err}: dB over the median {levels}") from None
        # Listening, the supervisor's microphone reaches nobody.
        assert scene.caller.tones.count(MICROPHONE_HZ, since=mark) == 0, heard(scene.caller)
        await save_screenshot(phone, "phone-supervision-listening")

        # The start is audited: the supervisor, the agent, listen, the browser device.
        (entry,) = await supervisions(client, world)
        assert (entry["actor_user_id"], entry["object_id"]) == (
            world.supervisor.user_id,
            str(world.agent.user_id),
        )
        changes = entry["changes"]
        assert (changes["mode"], changes["device_id"], changes["device"]) == (
            "listen",
            supervisor["id"],
            supervisor["sip_username"],
        )

        # The supervisor hangs up in the page; the agent's call goes on.
        await phone.locator("#phone-hangup").click()
        await expect(call).to_have_text("Call ended", timeout=SEEN_WITHIN_MS)
        await expect(phone.locator("#phone-log tbody tr")).to_have_count(1)
        await expect(phone.locator("#phone-log tbody tr")).to_contain_text("Listen: agent 201")

        async def spy_gone() -> bool:
            return not await spying(pbx, supervisor["sip_username"], agent["sip_username"])

        await until(spy_gone, "the supervision call's end")
        await bridged(pbx, agent)

        # Whispering from the page: the browser's microphone reaches the agent alone.
        await board.bring_to_front()
        await row.get_by_role("button", name="Whisper").click()
        await expect(board.locator("#wallboard-done")).to_have_text(
            "Your browser phone rings: answer it on the Phone page to speak to the agent alone.",
            timeout=SEEN_WITHIN_MS,
        )
        await phone.bring_to_front()
        await expect(call).to_have_text(
            "Supervision call: whisper to agent 201", timeout=SEEN_WITHIN_MS
        )
        marks = {peer: peer.mark() for peer in (scene.caller, scene.agent)}
        await phone.get_by_role("button", name="Answer").click()
        await expect(call).to_have_text(
            "Whispering to agent 201: the caller does not hear you", timeout=SEEN_WITHIN_MS
        )
        await expect(phone.locator("#phone-mute")).to_be_visible()

        async def whispered() -> bool:
            return scene.agent.tones.count(MICROPHONE_HZ, since=marks[scene.agent]) >= HEARD

        try:
            await until(whispered, "the agent hearing the browser's microphone")
        except AssertionError as err:
            raise AssertionError(f"{err}: agent {heard(scene.agent)}") from None
        assert scene.caller.tones.count(MICROPHONE_HZ, since=marks[scene.caller]) == 0
        assert len(await supervisions(client, world)) == 2
        await phone.locator("#phone-hangup").click()
        await expect(call).to_have_text("Call ended", timeout=SEEN_WITHIN_MS)
        await until(spy_gone, "the whisper's end")
    await phone.close()
    await board.close()
    await retire(pbx, applier, world.tenant_id)


async def test_supervisors_without_a_browser_phone_get_a_clear_page_and_operators_no_phone(
    page: Page,
    browser: Browser,
    console: str,
    client: httpx.AsyncClient,
    sessions: Sessions,
) -> None:
    world = await make_world(client, sessions)
    await new_device(client, world, "301", world.supervisor.user_id)  # a SIP phone only
    await log_in(page, console, world.slug, world.supervisor.email, PASSWORD)
    navigation = page.get_by_role("navigation", name="Main")
    await navigation.get_by_role("link", name="Phone", exact=True).click()
    await expect(page).to_have_url(f"{console}/phone")
    await expect(page.locator("#no-browser-phone")).to_contain_text(
        "You have no browser phone: ask your administrator for a device of type webrtc."
    )
    await expect(page.locator("#no-browser-phone")).to_contain_text(
        "With one, you take the supervision calls you start from the wallboard (listen, whisper, "
        "barge) on this page."
    )
    await expect(page.locator("#phone")).to_have_count(0)
    await assert_accessible(page)

    # An operator acting in the tenant: no Phone in the navigation, and the page says why.
    operator = await browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    try:
        other = await operator.new_page()
        await log_in(other, console, None, world.operator.email, PASSWORD)
        await other.goto(f"{console}/wallboard?tenant={world.tenant_id}")
        menu = other.get_by_role("navigation", name="Main")
        await expect(menu.get_by_role("link", name="Wallboard")).to_be_visible()
        await expect(menu.get_by_role("link", name="Phone", exact=True)).to_have_count(0)
        await other.goto(f"{console}/phone?tenant={world.tenant_id}")
        await expect(other.locator("#no-phone-for-operators")).to_have_text(
            "Operators own no phone in a tenant: this page is the browser phone of the "
            "tenant's user who is logged in."
        )
        await assert_accessible(other)
    finally:
        await operator.close()
