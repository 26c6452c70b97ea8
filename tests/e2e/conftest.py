"""Call flows through the real Asterisk: one control plane for the whole session.

One database and one app with its config applier feed the session's Asterisk sandbox (its
generated directory holds one database's tenants); each test makes its own tenant, numbers
and phones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.app import Endpoints
from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.db import migrate
from graam_pbx.sandbox.postgres import EmbeddedPostgres
from tests.conftest import Asterisk, RunningApp, create_database, start_app
from tests.e2e.sipp import SippPool


@pytest.fixture(scope="session")
async def pbx(postgres: EmbeddedPostgres, asterisk: Asterisk) -> AsyncIterator[RunningApp]:
    await create_database(postgres.url(), "pbx")
    url = postgres.url("pbx")
    await migrate(url)
    endpoints = Endpoints(
        database_url=url,
        ami=asterisk.ami_config(),
        config_dir=asterisk.info.config_dir,
        sounds_dir=asterisk.info.sounds_dir,
        voicemail_spool=asterisk.sandbox.spool_dir / "voicemail",
        queue_log=asterisk.sandbox.log_dir / "queue_log",
        phone_websocket=asterisk.sandbox.websocket_url(),
        recordings_spool=asterisk.sandbox.recordings_spool(),
    )
    async for running in start_app(endpoints):
        await running.runtime.ami.wait_connected(timeout=20)
        yield running


@pytest.fixture
def client(pbx: RunningApp) -> httpx.AsyncClient:
    return pbx.client


@pytest.fixture
def sessions(pbx: RunningApp) -> async_sessionmaker[AsyncSession]:
    factory: async_sessionmaker[AsyncSession] = pbx.app.state.sessions
    return factory


@pytest.fixture
def applier(pbx: RunningApp) -> ConfigApplier:
    assert pbx.runtime.applier is not None
    return pbx.runtime.applier


@pytest.fixture
async def sipp(tmp_path: Path, asterisk: Asterisk) -> AsyncIterator[SippPool]:
    """sipp phones and carriers of one test, each stopped at its end."""
    pool = SippPool(tmp_path, f"127.0.0.1:{asterisk.sip_port}")
    yield pool
    await pool.close()
