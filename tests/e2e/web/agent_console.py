"""What the Agents and My day browser tests share: an agent's device, pause reasons, a tenant
with both, a login straight to a page, a page refused, the agent's session as the API sees
it."""

from __future__ import annotations

import httpx
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.e2e.web.browser import log_in
from tests.factories import PASSWORD, TenantWorld, make_world, unique


async def give_device(
    client: httpx.AsyncClient, world: TenantWorld, user_id: int, extension: str = "201"
) -> int:
    """A device of the agent (never registered: a login keeps it until a logout)."""
    made = await client.post(
        "/api/v1/devices",
        headers=world.admin.headers,
        json={"user_id": user_id, "name": unique("desk"), "extension": extension},
    )
    assert made.status_code == 201, made.text
    device_id: int = made.json()["id"]
    return device_id


async def add_pause_reason(
    client: httpx.AsyncClient, world: TenantWorld, code: str, label: str
) -> int:
    made = await client.post(
        "/api/v1/pause-reasons", headers=world.admin.headers, json={"code": code, "label": label}
    )
    assert made.status_code == 201, made.text
    reason_id: int = made.json()["id"]
    return reason_id


async def lunch_world(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> TenantWorld:
    """A tenant whose agent has a device (extension 201) and whose catalogue has 2 · Lunch."""
    world = await make_world(client, sessions)
    await give_device(client, world, world.agent.user_id)
    await add_pause_reason(client, world, "2", "Lunch")
    return world


async def log_in_to(page: Page, console: str, path: str, world: TenantWorld, email: str) -> None:
    """Log in through the form straight to ``path`` (whatever the role's landing page)."""
    await log_in(page, console, world.slug, email, PASSWORD, next_path=path)


async def assert_forbidden(page: Page, url: str) -> None:
    """``url`` answers 403 with the console's page that says so."""
    response = await page.goto(url)
    assert response is not None and response.status == 403
    await expect(page.get_by_role("alert")).to_contain_text("You may not see this page")


async def api_session(client: httpx.AsyncClient, world: TenantWorld) -> dict[str, object]:
    found = await client.get(
        f"/api/v1/agents/{world.agent.user_id}/session", headers=world.supervisor.headers
    )
    assert found.status_code == 200, found.text
    live: dict[str, object] = found.json()
    return live
