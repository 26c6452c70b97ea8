"""The Phone page over HTTP: its user's own browser device's credentials (an agent's, a
supervisor's, an admin's) and nobody else's, never cached, and the page allowed to reach the
SIP WebSocket only; an operator acting in a tenant owns no phone there."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents.service import sip_ha1
from tests.conftest import RunningApp
from tests.factories import browser_device, make_world, unique
from tests.integration.test_console_auth import console_client, log_in

NAV_PHONE = '<li><a href="/phone"'

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

            device = await browser_device(client, world, "202")
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


async def test_supervisors_and_admins_get_their_own_browser_phone_and_operators_none(
    running_app: RunningApp,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    app = running_app.app
    world = await make_world(client, sessions)
    agents = await browser_device(client, world, "201")
    with phone_websocket(app, WEBSOCKET):
        async with console_client(client) as browser:
            # Without a browser device of its own: the page says so (never the agent's).
            assert (await log_in(browser, world, "supervisor")).status_code == 303
            assert (await browser.get("/phone/credentials")).status_code == 404
            page = await browser.get("/phone")
            assert page.status_code == 200 and 'id="no-browser-phone"' in page.text
            assert "supervision calls" in page.text and NAV_PHONE in page.text
            assert "connect-src 'self';" in page.headers["content-security-policy"]

            device = await browser_device(
                client, world, "301", "supervising", user_id=world.supervisor.user_id
            )
            answer = await browser.get("/phone/credentials")
            assert answer.status_code == 200, answer.text
            assert answer.headers["cache-control"] == "no-store"
            assert answer.json()["username"] == device["sip_username"] != agents["sip_username"]
            assert answer.json()["ha1"] == sip_ha1(device["sip_username"], device["password"])
            page = await browser.get("/phone", headers={"Accept-Language": "fr"})
            assert 'id="phone"' in page.text and 'data-supervises="true"' in page.text
            assert 'id="phone-supervision-hint"' in page.text
            # The supervision calls' texts, in the viewer's language.
            assert "Écoute de l&#39;agent {agent} : personne ne vous entend" in page.text
            policy = page.headers["content-security-policy"]
            assert "connect-src 'self' ws://127.0.0.7:8088;" in policy

        async with console_client(client) as browser:
            assert (await log_in(browser, world, "admin")).status_code == 303
            # A desk phone first: the supervision calls ring it, and the page says so.
            desk = await client.post(
                "/api/v1/devices",
                headers=world.admin.headers,
                json={"user_id": world.admin.user_id, "name": "admin-desk", "extension": "400"},
            )
            assert desk.status_code == 201, desk.text
            assert (await browser.get("/phone/credentials")).status_code == 404
            admins = await browser_device(
                client, world, "401", "admin", user_id=world.admin.user_id
            )
            answer = await browser.get("/phone/credentials")
            assert answer.status_code == 200, answer.text
            assert answer.json()["username"] == admins["sip_username"]
            page = await browser.get("/phone")
            assert "ring your first phone, extension 400, not this page." in page.text

        async with console_client(client) as browser:
            # The agent's page is as it was: its own device, no supervision.
            assert (await log_in(browser, world, "agent")).status_code == 303
            answer = await browser.get("/phone/credentials")
            assert answer.json()["username"] == agents["sip_username"]
            page = await browser.get("/phone")
            assert 'data-supervises="false"' in page.text and NAV_PHONE in page.text
            assert 'id="phone-supervision-hint"' not in page.text

        async with console_client(client) as browser:
            # An operator acting in the tenant owns no device there: no phone, no credentials.
            assert (await log_in(browser, world, "operator")).status_code == 303
            tenant = f"?tenant={world.tenant_id}"
            answer = await browser.get(f"/phone/credentials{tenant}")
            assert answer.status_code == 404
            page = await browser.get(f"/phone{tenant}")
            assert page.status_code == 200 and 'id="no-phone-for-operators"' in page.text
            assert '<li><a href="/phone' not in page.text


async def test_a_tenant_on_another_node_gets_that_nodes_websocket_or_none(
    running_app: RunningApp,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(client, sessions)
    await browser_device(client, world, "203")
    operator = world.operator.headers
    name = unique("n")[:32].replace("_", "-")
    node = await client.post(
        "/api/v1/nodes",
        headers=operator,
        json={
            "name": name,
            "systemname": name.replace("-", "_"),
            "ami_host": "127.0.0.124",
            "ami_port": 5038,
            "ami_username": "graam",
            "ami_secret": "node-secret-0123456789",
            "sip_host": "127.0.0.124",
            "phone_websocket": "wss://nodeb.pbx.example/ws",
        },
    )
    assert node.status_code == 201, node.text
    assert node.json()["phone_websocket"] == "wss://nodeb.pbx.example/ws"
    node_url = f"/api/v1/nodes/{node.json()['id']}"
    refused = await client.patch(node_url, headers=operator, json={"phone_websocket": "http://x"})
    assert refused.status_code == 422, refused.text
    placed = await client.put(
        f"/api/v1/tenants/{world.tenant_id}/placement", headers=operator, json={"node": name}
    )
    assert placed.status_code == 200, placed.text
    try:
        with phone_websocket(running_app.app, WEBSOCKET):
            async with console_client(client) as browser:
                assert (await log_in(browser, world, "agent")).status_code == 303
                answer = await browser.get("/phone/credentials")
                assert answer.status_code == 200, answer.text
                # The tenant's node's, not the configured Asterisk's.
                assert answer.json()["websocket"] == "wss://nodeb.pbx.example/ws"
                page = await browser.get("/phone")
                policy = page.headers["content-security-policy"]
                assert "connect-src 'self' wss://nodeb.pbx.example;" in policy
                cleared = await client.patch(
                    node_url, headers=operator, json={"phone_websocket": None}
                )
                assert cleared.status_code == 200, cleared.text
                assert cleared.json()["phone_websocket"] is None
                # A node that says nowhere: no browser phone, never another node's address.
                assert (await browser.get("/phone/credentials")).status_code == 404
                page = await browser.get("/phone")
                assert 'id="no-browser-phone"' in page.text
    finally:
        moved = await client.put(
            f"/api/v1/tenants/{world.tenant_id}/placement",
            headers=operator,
            json={"node": "local"},
        )
        assert moved.status_code == 200, moved.text
        down = await client.patch(node_url, headers=operator, json={"state": "down"})
        assert down.status_code == 200, down.text
