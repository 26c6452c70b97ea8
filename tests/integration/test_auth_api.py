"""Logins, tokens, API keys, throttling and users through the real API and database."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.auth.models import LoginAttempt
from graam_pbx.fields import MAX_ID
from graam_pbx.rest import encode_cursor
from tests.factories import PASSWORD, fields_of, make_world


async def test_login_refresh_and_me(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    response = await client.post(
        "/api/v1/auth/token",
        json={"email": world.admin.email, "password": PASSWORD, "tenant": world.slug},
    )
    assert response.status_code == 200
    tokens = response.json()
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.json()["role"] == "admin"
    assert me.json()["tenant_id"] == world.tenant_id
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200
    again = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert again.status_code == 401  # a refresh token works once


async def test_wrong_password_and_wrong_tenant_are_refused_and_kept(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    wrong = await client.post(
        "/api/v1/auth/token",
        json={"email": world.admin.email, "password": "not the password", "tenant": world.slug},
    )
    assert wrong.status_code == 401
    assert wrong.json()["error_id"] == "login-failed"
    cross = await client.post(
        "/api/v1/auth/token",
        json={"email": world.admin.email, "password": PASSWORD, "tenant": other.slug},
    )
    assert cross.status_code == 401
    async with sessions() as session:
        reasons = (
            await session.scalars(
                select(LoginAttempt.reason).where(LoginAttempt.email == world.admin.email)
            )
        ).all()
    assert "bad-credentials" in reasons and "ok" in reasons


async def test_failed_logins_are_throttled_per_account(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    body = {"email": world.agent.email, "password": "wrong wrong wrong", "tenant": world.slug}
    codes = [(await client.post("/api/v1/auth/token", json=body)).status_code for _ in range(6)]
    assert codes[:5] == [401] * 5
    assert codes[5] == 429
    good = {**body, "password": PASSWORD}
    throttled = await client.post("/api/v1/auth/token", json=good)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"]
    async with sessions() as session:
        count = await session.scalar(
            select(func.count()).where(
                LoginAttempt.email == world.agent.email, LoginAttempt.reason == "throttled"
            )
        )
    assert count == 2


async def test_api_key_acts_as_its_user_until_revoked(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    made = await client.post(
        "/api/v1/auth/api-keys", headers=world.admin.headers, json={"name": "crm-sync"}
    )
    assert made.status_code == 201
    key = made.json()["key"]
    as_key = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/api/v1/users", headers=as_key)).status_code == 200
    revoked = await client.delete(
        f"/api/v1/auth/api-keys/{made.json()['id']}", headers=world.admin.headers
    )
    assert revoked.status_code == 204
    assert (await client.get("/api/v1/users", headers=as_key)).status_code == 401


async def test_user_update_with_stale_etag_is_refused(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    url = f"/api/v1/users/{world.agent.user_id}"
    first = await client.get(url, headers=world.admin.headers)
    etag = first.headers["ETag"]
    ok = await client.patch(
        url, headers={**world.admin.headers, "If-Match": etag}, json={"display_name": "Agent One"}
    )
    assert ok.status_code == 200
    assert ok.headers["ETag"] != etag
    stale = await client.patch(
        url, headers={**world.admin.headers, "If-Match": etag}, json={"display_name": "Agent Two"}
    )
    assert stale.status_code == 412
    assert stale.json()["error_id"] == "precondition-failed"


async def test_duplicate_email_is_a_conflict(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    body = {
        "email": world.agent.email,
        "display_name": "Twin",
        "role": "agent",
        "password": PASSWORD,
    }
    response = await client.post("/api/v1/users", headers=world.admin.headers, json=body)
    assert response.status_code == 409
    assert response.json()["details"]["field"] == "email"


async def test_validation_error_names_the_field(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    response = await client.post(
        "/api/v1/users",
        headers=world.admin.headers,
        json={
            "email": "not-an-email",
            "display_name": "X\nY",
            "role": "agent",
            "password": "short",
        },
    )
    assert response.status_code == 422
    fields = {error["field"] for error in response.json()["details"]["errors"]}
    assert {"body.email", "body.display_name", "body.password"} <= fields


async def test_licences_change_is_audited(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions, licences=3)
    url = f"/api/v1/tenants/{world.tenant_id}/licences"
    assert (await client.get(url, headers=world.admin.headers)).json() == {
        "tenant_id": world.tenant_id,
        "licences": 3,
        "in_use": 0,
        "licence_ceiling": None,
    }
    changed = await client.put(url, headers=world.admin.headers, json={"licences": 7})
    assert changed.json()["licences"] == 7
    assert (
        await client.put(url, headers=world.supervisor.headers, json={"licences": 9})
    ).status_code == 403
    audit = await client.get(
        "/api/v1/audit", headers=world.admin.headers, params={"object_type": "tenant"}
    )
    entries = [e for e in audit.json()["items"] if e["action"] == "set-licences"]
    assert entries[-1]["changes"] == {"licences": {"from": 3, "to": 7}}
    assert entries[-1]["actor_label"] == world.admin.email


async def test_ids_beyond_a_bigint_are_refused_by_name(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    admin, operator = world.admin.headers, world.operator.headers
    cases: list[tuple[str, str, dict[str, str], dict[str, Any] | None, str]] = [
        ("GET", f"/api/v1/users/{2**80}", admin, None, "path.user_id"),
        ("PATCH", f"/api/v1/users/{MAX_ID + 1}", admin, {}, "path.user_id"),
        ("DELETE", "/api/v1/users/0", admin, None, "path.user_id"),
        ("DELETE", f"/api/v1/auth/api-keys/{2**80}", admin, None, "path.key_id"),
        ("GET", f"/api/v1/tenants/{2**80}", operator, None, "path.tenant_id"),
        ("PATCH", f"/api/v1/tenants/{MAX_ID + 1}", operator, {}, "path.tenant_id"),
        ("GET", f"/api/v1/tenants/{2**80}/licences", admin, None, "path.tenant_id"),
        ("PUT", "/api/v1/tenants/0/licences", admin, {"licences": 1}, "path.tenant_id"),
    ]
    for method, url, headers, body, field in cases:
        response = await client.request(method, url, headers=headers, json=body)
        assert response.status_code == 422, (method, url, response.text)
        assert fields_of(response) == {field}, (method, url)
    # The largest bigint is an id like any other: here, of nothing.
    for url in (f"/api/v1/users/{MAX_ID}", f"/api/v1/tenants/{MAX_ID}"):
        headers = admin if "users" in url else operator
        assert (await client.get(url, headers=headers)).status_code == 404, url
    gone = await client.delete(f"/api/v1/auth/api-keys/{MAX_ID}", headers=admin)
    assert gone.status_code == 404


async def test_a_cursor_beyond_a_bigint_is_refused(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    for after in (MAX_ID + 1, 2**80):
        response = await client.get(
            "/api/v1/users", headers=world.admin.headers, params={"cursor": encode_cursor(after)}
        )
        assert response.status_code == 422, response.text
        assert fields_of(response) == {"query.cursor"}
    last = await client.get(
        "/api/v1/users", headers=world.admin.headers, params={"cursor": encode_cursor(MAX_ID)}
    )
    assert last.status_code == 200, last.text
    assert last.json()["items"] == []


async def test_a_tenant_header_beyond_a_bigint_is_refused(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    for value in ("0", "-1", str(MAX_ID + 1), str(2**80)):
        response = await client.get(
            "/api/v1/users", headers={**world.operator.headers, "X-Graam-Tenant": value}
        )
        assert response.status_code == 422, (value, response.text)
        assert fields_of(response) == {"header.x-graam-tenant"}, value
    nowhere = await client.get(
        "/api/v1/users", headers={**world.operator.headers, "X-Graam-Tenant": str(MAX_ID)}
    )
    assert nowhere.status_code == 404


async def test_explicit_null_on_a_user_field_is_refused_by_name(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    url = f"/api/v1/users/{world.agent.user_id}"
    before = (await client.get(url, headers=world.admin.headers)).json()
    for field in ("email", "display_name", "role", "disabled", "password"):
        response = await client.patch(url, headers=world.admin.headers, json={field: None})
        assert response.status_code == 422, (field, response.text)
        assert fields_of(response) == {f"body.{field}"}, field
    assert (await client.get(url, headers=world.admin.headers)).json() == before


async def test_explicit_null_on_a_tenant_field_is_refused_by_name(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    url = f"/api/v1/tenants/{world.tenant_id}"
    operator = world.operator.headers
    before = (await client.get(url, headers=operator)).json()
    for field in ("name", "country", "timezone", "plan", "status"):
        response = await client.patch(url, headers=operator, json={field: None})
        assert response.status_code == 422, (field, response.text)
        assert fields_of(response) == {f"body.{field}"}, field
    assert (await client.get(url, headers=operator)).json() == before
    # The last day is the one field that may be cleared.
    cleared = await client.patch(url, headers=operator, json={"ends_on": None})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["ends_on"] is None
