"""API fuzz: schemathesis over every operation of the OpenAPI document, as a tenant's admin.

The app runs as a real uvicorn server on a free loopback port (in a thread with its own event
loop, since schemathesis calls it synchronously), in front of the session's real Postgres and
Asterisk, like every integration test. Each operation gets its documented examples,
schemathesis' coverage cases (boundaries, missing and wrong-typed values) and
``MAX_EXAMPLES`` generated requests, valid and invalid, as the admin of a tenant of its own.
Every response must pass schemathesis' checks; the ones switched off are in ``CHECKS_OFF``
below, each with its reason, and nowhere else (one check is narrowed for one kind of case,
next to it, with its reason). Schemathesis builds its cases when the tests are collected,
before the tenant exists: it sends a fixed credential, which the server's front door
(``AdminCredential``) swaps for the admin's real access token.

Nothing leaves loopback: the server binds 127.0.0.1, Asterisk is the session's sandbox (the
generated configuration is not written, as in every integration test, so no trunk a request
invents is ever registered or called), no SMTP relay is set, and the server's event loop
resolves numeric addresses only (a trunk's host name the fuzz invents is never looked up in
DNS: the lookup fails as for a name that does not exist).

Run it alone: ``.venv/bin/python -m pytest tests/integration/test_api_fuzz.py -q``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import threading
from collections import Counter
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import schemathesis
import uvicorn
from fastapi import FastAPI
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import negative_data_rejection
from starlette.types import ASGIApp, Receive, Scope, Send

from graam_pbx.app import Endpoints, create_app
from graam_pbx.sandbox.ports import free_port
from graam_pbx.settings import Settings
from tests.conftest import Asterisk, unstarted_app
from tests.factories import TenantWorld, make_world

T = TypeVar("T")

# Generated requests per operation (schemathesis' fuzzing phase), besides the examples and
# the coverage cases: bounds the whole fuzz to a few minutes on two cores. The seed is fixed
# so that every run sends the same requests; FUZZ_EXAMPLES and FUZZ_SEED dig deeper by hand.
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))
SEED = int(os.environ.get("FUZZ_SEED", "14"))

# The one place where a schemathesis check is switched off, and why. Every other check runs.
CHECKS_OFF: dict[str, str] = {
    # Valid by the schema is not acceptable by the data: ids the tenant does not hold (404),
    # a number already taken (409), a cursor this API never returned, an ETag of another
    # version (412), a password that is not the caller's. Those answers are documented and
    # the checks below hold them to the error shape.
    "positive_data_acceptance": "valid requests about objects that do not exist are refused",
    # Needs objects created by an earlier call of the same run (stateful testing): the fuzz
    # creates none on purpose, each operation is fuzzed on its own.
    "use_after_free": "no stateful phase (links between operations are not described)",
    "ensure_resource_availability": "no stateful phase (links between operations are not "
    "described)",
}


# One check narrowed for one kind of case, and why.
# negative_data_rejection, for a request whose only flaw is an extra header schemathesis
# invents (``x-schemathesis-unknown-property``): HTTP says a recipient ignores a header field
# it does not know (RFC 9110, 5.1), so accepting it is right. Every other negative case keeps
# the check.
UNKNOWN_HEADER = "x-schemathesis-unknown-property"


def _only_flaw_is_an_unknown_header(case: Any) -> bool:
    meta = case.meta
    if meta is None or not any(name.lower() == UNKNOWN_HEADER for name in case.headers or {}):
        return False
    negative = {
        location for location, component in meta.components.items() if component.mode.is_negative
    }
    return negative == {ParameterLocation.HEADER}


class LoopbackOnlyLoop(asyncio.SelectorEventLoop):
    """An event loop that resolves numeric addresses only: no name is looked up in DNS."""

    async def getaddrinfo(self, host: Any, port: Any, **kwargs: Any) -> Any:
        flags = kwargs.pop("flags", 0) | socket.AI_NUMERICHOST
        return await super().getaddrinfo(host, port, flags=flags, **kwargs)


# The admin's credential as schemathesis sends it. Its value must be known when the tests are
# collected (schemathesis builds its cases then), before any tenant exists: the server's
# front door swaps it for the admin's real token, made by the fixture.
ADMIN_AUTHORIZATION = "Bearer fuzz-admin"


class AdminCredential:
    """In front of the app: ``ADMIN_AUTHORIZATION`` becomes the admin's access token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.token = ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.token:
            headers = [
                (name, f"Bearer {self.token}".encode())
                if name == b"authorization" and value == ADMIN_AUTHORIZATION.encode()
                else (name, value)
                for name, value in scope["headers"]
            ]
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


class ServerThread:
    """The app under uvicorn on 127.0.0.1, in a thread with an event loop of its own."""

    def __init__(self, app: FastAPI, served: ASGIApp) -> None:
        self.app = app
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                served,
                host="127.0.0.1",
                port=self.port,
                lifespan="on",
                log_level="warning",
                proxy_headers=False,
                access_log=False,
            )
        )
        self.loop = LoopbackOnlyLoop()
        self.thread = threading.Thread(target=self._run, name="fuzz-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve())

    def start(self, timeout: float = 60.0) -> None:
        self.thread.start()

        async def listening() -> None:
            while not self.server.started:  # uvicorn has no event for it
                await asyncio.sleep(0.05)

        self.run(listening(), timeout)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Runs ``coroutine`` on the server's loop and waits for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self, timeout: float = 60.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.loop.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def fuzz_target(
    database_url: str, asterisk: Asterisk
) -> Iterator[tuple[ServerThread, TenantWorld]]:
    with tempfile.TemporaryDirectory(prefix="graam-cdr-") as cdr_dir:
        settings = Settings(agi_port=free_port(), cdr_dir=Path(cdr_dir))
        endpoints = Endpoints(
            database_url=database_url,
            ami=asterisk.ami_config(),
            # The sandbox's own spool: a box's messages are listed (none), never a 503.
            voicemail_spool=asterisk.sandbox.spool_dir / "voicemail",
        )
        app = create_app(settings, endpoints)
        credential = AdminCredential(app)
        server = ServerThread(app, credential)
        server.start()
        try:
            server.run(app.state.runtime.ami.wait_connected(timeout=20))
            world = server.run(_make_world(app))
            credential.token = world.admin.token
            yield server, world
        finally:
            server.stop()


async def _make_world(app: FastAPI) -> TenantWorld:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://graam.test"
    ) as client:
        return await make_world(client, app.state.sessions)


DOCUMENT: dict[str, Any] = unstarted_app().openapi()
# Operations that stream until the client leaves (Server-Sent Events): a request of the fuzz
# would never end. tests/integration/test_event_stream.py tests them over a real connection.
STREAMS = sorted(
    path
    for path, item in DOCUMENT["paths"].items()
    for operation in item.values()
    if "text/event-stream" in operation["responses"].get("200", {}).get("content", {})
)

schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=SchemathesisConfig.from_dict(
        {
            "headers": {"Authorization": ADMIN_AUTHORIZATION},
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "generation": {"max-examples": MAX_EXAMPLES, "mode": "all", "database": "none"},
            "checks": {name: {"enabled": False} for name in CHECKS_OFF},
            "seed": SEED,
        }
    ),
).exclude(path=STREAMS)


# Answers by status, over the whole fuzz.
_statuses: Counter[int] = Counter()


@schema.parametrize()
def test_operation(case: Any, fuzz_target: tuple[ServerThread, TenantWorld]) -> None:
    server, _ = fuzz_target
    # The credential also passed here: schemathesis then knows it is the caller's own, and
    # checks that leaving it out, or sending a wrong one, is refused (ignored_auth).
    response = case.call_and_validate(
        base_url=server.base_url,
        headers={"Authorization": ADMIN_AUTHORIZATION},
        excluded_checks=[negative_data_rejection] if _only_flaw_is_an_unknown_header(case) else [],
    )
    _statuses[response.status_code] += 1


def test_the_fuzz_runs_as_the_admin(fuzz_target: tuple[ServerThread, TenantWorld]) -> None:
    server, world = fuzz_target
    me = httpx.get(
        f"{server.base_url}/api/v1/auth/me", headers={"Authorization": ADMIN_AUTHORIZATION}
    )
    assert me.status_code == 200, me.text
    assert me.json()["user_id"] == world.admin.user_id, me.text
    # After the fuzz (same module, collected before it): its answers by status (pytest -s).
    print("fuzz answers by status:", dict(sorted(_statuses.items())))
