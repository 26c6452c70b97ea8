"""The Phone page over HTTP: the agent's own browser device's credentials and nobody else's,
never cached, and the page allowed to reach the SIP WebSocket only."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents.service import sip_ha1
from tests.conftest import RunningApp
from tests.factories import make_world
from tests.integration.test_console_auth import console_client, log_in

WEBSOCKET = "ws://127.0.0.7:8088/ws"


@contextlib.contextmanager
def phone_websocket(app: FastAPI, url: str | None) -> Iterator[None]:
    runtime = app.state.runtime
    before = runtime.phone_websocket
    runtime.phone_websocket = url
    try:
        yield
    finally:
        runtime.phone_websocket = before


async def test_the_agent_gets_its_own_browser_devices_credentials_only(
    running_app: RunningApp,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    app = running_app.app
    world = await make_world(client, sessions)
    desk = await client.post(
        "/api/v1/devices",
        headers=world.admin.headers,
        json={"user_id": world.agent.user_id, "name": "desk", "extension": "201"},
    )
    assert desk.status_code == 201, desk.text
    with phone_websocket(app, WEBSOCKET):
        async with console_client(client) as browser:
            assert (await log_in(browser, world, "agent")).status_code == 303
            # A SIP phone is no browser phone.
            assert (await browser.get("/phone/credentials")).status_code == 404
            page = await browser.get("/phone")
            assert page.status_code == 200 and 'id="no-browser-phone"' in page.text

            made = await client.post(
                "/api/v1/devices",
                headers=world.admin.headers,
                json={
                    "user_id": world.agent.user_id,
                    "name": "browser",
                    "extension": "202",
                    "transport": "webrtc",
                },
            )
            assert made.status_code == 201, made.text
            device = made.json()
            page = await browser.get("/phone")
            assert page.status_code == 200 and 'id="phone"' in page.text
            policy = page.headers["content-security-policy"]
            assert "connect-src 'self' ws://127.0.0.7:8088;" in policy
            answer = await browser.get("/phone/credentials")
            assert answer.status_code == 200, answer.text
            assert answer.headers["cache-control"] == "no-store"
            assert answer.json() == {
                "websocket": WEBSOCKET,
                "username": device["sip_username"],
                "realm": "graam",
                "ha1": sip_ha1(device["sip_username"], device["password"]),
                "extension": "202",
            }
        async with console_client(client) as browser:
            assert (await log_in(browser, world, "supervisor")).status_code == 303
            assert (await browser.get("/phone/credentials")).status_code in (403, 404)
    with phone_websocket(app, None):
        async with console_client(client) as browser:
            assert (await log_in(browser, world, "agent")).status_code == 303
            assert (await browser.get("/phone/credentials")).status_code == 404
            page = await browser.get("/phone")
            assert "connect-src 'self';" in page.headers["content-security-policy"]
