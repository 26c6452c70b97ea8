"""The agent requests' admission limit: at most ``limit`` at once, in their order of arrival,
and nothing else held back; by default above the database pool's size (docs/login-storm.md,
"Admission": below it, a login storm waited on its round trips with the machine partly idle).
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

from graam_pbx.app import AdmissionLimit
from graam_pbx.settings import Settings

PREFIX = "/api/v1/agents/"


class Held:
    """An inner application that holds every request until released, noting how many it
    holds at once and in which order they came in."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self.order: list[str] = []
        self.release = asyncio.Event()
        self.entered = asyncio.Condition()

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        async with self.entered:
            self.inside += 1
            self.most = max(self.most, self.inside)
            self.order.append(scope["path"])
            self.entered.notify_all()
        try:
            await self.release.wait()
        finally:
            self.inside -= 1

    async def until_inside(self, count: int) -> None:
        async with self.entered:
            await asyncio.wait_for(self.entered.wait_for(lambda: self.inside >= count), 5)


def http(path: str) -> MutableMapping[str, Any]:
    return {"type": "http", "path": path}


async def nothing() -> MutableMapping[str, Any]:
    return {"type": "http.disconnect"}


async def ignore(_: MutableMapping[str, Any]) -> None:
    return None


async def test_at_most_the_limit_run_at_once_and_the_others_follow_in_order() -> None:
    inner = Held()
    limited = AdmissionLimit(inner, prefix=PREFIX, limit=3)
    paths = [f"{PREFIX}{n}/session" for n in range(10)]
    calls = []
    for path in paths:  # one by one: each reaches the semaphore before the next starts
        calls.append(asyncio.create_task(limited(http(path), nothing, ignore)))
        await asyncio.sleep(0)
    await inner.until_inside(3)

    assert inner.inside == 3
    assert inner.order == paths[:3]
    inner.release.set()
    await asyncio.wait_for(asyncio.gather(*calls), 5)
    assert inner.most == 3
    assert inner.order == paths  # first come, first served


async def test_requests_outside_the_prefix_never_wait_for_a_slot() -> None:
    inner = Held()
    limited = AdmissionLimit(inner, prefix=PREFIX, limit=1)
    login = asyncio.create_task(limited(http(f"{PREFIX}7/session"), nothing, ignore))
    await inner.until_inside(1)
    others = [
        asyncio.create_task(limited(http(path), nothing, ignore))
        for path in ("/api/v1/auth/me", "/readyz", "/api/v1/queues")
    ]

    await inner.until_inside(4)  # in beside the login that holds the only slot
    inner.release.set()
    await asyncio.wait_for(asyncio.gather(login, *others), 5)


def test_by_default_more_agent_requests_are_admitted_than_the_pool_has_connections() -> None:
    fields = Settings.model_fields

    assert fields["agent_session_concurrency"].default > fields["db_pool_size"].default
