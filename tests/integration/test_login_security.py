"""Logins attacked as an attacker would: parallel guesses, two API processes, bursts, and a
forged X-Forwarded-For.

Each app is served by a real uvicorn on a loopback port of its own, configured the way
``graam-pbx run`` configures it (``graam_pbx.cli.api_server_config``): that is where the trust
of forwarded headers lives. Each test's traffic leaves from a loopback source address of its
own (127.0.0.x), so the per-address limits of one test never touch another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.app import Endpoints, Runtime, create_app
from graam_pbx.auth.models import LoginAttempt
from graam_pbx.cli import api_server_config
from graam_pbx.sandbox.ports import free_port
from graam_pbx.settings import Settings
from tests.conftest import Asterisk
from tests.factories import PASSWORD, TenantWorld, make_world, unique

WRONG = "wrong guess 123"
# Outcomes of an attempt whose password was verified.
VERIFIED = {"ok", "bad-credentials", "disabled"}


class _Server(uvicorn.Server):
    """uvicorn without signal handlers of its own, saying when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()


@dataclass
class Served:
    app: FastAPI
    base_url: str

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        factory: async_sessionmaker[AsyncSession] = self.app.state.sessions
        return factory

    def client(self, source: str, **kwargs: Any) -> httpx.AsyncClient:
        """A client whose connections leave from ``source`` (a loopback address)."""
        return httpx.AsyncClient(
            base_url=self.base_url,
            transport=httpx.AsyncHTTPTransport(
                local_address=source, limits=httpx.Limits(max_connections=200)
            ),
            timeout=60,
            **kwargs,
        )


@contextlib.asynccontextmanager
async def serve(database_url: str, asterisk: Asterisk, **settings: Any) -> AsyncIterator[Served]:
    """The whole app (its workers too) behind a real uvicorn on a free loopback port."""
    with tempfile.TemporaryDirectory(prefix="graam-cdr-") as cdr_dir:
        config = Settings(
            api_host="127.0.0.1",
            api_port=free_port(),
            agi_port=free_port(),
            cdr_dir=Path(cdr_dir),
            **settings,
        )
        app = create_app(config, Endpoints(database_url=database_url, ami=asterisk.ami_config()))
        server = _Server(api_server_config(app, config, log_level="warning"))
        serving = asyncio.create_task(server.serve())
        try:
            async with asyncio.timeout(60):
                listening = asyncio.create_task(server.listening.wait())
                await asyncio.wait({serving, listening}, return_when=asyncio.FIRST_COMPLETED)
                listening.cancel()
            assert server.listening.is_set(), "uvicorn did not start"
            yield Served(app, f"http://127.0.0.1:{config.api_port}")
        finally:
            server.should_exit = True
            await serving


@pytest.fixture(scope="module")
async def served(database_url: str, asterisk: Asterisk) -> AsyncIterator[Served]:
    async with serve(database_url, asterisk) as running:
        yield running


async def world_of(served: Served) -> TenantWorld:
    # Made from an address no attack uses; its logins succeed, and success is not counted.
    async with served.client("127.0.0.2") as client:
        return await make_world(client, served.sessions)


async def attempts_of(served: Served, email: str) -> list[LoginAttempt]:
    async with served.sessions() as session:
        rows = await session.scalars(
            select(LoginAttempt).where(LoginAttempt.email == email).order_by(LoginAttempt.id)
        )
        return list(rows.all())


async def attempts_from(served: Served, address: str) -> list[LoginAttempt]:
    async with served.sessions() as session:
        rows = await session.scalars(
            select(LoginAttempt).where(LoginAttempt.address == address).order_by(LoginAttempt.id)
        )
        return list(rows.all())


def assert_refusals_say_when(responses: list[httpx.Response]) -> None:
    for response in responses:
        if response.status_code in (429, 503):
            assert int(response.headers["Retry-After"]) >= 1, response.headers
            body = response.json()
            assert set(body) == {"error_id", "message", "details"}, body
            assert body["details"]["retry_after"] >= 1


async def guess(
    client: httpx.AsyncClient, email: str, tenant: str | None, password: str = WRONG
) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/token", json={"email": email, "password": password, "tenant": tenant}
    )


async def test_parallel_guesses_verify_no_more_passwords_than_the_limit(served: Served) -> None:
    world = await world_of(served)
    email = world.agent.email
    async with served.client("127.0.0.11") as client:
        responses = await asyncio.gather(*(guess(client, email, world.slug) for _ in range(15)))
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {401, 429, 503}, statuses
        assert_refusals_say_when(responses)
        assert 1 <= statuses.count(401) <= 5, statuses
        assert statuses.count(429) >= 10 - statuses.count(503), statuses

        # Throttled: the right password is refused too, and is not verified.
        right = await guess(client, email, world.slug, PASSWORD)
        assert right.status_code == 429, right.text
        assert right.json()["error_id"] == "throttled"

    rows = await attempts_of(served, email)
    reasons = [row.reason for row in rows if row.address == "127.0.0.11"]
    verified = [reason for reason in reasons if reason in VERIFIED]
    assert len(verified) == statuses.count(401) <= 5, reasons
    assert "ok" not in reasons
    assert "pending" not in reasons  # every reserved attempt has its outcome
    # Every try is kept: each answer but a 503 before any row was reserved has its row.
    assert reasons.count("throttled") == statuses.count(429) + 1, reasons
    assert len(reasons) >= 16 - statuses.count(503), reasons


async def test_two_api_processes_share_the_limit(
    served: Served, database_url: str, asterisk: Asterisk
) -> None:
    world = await world_of(served)
    email = world.supervisor.email
    # A second app on the same database with its own engine, pool and gates: to Postgres it
    # is another process. The guesses come from two addresses, one per process.
    async with (
        serve(database_url, asterisk) as second,
        served.client("127.0.0.21") as to_first,
        second.client("127.0.0.22") as to_second,
    ):
        first_answers, second_answers = await asyncio.gather(
            asyncio.gather(*(guess(to_first, email, world.slug) for _ in range(8))),
            asyncio.gather(*(guess(to_second, email, world.slug) for _ in range(8))),
        )
    statuses = [r.status_code for r in [*first_answers, *second_answers]]
    assert set(statuses) <= {401, 429, 503}, statuses
    assert_refusals_say_when([*first_answers, *second_answers])
    assert 1 <= statuses.count(401) <= 5, statuses
    # With a limit per process each would have verified 5; shared, each refused at least 3.
    for answers in (first_answers, second_answers):
        codes = [r.status_code for r in answers]
        assert codes.count(429) + codes.count(503) >= 3, codes
    rows = [
        r for r in await attempts_of(served, email) if r.address in {"127.0.0.21", "127.0.0.22"}
    ]
    verified = [row for row in rows if row.reason in VERIFIED]
    assert len(verified) == statuses.count(401) <= 5, [row.reason for row in rows]
    assert {row.address for row in rows if row.reason == "throttled"} == {
        "127.0.0.21",
        "127.0.0.22",
    }


@pytest.mark.parametrize(
    "gates",
    [
        pytest.param({}, id="defaults"),
        # One verification at a time, a short wait and a small pool: most of the burst must
        # be turned away, and still no 500 and the other requests are served.
        pytest.param(
            {"login_concurrency": 1, "login_queue_timeout": 0.2, "db_pool_size": 4}, id="tight"
        ),
    ],
)
async def test_login_burst_answers_401_429_or_503_and_others_are_served(
    database_url: str, asterisk: Asterisk, gates: dict[str, Any]
) -> None:
    async with serve(database_url, asterisk, **gates) as app:
        world = await world_of(app)
        sources = ["127.0.0.31", "127.0.0.32", "127.0.0.33"]
        clients = [app.client(source) for source in sources]
        try:
            # 60 bad logins at once: existing accounts and unknown ones, from three addresses.
            known = [world.admin.email, world.supervisor.email, world.agent.email]
            burst = [
                guess(
                    clients[i % 3],
                    known[i % 3] if i % 2 else f"{unique('nobody')}@{world.slug}.example",
                    world.slug,
                )
                for i in range(60)
            ]
            async with app.client("127.0.0.39") as admin_client:
                admin_reads = [
                    admin_client.get("/api/v1/users", headers=world.admin.headers) for _ in range(5)
                ]
                answers = await asyncio.gather(*burst, *admin_reads)
        finally:
            for client in clients:
                await client.aclose()
    logins, reads = answers[:60], answers[60:]
    statuses = [r.status_code for r in logins]
    assert statuses.count(500) == 0, statuses
    assert set(statuses) <= {401, 429, 503}, statuses
    assert_refusals_say_when(logins)
    assert [r.status_code for r in reads] == [200] * 5, [r.text for r in reads]


async def test_pool_exhausted_is_503_with_retry_after(
    database_url: str, asterisk: Asterisk
) -> None:
    async with serve(database_url, asterisk, db_pool_size=2) as app:
        world = await world_of(app)
        # Every connection of the pool (2) held elsewhere: the request waits
        # the pool's time-out, then is told to come back.
        async with (
            app.runtime.engine.connect() as one,
            app.runtime.engine.connect() as two,
            app.client("127.0.0.41") as client,
        ):
            for connection in (one, two):
                await connection.exec_driver_sql("SELECT 1")
            response = await client.get("/api/v1/users", headers=world.admin.headers)
        assert response.status_code == 503, response.text
        assert response.json()["error_id"] == "database-busy"
        assert_refusals_say_when([response])


async def test_forged_forwarded_for_from_loopback_does_not_escape_the_address_limit(
    served: Served,
) -> None:
    world = await world_of(served)
    source = "127.0.0.1"  # where uvicorn's own default believes the header from
    async with served.client(source) as client:
        answers = []
        for n in range(25):
            # A different forged client every time, as the attacker of the issue did.
            forged = {"X-Forwarded-For": f"127.200.{n}.{n + 1}", "X-Real-IP": f"127.201.0.{n}"}
            answers.append(
                await client.post(
                    "/api/v1/auth/token",
                    json={
                        "email": f"{unique('nobody')}@{world.slug}.example",
                        "password": WRONG,
                        "tenant": world.slug,
                    },
                    headers=forged,
                )
            )
        statuses = [r.status_code for r in answers]
        assert statuses == [401] * 20 + [429] * 5, statuses
        assert answers[-1].json()["details"]["per"] == "address"
        assert_refusals_say_when(answers)

    assert {row.address for row in await attempts_from(served, source)} == {source}

    # A throttled account stays throttled whatever address it claims.
    async with served.client("127.0.0.52") as client:
        for n in range(5):
            wrong = await client.post(
                "/api/v1/auth/token",
                json={
                    "email": world.admin.email,
                    "password": WRONG,
                    "tenant": world.slug,
                },
                headers={"X-Forwarded-For": f"127.203.0.{n}"},
            )
            assert wrong.status_code == 401
    async with served.client("127.0.0.53") as client:
        right = await client.post(
            "/api/v1/auth/token",
            json={"email": world.admin.email, "password": PASSWORD, "tenant": world.slug},
            headers={"X-Forwarded-For": "127.204.0.1"},
        )
        assert right.status_code == 429, right.text
        assert right.json()["details"]["per"] == "account"
    addresses = {row.address for row in await attempts_of(served, world.admin.email)}
    assert addresses == {"127.0.0.2", "127.0.0.52", "127.0.0.53"}  # make_world's login first


async def test_forwarded_for_is_used_from_a_trusted_proxy_only(
    database_url: str, asterisk: Asterisk
) -> None:
    proxy, other = "127.0.0.61", "127.0.0.62"
    async with serve(database_url, asterisk, trusted_proxies=[proxy]) as app:
        world = await world_of(app)
        async with app.client(proxy) as through_proxy:
            statuses = []
            for n in range(25):
                # The proxy appends the client it saw; what the client sent comes before.
                header = f"127.9.9.9, 127.210.0.{n + 1}"
                response = await through_proxy.post(
                    "/api/v1/auth/token",
                    json={
                        "email": f"{unique('nobody')}@{world.slug}.example",
                        "password": WRONG,
                        "tenant": world.slug,
                    },
                    headers={"X-Forwarded-For": header},
                )
                statuses.append(response.status_code)
        # 25 clients behind the proxy, one failure each: none is throttled by address.
        assert statuses == [401] * 25, statuses
        async with app.client(other) as direct:
            forged = await direct.post(
                "/api/v1/auth/token",
                json={"email": "someone@x.example", "password": WRONG},
                headers={"X-Forwarded-For": "127.211.0.1"},
            )
            assert forged.status_code == 401
        async with app.sessions() as session:
            rows = (
                await session.scalars(
                    select(LoginAttempt.address).where(
                        LoginAttempt.tenant_slug == world.slug,
                        LoginAttempt.email.like("nobody%"),
                    )
                )
            ).all()
        assert sorted(str(row) for row in rows) == sorted(f"127.210.0.{n + 1}" for n in range(25))
        assert {row.address for row in await attempts_from(app, other)} == {other}
        assert await attempts_from(app, proxy) == []
        assert await attempts_from(app, "127.9.9.9") == []
