"""The first run on an empty database: an operator and a demo tenant that work at once."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents.models import AgentDevice
from graam_pbx.app import Endpoints, create_app
from graam_pbx.db import create_engine, migrate, session_factory
from graam_pbx.settings import Settings
from graam_pbx.tenants.flows import DEMO_CATALOGUE, first_run
from tests.conftest import Asterisk


@pytest.fixture
async def fresh_database(empty_database_url: str) -> str:
    await migrate(empty_database_url)
    return empty_database_url


async def test_first_run_makes_working_credentials_once(
    fresh_database: str, asterisk: Asterisk
) -> None:
    engine = create_engine(fresh_database, pool_size=2)
    sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
    async with sessions() as session, session.begin():
        made = await first_run(session)
    async with sessions() as session, session.begin():
        assert await first_run(session) is None  # only on an empty database
    assert made is not None
    roles = sorted(login.role for login in made.tenant.logins)
    assert roles == ["admin", "agent", "agent", "supervisor"]
    assert [entry.e164 for entry in made.catalogue] == [e164 for e164, _ in DEMO_CATALOGUE]
    async with sessions() as session:
        for phone in made.tenant.phones:
            ha1 = await session.scalar(
                select(AgentDevice.password_ha1).where(
                    AgentDevice.sip_username == phone.sip_username
                )
            )
            expected = f"{phone.sip_username}:graam:{phone.password}"
            assert ha1 == hashlib.md5(expected.encode()).hexdigest()  # noqa: S324 - SIP HA1
    await engine.dispose()

    app = create_app(Settings(), Endpoints(database_url=fresh_database, ami=asterisk.ami_config()))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://graam.test"
        ) as client,
    ):
        operator = await client.post(
            "/api/v1/auth/token",
            json={"email": made.operator.email, "password": made.operator.password},
        )
        assert operator.status_code == 200
        for login in made.tenant.logins:
            response = await client.post(
                "/api/v1/auth/token",
                json={"email": login.email, "password": login.password, "tenant": made.tenant.slug},
            )
            assert response.status_code == 200, login
        admin = next(login for login in made.tenant.logins if login.role == "admin")
        token = (
            await client.post(
                "/api/v1/auth/token",
                json={
                    "email": admin.email,
                    "password": admin.password,
                    "tenant": made.tenant.slug,
                },
            )
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for path in (
            "/api/v1/queues",
            "/api/v1/ivrs",
            "/api/v1/numbers",
            "/api/v1/devices",
            "/api/v1/inbound-routes",
            "/api/v1/voicemail-boxes",
        ):
            items = (await client.get(path, headers=headers)).json()["items"]
            assert len(items) >= 1, path
        # A fresh install has numbers for sale: the demo catalogue, every kind sold.
        for_sale = await client.get(
            "/api/v1/numbers/available", headers=headers, params={"country": "FR", "limit": 100}
        )
        assert for_sale.status_code == 200, for_sale.text
        available = for_sale.json()["items"]
        assert sorted(n["e164"] for n in available) == sorted(e164 for e164, _ in DEMO_CATALOGUE)
        assert {n["number_type"] for n in available} == {
            "geographic",
            "mobile",
            "toll_free",
            "national",
        }
        bought = await client.post(
            "/api/v1/numbers", headers=headers, json={"e164": available[0]["e164"]}
        )
        assert bought.status_code == 201, bought.text
