"""Session-wide real servers: one embedded Postgres and one Asterisk sandbox per test session.

Tests that need them fail (never skip) when they cannot be had: evidence that a feature works
comes from the real parts.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from graam_pbx.ami import AmiConfig
from graam_pbx.app import Endpoints, Runtime, create_app
from graam_pbx.db import migrate
from graam_pbx.sandbox import SandboxError
from graam_pbx.sandbox.asterisk import AsteriskSandbox, AsteriskSandboxConfig, SandboxInfo
from graam_pbx.sandbox.ports import free_port
from graam_pbx.sandbox.postgres import EmbeddedPostgres, EmbeddedPostgresConfig
from graam_pbx.settings import Settings


@pytest.fixture(scope="session")
def servers_dir() -> Iterator[Path]:
    # Outside pytest's numbered temp dirs: another pytest session on the machine rotates
    # those away, and the servers' data must outlive any of them.
    directory = Path(tempfile.mkdtemp(prefix="graam-test-servers-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
async def postgres(servers_dir: Path) -> AsyncIterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(EmbeddedPostgresConfig(servers_dir / "postgres", port=free_port()))
    try:
        await server.start()
    except SandboxError as err:
        pytest.fail(f"embedded Postgres unavailable: {err}")
    yield server
    await server.stop()


async def create_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture(scope="module")
async def empty_database_url(
    postgres: EmbeddedPostgres, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """A fresh, empty database for one test module."""
    module = re.sub(r"[^a-z0-9]", "_", request.module.__name__.rsplit(".", 1)[-1].lower())
    name = f"t_{module[:40]}_{uuid.uuid4().hex[:6]}"
    await create_database(postgres.url(), name)
    yield postgres.url(name)
    await drop_database(postgres.url(), name)


@pytest.fixture(scope="module")
async def database_url(empty_database_url: str) -> str:
    """A fresh database for one test module, migrated to head."""
    await migrate(empty_database_url)
    return empty_database_url


@dataclass
class Asterisk:
    """The session's Asterisk sandbox and how to reach it."""

    sandbox: AsteriskSandbox
    info: SandboxInfo
    sip_port: int

    def ami_config(self, **overrides: float) -> AmiConfig:
        base = AmiConfig.from_settings(
            Settings(
                ami_host="127.0.0.1",
                ami_port=self.info.ami_port,
                ami_username=self.info.ami_username,
                ami_secret=self.info.ami_secret,
                ami_backoff_max=0.5,
                ami_ping_interval=1.0,
                ami_ping_timeout=2.0,
            )
        )
        return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]

    async def restart(self) -> None:
        await self.sandbox.stop()
        self.info = await self.sandbox.start()


@pytest.fixture(scope="session")
async def asterisk(servers_dir: Path) -> AsyncIterator[Asterisk]:
    sip_port = free_port(socket.SOCK_DGRAM)
    sandbox = AsteriskSandbox(
        AsteriskSandboxConfig(
            rootfs=Settings().asterisk_rootfs,
            state_dir=servers_dir / "asterisk",
            ami_port=free_port(),
            ami_username="graam-test",
            sip_port=sip_port,
            http_port=free_port(),
        )
    )
    try:
        info = await sandbox.start()
    except SandboxError as err:
        pytest.fail(f"Asterisk sandbox unavailable: {err}")
    yield Asterisk(sandbox=sandbox, info=info, sip_port=sip_port)
    await sandbox.stop()


@dataclass
class RunningApp:
    app: FastAPI
    client: httpx.AsyncClient

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime


def unstarted_app() -> FastAPI:
    """The app with its lifespan not started: its routes and OpenAPI document, for requests
    that reach no server (no database, no Asterisk is ever connected to)."""
    settings = Settings(ami_secret="unused")
    return create_app(
        settings,
        Endpoints(
            database_url="postgresql://127.0.0.1/unused", ami=AmiConfig.from_settings(settings)
        ),
    )


async def start_app(
    endpoints: Endpoints, settings: Settings | None = None
) -> AsyncIterator[RunningApp]:
    """The app with its lifespan running, and an in-process HTTP client.

    Its FastAGI server takes a free port and its CDR journal a directory of its own unless
    ``settings`` name them: test sessions run beside each other and beside a ``make run``.
    """
    with tempfile.TemporaryDirectory(prefix="graam-cdr-") as cdr_dir:
        settings = settings or Settings(
            agi_port=free_port(),
            cdr_dir=Path(cdr_dir),
            queue_calls_dir=Path(cdr_dir) / "queue-calls",
            # Nodes registered by a test get their files here (asterisk/nodes.py).
            nodes_files_dir=Path(cdr_dir) / "nodes",
            recordings_dir=Path(cdr_dir) / "recordings",
            # The billing scheduler's pass runs once at start; billing tests run the parts
            # they test themselves, so no later pass races them.
            billing_interval=86_400,
            # Tests add queue members straight through AMI, with no session: the agent
            # worker's periodic full comparison (every minute by default) would remove one
            # between its QueueAdd and the call. Passes after logins and AMI reconnects stay.
            agent_reconcile_interval=86_400,
            # Tests' webhook receivers are on loopback, which an operator must allow; their
            # retries come after a fifth of a second, not ten.
            webhooks_allowed_networks=["127.0.0.0/8"],
            webhooks_retry_base=0.2,
        )
        app = create_app(settings, endpoints)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://graam.test"
            ) as client:
                yield RunningApp(app=app, client=client)


@pytest.fixture(autouse=True)
def _no_stray_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's GRAAM_* variables must not leak into the tests' own settings.
    for key in list(os.environ):
        if key.startswith("GRAAM_"):
            monkeypatch.delenv(key)
