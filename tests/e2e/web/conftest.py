"""The console in Debian's chromium, driven by Playwright, served by the session's app.

The app of ``pbx`` (real Postgres, real Asterisk) is served over real HTTP on a loopback port
of its own; each test gets a fresh browser context (its own cookies) and leaves a screenshot
of the page it ends on under ``var/test-artifacts/screenshots/``. The browser phone's tests
get a chromium of their own with a WAV file as its microphone (``phone_context``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from bench.webrtc import microphone
from graam_pbx.sandbox.http import LoopbackHttp
from tests.conftest import RunningApp
from tests.e2e.web.browser import CHROMIUM, CHROMIUM_ARGS, screenshot_path


@pytest.fixture(scope="session")
async def console(pbx: RunningApp) -> AsyncIterator[str]:
    """The base URL of the console of the session's app."""
    async with LoopbackHttp(pbx.app) as server:
        yield server.url


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing (Debian package chromium; `make test` installs it)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A page in a fresh context (English), screenshotted at the end of the test."""
    context = await browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        yield page
    finally:
        path: Path = screenshot_path(request.node.name)
        try:
            await page.screenshot(path=str(path), full_page=True)
        finally:
            await context.close()


@pytest.fixture
async def phone_context(browser: Browser, tmp_path: Path) -> AsyncIterator[BrowserContext]:
    """A chromium of its own: a WAV as its microphone, allowed without asking, and ICE on
    loopback (where the sandbox's Asterisk is)."""
    assert CHROMIUM.exists()
    wav = microphone(tmp_path / "microphone.wav", seconds=30)
    media = await browser.browser_type.launch(
        executable_path=str(CHROMIUM),
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}",
            "--allow-loopback-in-peer-connection",
            "--autoplay-policy=no-user-gesture-required",
        ],
    )
    context = await media.new_context(
        locale="en-GB", viewport={"width": 1280, "height": 900}, permissions=["microphone"]
    )
    try:
        yield context
    finally:
        await context.close()
        await media.close()
