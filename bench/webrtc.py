"""Browser phones on this machine: how many register and hold a call at once, and how long a
call takes to set up, against plain SIP phones in the same run.

python -m bench.webrtc [--quick] [--phones N]

Prints one JSON line. The whole control plane runs in this process (as `make run` does)
against its own embedded Postgres and Asterisk sandbox, and serves the console over HTTP on
loopback. ``--phones`` agents (default 20, ``--quick`` 4) each open the console's Phone page
in a browser context of their own, ten to a Debian chromium (one chromium captures 16 audio
streams at most; an agent has a browser of its own), with a WAV tone as the microphone:
the page logs in, registers over Asterisk's SIP WebSocket (DTLS-SRTP, ICE, Opus), and
answers every call the moment it rings (an agent who clicks at once: a script the bench adds
to each page clicks Answer when it appears).

Then every phone is called at once: an AMI ``Originate`` of its device into ``Milliwatt``
(Asterisk's tone), held until all are measured. For each call:

- ``answer_*_ms``: from the Originate to Asterisk's channel of the browser being up (the
  INVITE over the WebSocket, the page ringing, answered, the 200 OK);
- ``setup_*_ms``: from the Originate to RTP both ways on that channel (Asterisk's own counters,
  read every 50 ms): the answer plus ICE and the DTLS handshake, what a caller waits before
  hearing the agent;
- ``held``: the calls with RTP both ways at once; ``answered``: the calls that were answered
  within a minute; ``registered``: the phones that registered.

The limit, in the same run: the same Originates, at once, to as many plain SIP phones (sipp,
registered over UDP, answering at once, no media encryption): ``limit_answer_*_ms``, and
``limit_media_*_ms`` (the first RTP Asterisk sends them; they send none). Beside them what the
phones cost: ``register_*_ms`` (page opened to registered), ``browser_rss_mb_per_phone``
(every chromium process's resident memory over the phones, while the calls are held) and
``phones_memory_bound`` (the memory available before the browsers started, over that).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from playwright.async_api import Browser, BrowserContext, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from bench.call_load import World, agents_phones, udp_port
from bench.readings import percentile
from bench.stack import ami_config, asterisk_sandbox
from graam_pbx.agents.service import sip_ha1
from graam_pbx.ami import AmiError, AmiSupervisor
from graam_pbx.ami import actions as ami_actions
from graam_pbx.app import Endpoints, Runtime, create_app
from graam_pbx.auth import service as auth_service
from graam_pbx.db import migrate
from graam_pbx.sandbox.http import LoopbackHttp
from graam_pbx.sandbox.ports import free_port
from graam_pbx.sandbox.postgres import EmbeddedPostgres, EmbeddedPostgresConfig
from graam_pbx.settings import Settings
from tests.e2e.rtp_stats import channels, rtp_counts
from tests.tones import tone_wav

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
    # Pages in background contexts keep their timers and media at full speed.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
PASSWORD = "bench-webrtc-password"  # noqa: S105 - a throwaway account of a throwaway database
SLUG = "webrtc"
POLL = 0.05
CALL_TIMEOUT = 60.0
PHONES_PER_BROWSER = 10
# An agent who answers at once: clicks Answer whenever the page shows it.
AUTO_ANSWER = """
new MutationObserver(() => {
  const answer = document.getElementById("phone-answer");
  if (answer && !answer.hidden) answer.click();
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["hidden"] });
"""


@dataclass
class Agents:
    tenant_id: int
    browsers: list[tuple[str, str]]  # (console e-mail, SIP user of its browser device)
    phones: World  # the plain SIP phones of the limit, as bench.call_load registers them


def _ms(values: Sequence[float], quantile: float) -> float | None:
    return round(percentile(list(values), quantile) * 1000, 1) if values else None


def microphone(path: Path, seconds: int = 60) -> Path:
    """A WAV of a 440 Hz tone at 48 kHz: every browser's fake microphone."""
    path.write_bytes(tone_wav(440, seconds, rate=48000))
    return path


async def populate(url: str, phones: int) -> Agents:
    """A tenant whose ``phones`` agents each have a browser device (and a console login),
    and as many plain SIP devices for the limit."""
    password_hash = await auth_service.hash_password(PASSWORD)
    conn = await asyncpg.connect(url)
    try:
        tenant_id = await conn.fetchval(
            "INSERT INTO tenants (slug, name, country, timezone, status, plan, licences, "
            "version) VALUES ($1, $1, 'FR', 'Europe/Paris', 'active', 'standard', $2, 1) "
            "RETURNING id",
            SLUG,
            2 * phones,
        )
        browsers: list[tuple[str, str]] = []
        sip: list[tuple[int, str, str]] = []
        for number in range(phones):
            email = f"b{number}@{SLUG}.example"
            user_id = await conn.fetchval(
                "INSERT INTO users (tenant_id, email, display_name, role, password_hash, "
                "disabled, version) VALUES ($1, $2, $3, 'agent', $4, false, 1) RETURNING id",
                tenant_id,
                email,
                f"Browser {number}",
                password_hash,
            )
            name = f"{SLUG}-b{number}"
            await conn.execute(
                "INSERT INTO agent_devices (tenant_id, user_id, sip_username, password_ha1, "
                "extension, codecs, transport, max_contacts, version) VALUES ($1, $2, $3, $4, "
                "$5, '{opus,g722,ulaw,alaw}', 'webrtc', 1, 1)",
                tenant_id,
                user_id,
                name,
                sip_ha1(name, uuid.uuid4().hex),
                str(3000 + number),
            )
            browsers.append((email, name))
            sip_user = await conn.fetchval(
                "INSERT INTO users (tenant_id, email, display_name, role, password_hash, "
                "disabled, version) VALUES ($1, $2, $3, 'agent', 'x', false, 1) RETURNING id",
                tenant_id,
                f"s{number}@{SLUG}.example",
                f"Phone {number}",
            )
            sip_name, sip_password = f"{SLUG}-s{number}", uuid.uuid4().hex
            await conn.execute(
                "INSERT INTO agent_devices (tenant_id, user_id, sip_username, password_ha1, "
                "extension, codecs, transport, max_contacts, version) VALUES ($1, $2, $3, $4, "
                "$5, '{ulaw,alaw}', 'udp', 1, 1)",
                tenant_id,
                sip_user,
                sip_name,
                sip_ha1(sip_name, sip_password),
                str(4000 + number),
            )
            sip.append((sip_user, sip_name, sip_password))
    finally:
        await conn.close()
    return Agents(tenant_id, browsers, World(tenant_id, 0, {}, sip))


async def open_phone(browser: Browser, url: str, email: str) -> tuple[BrowserContext, float]:
    """One agent's Phone page, logged in and registered; the seconds from opening the page to
    registered (inf: it did not register within a minute)."""
    context = await browser.new_context(locale="en-GB", permissions=["microphone"])
    await context.add_init_script(AUTO_ANSWER)
    page = await context.new_page()
    await page.goto(f"{url}/login")
    await page.get_by_label("Tenant").fill(SLUG)
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(f"{url}/my-day")
    started = time.perf_counter()
    await page.goto(f"{url}/phone")
    try:
        await page.wait_for_selector(
            '#phone-status[data-state="registered"]', timeout=CALL_TIMEOUT * 1000
        )
    except PlaywrightTimeout:  # a phone that did not register is counted, not fatal
        return context, math.inf
    return context, time.perf_counter() - started


async def call_all(
    ami: AmiSupervisor, devices: list[str], *, both_ways: bool
) -> tuple[list[float], list[float], int]:
    """Every device called at once into Milliwatt: the seconds to answered, the seconds to RTP
    (both ways, else sent by Asterisk), and how many had it at once; then all hung up."""
    started = time.perf_counter()
    for device in devices:
        await ami_actions.originate(
            ami,
            f"PJSIP/{device}",
            channel_id=f"bench-{uuid.uuid4().hex}",
            application="Milliwatt",
            data="",
            caller_id="bench <100>",
            timeout_ms=int(CALL_TIMEOUT * 1000),
        )
    answered: dict[str, float] = {}
    media: dict[str, float] = {}
    names: dict[str, str] = {}
    deadline = started + CALL_TIMEOUT
    while len(media) < len(devices) and time.perf_counter() < deadline:
        now_channels = await channels(ami)
        now = time.perf_counter()
        for device in devices:
            name = next((c for c in now_channels if c.startswith(f"PJSIP/{device}-")), None)
            if name is None:
                continue
            names[device] = name
            if now_channels[name] == "Up":
                answered.setdefault(device, now - started)
                if device not in media:
                    received, sent = await rtp_counts(ami, name)
                    if sent > 0 and (received > 0 or not both_ways):
                        media[device] = time.perf_counter() - started
        await asyncio.sleep(POLL)
    still = await channels(ami)
    for device in devices:
        if device not in media:
            print(
                f"{device}: no media (answered: {device in answered}, channel: "
                f"{names.get(device)} {still.get(names.get(device, ''), 'gone')})",
                file=sys.stderr,
            )
    at_once = sum(1 for device in media if names.get(device) in still)
    for name in names.values():
        try:
            await ami.action("Hangup", {"Channel": name})
        except AmiError:  # a call already gone
            continue
    return list(answered.values()), list(media.values()), at_once


def chromium_rss_mb() -> float:
    """Resident memory of every chromium process, in MiB."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            command = (Path("/proc") / entry / "cmdline").read_bytes()
            if b"chromium" not in command.split(b"\0", 1)[0]:
                continue
            for line in (Path("/proc") / entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def main(phones: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="graam-bench-"))
    pg = EmbeddedPostgres(EmbeddedPostgresConfig(work / "pg", port=free_port()))
    await pg.start()
    sandbox = None
    try:
        admin = await asyncpg.connect(pg.url())
        await admin.execute("CREATE DATABASE bench")
        await admin.close()
        url = pg.url("bench")
        await migrate(url)
        agents = await populate(url, phones)
        sandbox = asterisk_sandbox(work / "asterisk", sip_port=udp_port(), http_port=free_port())
        info = await sandbox.start()
        endpoints = Endpoints(
            database_url=url,
            ami=ami_config(info),
            config_dir=info.config_dir,
            sounds_dir=info.sounds_dir,
            phone_websocket=sandbox.websocket_url(),
        )
        app = create_app(Settings(agi_port=free_port(), data_dir=work), endpoints)
        async with app.router.lifespan_context(app), LoopbackHttp(app) as server:
            url_base = server.url
            runtime: Runtime = app.state.runtime
            await runtime.ami.wait_connected(30)
            assert runtime.applier is not None
            runtime.applier.request({agents.tenant_id})
            await runtime.applier.settled()
            ami = runtime.ami
            memory_before = available_mb()
            wav = microphone(work / "microphone.wav")
            async with async_playwright() as playwright:
                # A chromium per PHONES_PER_BROWSER phones (one holds 16 audio captures at
                # most; an agent has a browser of its own anyway).
                browsers = [
                    await playwright.chromium.launch(
                        executable_path=str(CHROMIUM),
                        args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={wav}"],
                    )
                    for _ in range(math.ceil(phones / PHONES_PER_BROWSER))
                ]
                try:
                    opened = [
                        await open_phone(browsers[index // PHONES_PER_BROWSER], url_base, email)
                        for index, (email, _) in enumerate(agents.browsers)
                    ]
                    registered = [
                        name
                        for (_, name), (_, took) in zip(agents.browsers, opened, strict=True)
                        if took != math.inf
                    ]
                    register_s = [took for _, took in opened if took != math.inf]
                    answer_s, setup_s, held = await call_all(ami, registered, both_ways=True)
                    rss = chromium_rss_mb()
                finally:
                    for browser in browsers:
                        await browser.close()
            asterisk = f"127.0.0.1:{sandbox.config.sip_port}"
            async with agents_phones(work, asterisk, agents.phones.phones, talk=CALL_TIMEOUT):
                sip_names = [name for _, name, _ in agents.phones.agents]
                limit_answer_s, limit_media_s, _ = await call_all(ami, sip_names, both_ways=False)
        per_phone = rss / max(1, len(registered))
        return {
            "bench": "webrtc",
            "phones": phones,
            "cores": os.cpu_count(),
            "registered": len(registered),
            "answered": len(answer_s),
            "held": held,
            "register_p50_ms": _ms(register_s, 0.5),
            "register_p99_ms": _ms(register_s, 0.99),
            "answer_p50_ms": _ms(answer_s, 0.5),
            "answer_p99_ms": _ms(answer_s, 0.99),
            "setup_p50_ms": _ms(setup_s, 0.5),
            "setup_p99_ms": _ms(setup_s, 0.99),
            "setup_mean_ms": round(statistics.fmean(setup_s) * 1000, 1) if setup_s else None,
            "limit_answer_p50_ms": _ms(limit_answer_s, 0.5),
            "limit_answer_p99_ms": _ms(limit_answer_s, 0.99),
            "limit_media_p50_ms": _ms(limit_media_s, 0.5),
            "limit_media_p99_ms": _ms(limit_media_s, 0.99),
            "browser_rss_mb_per_phone": round(per_phone, 1),
            "phones_memory_bound": int(memory_before // per_phone) if per_phone else None,
        }
    finally:
        if sandbox is not None:
            await sandbox.stop()
        await pg.stop()
        shutil.rmtree(work, ignore_errors=True)


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="4 phones")
    parser.add_argument("--phones", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(4 if args.quick else args.phones))))


if __name__ == "__main__":
    run()
