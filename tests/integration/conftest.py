"""Fixtures that put the whole app in front of the session's real Postgres and Asterisk."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.app import Endpoints
from tests.conftest import Asterisk, RunningApp, start_app


@pytest.fixture(scope="module")
async def running_app(database_url: str, asterisk: Asterisk) -> AsyncIterator[RunningApp]:
    async for running in start_app(Endpoints(database_url=database_url, ami=asterisk.ami_config())):
        await running.runtime.ami.wait_connected(timeout=20)
        yield running


@pytest.fixture(scope="module")
def sessions(running_app: RunningApp) -> async_sessionmaker[AsyncSession]:
    factory: async_sessionmaker[AsyncSession] = running_app.app.state.sessions
    return factory


@pytest.fixture(scope="module")
def client(running_app: RunningApp) -> httpx.AsyncClient:
    return running_app.client
