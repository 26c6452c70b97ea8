"""A process of one role (``create_app`` with its own engine, AMI connection and LISTEN
connection) beside the session's, on a database of the test's choosing."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import cast

import httpx

from graam_pbx.app import Endpoints
from graam_pbx.sandbox.ports import free_port
from graam_pbx.settings import ProcessRole, Settings
from tests.conftest import Asterisk, RunningApp, start_app


@contextlib.asynccontextmanager
async def role_process(
    role: ProcessRole,
    database_url: str,
    asterisk: Asterisk,
    workdir: Path,
    *,
    name: str,
    lease_interval: float,
    dialer_node: str = "",
    config_dir: Path | None = None,
) -> AsyncIterator[RunningApp]:
    """A process of ``role`` named ``name-role`` (its secret key: the same data dir); its
    dialer's name ``dialer_node`` (the host's when empty), its generated Asterisk config in
    ``config_dir`` (none when None)."""
    settings = Settings(
        role=role,
        worker_lease_interval=lease_interval,
        worker_name=f"{name}-{role.value}",
        dialer_node=dialer_node,
        agi_port=free_port(),
        cdr_dir=workdir / "cdr",
        queue_calls_dir=workdir / "queue-calls",
        billing_interval=86_400,
    )
    endpoints = Endpoints(
        database_url=database_url, ami=asterisk.ami_config(), config_dir=config_dir
    )
    process = cast(AsyncGenerator[RunningApp, None], start_app(endpoints, settings))
    try:
        yield await anext(process)
    finally:
        await process.aclose()


async def is_active(client: httpx.AsyncClient) -> bool:
    """Whether the process behind ``client`` is ready and its worker the active one."""
    body = (await client.get("/readyz")).json()
    return bool(body["status"] == "ready" and body["checks"]["worker"]["active"])
