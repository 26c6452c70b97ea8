"""The OpenAPI document (seconds of CPU to build) is built once, in a worker thread, never on
the event loop, whichever request first needs it: the document itself, a 405's ``Allow``, or
a path with a NUL named by its parameter."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import unstarted_app


def recorded_app() -> tuple[FastAPI, list[int]]:
    """An app (its lifespan not started: these requests need no database) and the threads
    its OpenAPI document was built on."""
    app = unstarted_app()
    builds: list[int] = []
    plain = app.openapi

    def recording() -> dict[str, Any]:
        if app.openapi_schema is None:
            builds.append(threading.get_ident())
        return plain()

    app.openapi = recording  # type: ignore[method-assign]
    return app, builds


async def document_twice(client: httpx.AsyncClient) -> None:
    # Two readers at once: one build, both get the whole document.
    answers = await asyncio.gather(client.get("/openapi.json"), client.get("/openapi.json"))
    for answer in answers:
        assert answer.status_code == 200
        assert "/api/v1/users" in answer.json()["paths"]


async def wrong_method(client: httpx.AsyncClient) -> None:
    answer = await client.delete("/healthz")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD"


async def nul_in_path(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/users/1%00")
    assert answer.status_code == 422
    assert answer.json()["details"]["errors"][0]["field"] == "path.user_id"


@pytest.mark.parametrize("first_use", [document_twice, wrong_method, nul_in_path])
async def test_the_document_is_built_once_off_the_event_loop(
    first_use: Callable[[httpx.AsyncClient], Awaitable[None]],
) -> None:
    app, builds = recorded_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://graam.test") as client:
        await first_use(client)
        assert builds, "the document was never built"
        assert len(builds) == 1, builds
        assert builds[0] != threading.get_ident(), "built on the event loop's thread"
        # Its pages are served, and read it at the document's path.
        assert "/openapi.json" in (await client.get("/docs")).text
        assert "/openapi.json" in (await client.get("/redoc")).text
        assert (await client.get("/docs/oauth2-redirect")).status_code == 200
    assert len(builds) == 1
