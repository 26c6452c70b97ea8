"""Fixtures that put the whole app in front of the session's real Postgres and Asterisk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.app import Endpoints, Runtime, create_app
from graam_pbx.settings import Settings
from tests.conftest import Asterisk


@dataclass
class RunningApp:
    app: FastAPI
    client: httpx.AsyncClient

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime


async def start_app(endpoints: Endpoints) -> AsyncIterator[RunningApp]:
    """The app with its lifespan running, and an in-process HTTP client."""
    app = create_app(Settings(), endpoints)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://graam.test") as client:
            yield RunningApp(app=app, client=client)


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
