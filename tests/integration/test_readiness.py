"""The service against the real sandbox Asterisk and embedded Postgres: health and recovery."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
from typing import Any

import httpx

from graam_pbx.app import Endpoints
from graam_pbx.sandbox.ports import free_port
from tests.conftest import Asterisk, RunningApp, start_app
from tests.waiting import until


async def wait_for_readyz(client: httpx.AsyncClient, status: int, timeout: float) -> dict[str, Any]:
    """Poll /readyz until it answers ``status``; the body of that answer."""
    async with asyncio.timeout(timeout):
        while True:
            response = await client.get("/readyz")
            if response.status_code == status:
                body: dict[str, Any] = response.json()
                return body
            await asyncio.sleep(0.05)


async def test_ready_against_real_asterisk_and_postgres(running_app: RunningApp) -> None:
    body = await wait_for_readyz(running_app.client, 200, timeout=10)
    assert body["status"] == "ready"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["ami"]["ok"] is True
    assert (await running_app.client.get("/healthz")).json() == {"status": "alive"}


async def test_openapi_document_is_served(running_app: RunningApp) -> None:
    response = await running_app.client.get("/docs")
    assert response.status_code == 200
    spec = (await running_app.client.get("/openapi.json")).json()
    assert "/readyz" in spec["paths"]


async def test_metrics_expose_ami_and_pool(running_app: RunningApp) -> None:
    # Read while the AMI connection is up, as /readyz says: the session's one Asterisk serves
    # every test, and the connection's recovery from a drop is a test of its own (below).
    await wait_for_readyz(running_app.client, 200, timeout=10)
    # The gauge is the process's, by node name. In a whole-suite run this process holds a
    # second connection to the same node, "local" in its database too: the e2e tests' session
    # app (tests/e2e/conftest.py, pbx), whose drop and reconnection would set the same series.
    # So it is read until it says 1.
    gauge: list[str] = []

    async def connected_shown() -> bool:
        text = (await running_app.client.get("/metrics")).text
        gauge[:] = [line for line in text.splitlines() if line.startswith("graam_ami_connected")]
        return 'graam_ami_connected{node="local"} 1.0' in gauge

    try:
        await until(connected_shown, "AMI connection shown in /metrics", timeout=10)
    except AssertionError as err:
        raise AssertionError((gauge, running_app.runtime.ami.state)) from err
    text = (await running_app.client.get("/metrics")).text
    assert "graam_db_pool_size" in text
    assert 'graam_ami_events_total{event="FullyBooted"}' in text


async def test_unknown_route_has_the_error_shape(running_app: RunningApp) -> None:
    response = await running_app.client.get("/api/v1/no-such-route")
    assert response.status_code == 404
    assert response.json() == {"error_id": "not-found", "message": "Not Found", "details": {}}
    # Outside the API, paths are the web console's: its own page says there is no such page.
    page = await running_app.client.get("/no-such-route")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "There is no such page." in page.text


async def test_asterisk_stop_and_start_is_noticed_and_recovered(
    running_app: RunningApp, asterisk: Asterisk
) -> None:
    await wait_for_readyz(running_app.client, 200, timeout=10)
    reconnects_before = running_app.runtime.ami.state.reconnects
    await asterisk.sandbox.stop()
    try:
        body = await wait_for_readyz(running_app.client, 503, timeout=5)
        assert body["checks"]["ami"]["ok"] is False
        assert body["checks"]["database"]["ok"] is True
    finally:
        asterisk.info = await asterisk.sandbox.start()
    body = await wait_for_readyz(running_app.client, 200, timeout=30)
    assert body["checks"]["ami"]["ok"] is True
    assert running_app.runtime.ami.state.reconnects > reconnects_before


async def test_database_down_is_reported(asterisk: Asterisk) -> None:
    closed = f"postgresql://postgres:x@127.0.0.1:{free_port()}/nothing"
    async for running in start_app(Endpoints(database_url=closed, ami=asterisk.ami_config())):
        body = await wait_for_readyz(running.client, 503, timeout=10)
        assert body["checks"]["database"]["ok"] is False
        assert body["checks"]["database"]["error"]


async def test_wrong_ami_secret_is_reported(database_url: str, asterisk: Asterisk) -> None:
    wrong = dataclasses.replace(asterisk.ami_config(), secret="not-the-secret")
    async for running in start_app(Endpoints(database_url=database_url, ami=wrong)):
        async with asyncio.timeout(10):
            while running.runtime.ami.state.last_error is None:
                await asyncio.sleep(0.05)
        body = await wait_for_readyz(running.client, 503, timeout=10)
        assert body["checks"]["ami"]["ok"] is False
        assert "auth" in body["checks"]["ami"]["error"].lower()


async def test_startup_objects_are_left_out_of_garbage_collection_while_running(
    database_url: str, asterisk: Asterisk
) -> None:
    gc.unfreeze()
    async for running in start_app(Endpoints(database_url=database_url, ami=asterisk.ami_config())):
        await wait_for_readyz(running.client, 200, timeout=10)
        assert gc.get_freeze_count() > 10_000  # modules, classes, metadata: never re-walked
    assert gc.get_freeze_count() == 0  # stopped: handed back to the collector
