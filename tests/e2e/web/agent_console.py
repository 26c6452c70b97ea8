"""What the Agents and My day browser tests share: an agent's device, pause reasons, a login
straight to a page, the agent's session as the API sees it."""

from __future__ import annotations

import httpx
from playwright.async_api import Page

from tests.e2e.web.browser import log_in
from tests.factories import PASSWORD, TenantWorld, unique


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


async def log_in_to(page: Page, console: str, path: str, world: TenantWorld, email: str) -> None:
    """Log in through the form straight to ``path`` (whatever the role's landing page)."""
    await log_in(page, console, world.slug, email, PASSWORD, next_path=path)


async def api_session(client: httpx.AsyncClient, world: TenantWorld) -> dict[str, object]:
    found = await client.get(
        f"/api/v1/agents/{world.agent.user_id}/session", headers=world.supervisor.headers
    )
    assert found.status_code == 200, found.text
    live: dict[str, object] = found.json()
    return live
