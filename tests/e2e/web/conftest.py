"""The console in Debian's chromium, driven by Playwright, served by the session's app.

The app of ``pbx`` (real Postgres, real Asterisk) is served over real HTTP on a loopback port
of its own; each test gets a fresh browser context (its own cookies) and leaves a screenshot
of the page it ends on under ``var/test-artifacts/screenshots/``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, Page, async_playwright

from graam_pbx.sandbox.ports import free_port
from tests.conftest import RunningApp
from tests.e2e.web.browser import CHROMIUM, CHROMIUM_ARGS, screenshot_path


class ConsoleServer:
    """One app served over HTTP on 127.0.0.1 (its lifespan runs elsewhere)."""

    def __init__(self, app: FastAPI, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, lifespan="off", log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        async with asyncio.timeout(20):
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            async with asyncio.timeout(20):
                await self._task


@pytest.fixture(scope="session")
async def console(pbx: RunningApp) -> AsyncIterator[str]:
    """The base URL of the console of the session's app."""
    server = ConsoleServer(pbx.app)
    await server.start()
    yield server.url
    await server.stop()


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
