"""The Agents and My day pages over HTTP: an id that is not one is refused, never a server
error."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import make_world, unique
from tests.integration.test_console_auth import console_client, log_in, page_csrf

# "²" is a digit Python's int() does not read; 5000 digits are past its limit.
NOT_IDS = ("abc", "0", "\u00b2", "9" * 5000)


async def test_an_agent_or_a_device_that_is_no_id_is_refused(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    device = await client.post(
        "/api/v1/devices",
        headers=world.admin.headers,
        json={"user_id": world.agent.user_id, "name": unique("desk"), "extension": "201"},
    )
    assert device.status_code == 201, device.text
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "supervisor")).status_code == 303
        csrf = await page_csrf(browser, "/agents")
        for asked in NOT_IDS:
            logout = await browser.post(f"/agents/{asked}/logout", data={"csrf_token": csrf})
            assert logout.status_code == 404, (asked[:10], logout.status_code)
            pause = await browser.post(
                f"/agents/{asked}/pause", data={"csrf_token": csrf, "change": "resume"}
            )
            assert pause.status_code == 404, (asked[:10], pause.status_code)
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "agent")).status_code == 303
        csrf = await page_csrf(browser, "/my-day")
        for asked in NOT_IDS[:3]:  # a form field is 20 characters at most
            login = await browser.post(
                "/my-day", data={"csrf_token": csrf, "action": "login", "device_id": asked}
            )
            assert login.status_code == 422, (asked, login.status_code)
            assert 'id="device-error"' in login.text
