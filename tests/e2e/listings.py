"""What the API lists, read as a tenant's user reads it: every page, or every page once the
items a test expects are all there."""

from __future__ import annotations

from typing import Any

import httpx

from tests.waiting import until


async def every_item(
    client: httpx.AsyncClient, headers: dict[str, str], path: str, **filters: str
) -> list[dict[str, Any]]:
    """Every item ``path`` lists for ``filters``, every page."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {**filters, "limit": "200", **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, headers=headers, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        if not (cursor := page.get("next_cursor")):
            return items


async def listed(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    path: str,
    count: int,
    timeout: float = 45,
    **filters: str,
) -> list[dict[str, Any]]:
    """Every item ``path`` lists for ``filters`` once there are ``count`` (never more)."""
    found: list[dict[str, Any]] = []

    async def complete() -> bool:
        nonlocal found
        found = await every_item(client, headers, path, **filters)
        assert len(found) <= count, (len(found), count, found)
        return len(found) == count

    try:
        await until(complete, f"{count} items of {path} {filters}", timeout=timeout)
    except AssertionError:
        raise AssertionError(f"{len(found)} of {count} items of {path} {filters}") from None
    return found
