"""Small factories: tenants with a user per role, each logged in, through the real API."""

from __future__ import annotations

import itertools
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.auth import service as auth_service

PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)

# Strings that must never reach a config file or a dial string unchecked; every test of
# hostile input takes them from here.
HOSTILE: list[str] = [
    *json.loads((Path(__file__).parent / "data" / "hostile_strings.json").read_text()),
    "x" * 10_000,
    "1" * 10_000,
]

# Alphabets fields document, written out apart from the validators: a hostile string inside
# one is a legitimate value of such a field, and must be taken.
NAME_ALPHABET = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
PIN_ALPHABET = re.compile(r"[0-9]{4,12}")


def fields_of(response: httpx.Response) -> set[str]:
    """The fields a 422 names."""
    return {error["field"] for error in response.json()["details"]["errors"]}


def unique(prefix: str) -> str:
    """A name no other test uses: tests share one database per module."""
    return f"{prefix}{next(_counter)}-{uuid.uuid4().hex[:6]}"


@dataclass
class Actor:
    user_id: int
    email: str
    role: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class TenantWorld:
    """One tenant and one logged-in user per role."""

    tenant_id: int
    slug: str
    admin: Actor
    supervisor: Actor
    agent: Actor
    operator: Actor
    extra: dict[str, Actor] = field(default_factory=dict)

    def actor(self, role: str) -> Actor:
        return getattr(self, role)  # type: ignore[no-any-return]

    @property
    def operator_headers(self) -> dict[str, str]:
        """The operator acting in this tenant."""
        return {**self.operator.headers, "X-Graam-Tenant": str(self.tenant_id)}

    def headers(self, role: str) -> dict[str, str]:
        return self.operator_headers if role == "operator" else self.actor(role).headers


async def login(client: httpx.AsyncClient, email: str, tenant: str | None) -> str:
    response = await client.post(
        "/api/v1/auth/token", json={"email": email, "password": PASSWORD, "tenant": tenant}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def make_operator(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> Actor:
    email = f"{unique('op')}@operator.example"
    async with sessions() as session, session.begin():
        user = await auth_service.create_operator(session, email, "Operator", PASSWORD)
    return Actor(user.id, email, "operator", await login(client, email, None))


async def make_world(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], *, licences: int = 5
) -> TenantWorld:
    """A new tenant made by a new operator, with an admin, a supervisor and an agent."""
    operator = await make_operator(client, sessions)
    slug = unique("t")
    created = await client.post(
        "/api/v1/tenants",
        headers=operator.headers,
        json={
            "slug": slug,
            "name": f"Tenant {slug}",
            "country": "FR",
            "timezone": "Europe/Paris",
            "licences": licences,
        },
    )
    assert created.status_code == 201, created.text
    tenant_id = created.json()["id"]
    actors = {}
    for role in ("admin", "supervisor", "agent"):
        email = f"{role}@{slug}.example"
        made = await client.post(
            "/api/v1/users",
            headers={**operator.headers, "X-Graam-Tenant": str(tenant_id)},
            json={"email": email, "display_name": role.title(), "role": role, "password": PASSWORD},
        )
        assert made.status_code == 201, made.text
        actors[role] = Actor(made.json()["id"], email, role, await login(client, email, slug))
    return TenantWorld(tenant_id=tenant_id, slug=slug, operator=operator, **actors)


async def browser_device(
    client: httpx.AsyncClient,
    world: TenantWorld,
    extension: str,
    name: str = "browser",
    *,
    user_id: int | None = None,
) -> dict[str, Any]:
    """A browser phone (transport webrtc) of the tenant's agent (or of ``user_id``: its
    supervisor, its admin), made through the API, with its generated password (shown once)."""
    made = await client.post(
        "/api/v1/devices",
        headers=world.admin.headers,
        json={
            "user_id": world.agent.user_id if user_id is None else user_id,
            "name": name,
            "extension": extension,
            "transport": "webrtc",
        },
    )
    assert made.status_code == 201, made.text
    device: dict[str, Any] = made.json()
    return device
