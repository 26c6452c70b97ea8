"""Attacks on passwords, tokens and API keys, through the real API and database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit.models import AuditEntry
from graam_pbx.auth import service as auth_service
from graam_pbx.auth.models import ApiKey, LoginAttempt, RefreshToken
from graam_pbx.errors import Invalid
from tests.factories import PASSWORD, TenantWorld, fields_of, make_world, unique

Sessions = async_sessionmaker[AsyncSession]

NEW_PASSWORD = "plum violin sunrise gravel"
WEAK = ["            ", "aaaaaaaaaaaa", "password1234", "qwertyuiopas", "123456789012"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def reason_of(response: httpx.Response, field: str) -> str:
    errors = response.json()["details"]["errors"]
    return next(str(e["reason"]) for e in errors if e["field"] == field)


async def tokens(client: httpx.AsyncClient, email: str, slug: str, password: str) -> Any:
    response = await client.post(
        "/api/v1/auth/token", json={"email": email, "password": password, "tenant": slug}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def new_user(
    client: httpx.AsyncClient, world: TenantWorld, role: str = "agent"
) -> tuple[int, str]:
    email = f"{unique('u')}@{world.slug}.example"
    made = await client.post(
        "/api/v1/users",
        headers=world.admin.headers,
        json={"email": email, "display_name": "Someone", "role": role, "password": PASSWORD},
    )
    assert made.status_code == 201, made.text
    return made.json()["id"], email


async def new_key(client: httpx.AsyncClient, headers: dict[str, str], **scope: Any) -> Any:
    made = await client.post(
        "/api/v1/auth/api-keys", headers=headers, json={"name": unique("k"), **scope}
    )
    assert made.status_code == 201, made.text
    return made.json()


async def test_weak_passwords_are_refused_with_a_reason_on_every_path(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    user_id, email = await new_user(client, world)
    local = email.partition("@")[0]
    agent = await tokens(client, email, world.slug, PASSWORD)
    for password in [*WEAK, f"{local}-Secret-9", f"{local.upper()}!x7"]:
        created = await client.post(
            "/api/v1/users",
            headers=world.admin.headers,
            json={
                "email": f"{local}@elsewhere.example",
                "display_name": "Weak",
                "role": "agent",
                "password": password,
            },
        )
        assert created.status_code == 422, (password, created.text)
        assert fields_of(created) == {"body.password"}
        assert reason_of(created, "body.password"), password
        reset = await client.patch(
            f"/api/v1/users/{user_id}", headers=world.admin.headers, json={"password": password}
        )
        assert reset.status_code == 422, (password, reset.text)
        assert fields_of(reset) == {"body.password"}
        own = await client.post(
            "/api/v1/auth/password",
            headers=bearer(agent["access_token"]),
            json={"current_password": PASSWORD, "new_password": password},
        )
        assert own.status_code == 422, (password, own.text)
        assert fields_of(own) == {"body.new_password"}
        async with sessions() as session, session.begin():
            with pytest.raises(Invalid) as refused:
                await auth_service.create_operator(
                    session, f"{local}@operator.example", "Operator", password
                )
        assert refused.value.details["errors"][0]["field"] == "password"
    # The reasons say why.
    common = await client.patch(
        f"/api/v1/users/{user_id}", headers=world.admin.headers, json={"password": "password1234"}
    )
    assert "common password" in reason_of(common, "body.password")
    mine = await client.patch(
        f"/api/v1/users/{user_id}",
        headers=world.admin.headers,
        json={"password": f"my-{local}-passphrase"},
    )
    assert "e-mail" in reason_of(mine, "body.password")
    # Nothing of that changed the password, nor ended the agent's session.
    assert (await client.get("/api/v1/auth/me", headers=bearer(agent["access_token"]))).is_success
    await tokens(client, email, world.slug, PASSWORD)
    strong = await client.post(
        "/api/v1/users",
        headers=world.admin.headers,
        json={
            "email": email.replace("@", "3@"),
            "display_name": "Strong",
            "role": "agent",
            "password": NEW_PASSWORD,
        },
    )
    assert strong.status_code == 201, strong.text


@pytest.mark.parametrize(
    "change",
    [{"password": NEW_PASSWORD}, {"role": "supervisor"}, {"disabled": True}],
    ids=["password-reset", "role-change", "disable"],
)
async def test_a_reset_role_change_or_disable_revokes_every_credential(
    client: httpx.AsyncClient, sessions: Sessions, change: dict[str, Any]
) -> None:
    world = await make_world(client, sessions)
    user_id, email = await new_user(client, world)
    first = await tokens(client, email, world.slug, PASSWORD)
    second = await tokens(client, email, world.slug, PASSWORD)
    key = await new_key(client, bearer(first["access_token"]))
    for credential in (first["access_token"], second["access_token"], key["key"]):
        assert (await client.get("/api/v1/auth/me", headers=bearer(credential))).status_code == 200
    changed = await client.patch(
        f"/api/v1/users/{user_id}", headers=world.admin.headers, json=change
    )
    assert changed.status_code == 200, changed.text
    for credential in (first["access_token"], second["access_token"], key["key"]):
        refused = await client.get("/api/v1/users", headers=bearer(credential))
        assert refused.status_code == 401, refused.text
    for refresh_token in (first["refresh_token"], second["refresh_token"]):
        refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})
        assert refreshed.status_code == 401, refreshed.text
    async with sessions() as session:
        stored = await session.get(ApiKey, key["id"])
        assert stored is not None and stored.revoked_at is not None
        entry = await session.scalar(
            select(AuditEntry)
            .where(AuditEntry.object_type == "user", AuditEntry.object_id == str(user_id))
            .order_by(AuditEntry.id.desc())
        )
    assert entry is not None and entry.changes.get("sessions") == "revoked"
    if "disabled" not in change:  # the user logs in again, as what it now is
        password = change.get("password", PASSWORD)
        again = await tokens(client, email, world.slug, password)
        me = await client.get("/api/v1/auth/me", headers=bearer(again["access_token"]))
        assert me.json()["role"] == change.get("role", "agent")


async def test_a_rename_ends_no_session(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    user_id, email = await new_user(client, world)
    session_tokens = await tokens(client, email, world.slug, PASSWORD)
    renamed = await client.patch(
        f"/api/v1/users/{user_id}", headers=world.admin.headers, json={"display_name": "Renamed"}
    )
    assert renamed.status_code == 200
    me = await client.get("/api/v1/auth/me", headers=bearer(session_tokens["access_token"]))
    assert me.status_code == 200


async def test_an_agent_changes_its_own_password_with_the_current_one(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    user_id, email = await new_user(client, world)
    here = await tokens(client, email, world.slug, PASSWORD)
    elsewhere = await tokens(client, email, world.slug, PASSWORD)
    url = "/api/v1/auth/password"
    wrong = await client.post(
        url,
        headers=bearer(here["access_token"]),
        json={"current_password": "not my password at all", "new_password": NEW_PASSWORD},
    )
    assert wrong.status_code == 422, wrong.text
    assert fields_of(wrong) == {"body.current_password"}
    missing = await client.post(
        url, headers=bearer(here["access_token"]), json={"new_password": NEW_PASSWORD}
    )
    assert missing.status_code == 422
    assert fields_of(missing) == {"body.current_password"}
    anonymous = await client.post(
        url, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert anonymous.status_code == 401
    async with sessions() as session:
        reasons = (
            await session.scalars(select(LoginAttempt.reason).where(LoginAttempt.email == email))
        ).all()
    assert "bad-current-password" in reasons  # counted with failed logins
    # Still the old password everywhere.
    assert (await client.get("/api/v1/auth/me", headers=bearer(here["access_token"]))).is_success
    changed = await client.post(
        url,
        headers=bearer(here["access_token"]),
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 200, changed.text
    fresh = changed.json()
    me = await client.get("/api/v1/auth/me", headers=bearer(fresh["access_token"]))
    assert me.json()["user_id"] == user_id
    for old in (here["access_token"], elsewhere["access_token"]):
        assert (await client.get("/api/v1/auth/me", headers=bearer(old))).status_code == 401
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": elsewhere["refresh_token"]}
    )
    assert refreshed.status_code == 401
    kept = await client.post("/api/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert kept.status_code == 200
    old_login = await client.post(
        "/api/v1/auth/token", json={"email": email, "password": PASSWORD, "tenant": world.slug}
    )
    assert old_login.status_code == 401
    await tokens(client, email, world.slug, NEW_PASSWORD)


async def test_a_password_change_a_reset_overtook_is_refused(
    client: httpx.AsyncClient, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The current password is verified before the user's row is locked, so an admin's reset
    # is not kept waiting; one committed meanwhile wins, and is not written over.
    world = await make_world(client, sessions)
    user_id, email = await new_user(client, world)
    issued = await tokens(client, email, world.slug, PASSWORD)
    hash_password = auth_service.hash_password

    async def reset_first(password: str) -> str:
        monkeypatch.setattr(auth_service, "hash_password", hash_password)
        reset = await client.patch(
            f"/api/v1/users/{user_id}", headers=world.admin.headers, json={"password": NEW_PASSWORD}
        )
        assert reset.status_code == 200, reset.text
        return await hash_password(password)

    monkeypatch.setattr(auth_service, "hash_password", reset_first)
    changed = await client.post(
        "/api/v1/auth/password",
        headers=bearer(issued["access_token"]),
        json={"current_password": PASSWORD, "new_password": "lantern quartz meadow oboe"},
    )
    assert changed.status_code == 401, changed.text
    await tokens(client, email, world.slug, NEW_PASSWORD)


async def test_wrong_current_passwords_are_throttled_like_logins(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    _, email = await new_user(client, world)
    own = await tokens(client, email, world.slug, PASSWORD)
    codes = []
    for _ in range(6):
        response = await client.post(
            "/api/v1/auth/password",
            headers=bearer(own["access_token"]),
            json={"current_password": "guess guess guess", "new_password": NEW_PASSWORD},
        )
        codes.append(response.status_code)
    assert codes == [422] * 5 + [429]
    right = await client.post(
        "/api/v1/auth/password",
        headers=bearer(own["access_token"]),
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert right.status_code == 429
    assert right.headers["Retry-After"]


async def test_an_api_key_cannot_change_its_users_password(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    key = await new_key(client, world.agent.headers, read_only=False, areas=["auth"])
    response = await client.post(
        "/api/v1/auth/password",
        headers=bearer(key["key"]),
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 403, response.text


async def test_an_expired_key_is_refused(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    before = datetime.now(UTC)
    key = await new_key(client, world.admin.headers)
    after = datetime.now(UTC)
    # 90 days (the default) from the moment the key was made, within this request.
    expires = datetime.fromisoformat(key["expires_at"])
    assert before + timedelta(days=90) <= expires <= after + timedelta(days=90)
    assert (await client.get("/api/v1/users", headers=bearer(key["key"]))).status_code == 200
    async with sessions() as session, session.begin():
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == key["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    refused = await client.get("/api/v1/users", headers=bearer(key["key"]))
    assert refused.status_code == 401
    assert "expired" in refused.json()["message"]
    for days in (0, 366):
        too = await client.post(
            "/api/v1/auth/api-keys",
            headers=world.admin.headers,
            json={"name": "k", "expires_in_days": days},
        )
        assert too.status_code == 422
        assert fields_of(too) == {"body.expires_in_days"}


async def test_a_read_only_key_cannot_write(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    key = await new_key(client, world.admin.headers)  # read-only by default
    assert key["read_only"] is True
    headers = bearer(key["key"])
    queue = await client.post(
        "/api/v1/queues", headers=world.admin.headers, json={"name": unique("q")}
    )
    assert queue.status_code == 201
    url = f"/api/v1/queues/{queue.json()['id']}"
    assert (await client.get(url, headers=headers)).status_code == 200
    assert (await client.head(url, headers=headers)).status_code in (200, 405)
    attempts = [
        ("POST", "/api/v1/queues", {"name": unique("q")}),
        ("PATCH", url, {"name": unique("q")}),
        ("DELETE", url, None),
        ("POST", "/api/v1/users", {"email": "x@y.example", "display_name": "X", "role": "agent"}),
        ("POST", "/api/v1/auth/api-keys", {"name": "k2"}),
    ]
    for method, path, body in attempts:
        response = await client.request(method, path, headers=headers, json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert "read-only" in response.json()["message"]
    assert (await client.get(url, headers=world.admin.headers)).status_code == 200


async def test_a_key_outside_its_areas_gets_403(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    key = await new_key(client, world.admin.headers, read_only=False, areas=["queues"])
    headers = bearer(key["key"])
    made = await client.post("/api/v1/queues", headers=headers, json={"name": unique("q")})
    assert made.status_code == 201, made.text
    for path in ("/api/v1/users", "/api/v1/devices", "/api/v1/cdrs", "/api/v1/auth/api-keys"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 403, (path, response.text)
        assert "not scoped" in response.json()["message"]
    unknown = await client.post(
        "/api/v1/auth/api-keys", headers=world.admin.headers, json={"name": "k", "areas": ["x"]}
    )
    assert unknown.status_code == 422
    assert {f.split(".")[0] + "." + f.split(".")[1] for f in fields_of(unknown)} == {"body.areas"}


async def test_a_key_mints_keys_or_users_only_when_scoped_to(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    # A key that writes gets every area but the credential ones unless they are named.
    writer = await new_key(client, world.admin.headers, read_only=False)
    assert "auth" not in writer["areas"] and "users" not in writer["areas"]
    assert "queues" in writer["areas"]
    headers = bearer(writer["key"])
    user_body = {
        "email": f"{unique('m')}@x.example",
        "display_name": "Minted",
        "role": "admin",
        "password": NEW_PASSWORD,
    }
    assert (await client.post("/api/v1/users", headers=headers, json=user_body)).status_code == 403
    assert (
        await client.post("/api/v1/auth/api-keys", headers=headers, json={"name": "k"})
    ).status_code == 403
    assert (
        await client.patch(
            f"/api/v1/users/{world.agent.user_id}", headers=headers, json={"role": "admin"}
        )
    ).status_code == 403
    # Scoped to them, it may; what it mints is never broader than itself.
    minter = await new_key(
        client, world.admin.headers, read_only=False, areas=["auth", "users"], expires_in_days=10
    )
    headers = bearer(minter["key"])
    minted_user = await client.post("/api/v1/users", headers=headers, json=user_body)
    assert minted_user.status_code == 201, minted_user.text
    broader = await client.post(
        "/api/v1/auth/api-keys",
        headers=headers,
        json={"name": "k", "read_only": False, "areas": ["users", "queues"]},
    )
    assert broader.status_code == 422
    assert fields_of(broader) == {"body.areas"}
    narrower = await client.post(
        "/api/v1/auth/api-keys",
        headers=headers,
        json={"name": "k", "read_only": False, "areas": ["users"], "expires_in_days": 365},
    )
    assert narrower.status_code == 201, narrower.text
    assert narrower.json()["expires_at"] <= minter["expires_at"]
    reader = await new_key(client, world.admin.headers, areas=["auth"])
    writes = await client.post(
        "/api/v1/auth/api-keys",
        headers=bearer(reader["key"]),
        json={"name": "k", "read_only": False, "areas": ["auth"]},
    )
    assert writes.status_code == 403  # a read-only key posts nothing, keys included


async def test_a_keys_last_use_is_visible_and_admins_see_and_revoke_the_tenants_keys(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    key = await new_key(client, world.agent.headers, areas=["users"])
    assert key["last_used_at"] is None
    assert (await client.get("/api/v1/users", headers=bearer(key["key"]))).status_code == 200
    mine = await client.get("/api/v1/auth/api-keys", headers=world.agent.headers)
    listed = next(k for k in mine.json() if k["id"] == key["id"])
    assert listed["last_used_at"] is not None
    assert listed["last_used_address"]
    assert listed["areas"] == ["users"] and listed["read_only"] is True
    tenant_keys = await client.get("/api/v1/api-keys", headers=world.admin.headers)
    assert tenant_keys.status_code == 200
    assert key["id"] in {k["id"] for k in tenant_keys.json()}
    assert all(k["tenant_id"] == world.tenant_id for k in tenant_keys.json())
    assert (await client.get("/api/v1/api-keys", headers=world.agent.headers)).status_code == 403
    foreign = await client.delete(f"/api/v1/api-keys/{key['id']}", headers=other.admin.headers)
    assert foreign.status_code == 404
    assert key["id"] not in {
        k["id"] for k in (await client.get("/api/v1/api-keys", headers=other.admin.headers)).json()
    }
    revoked = await client.delete(f"/api/v1/api-keys/{key['id']}", headers=world.admin.headers)
    assert revoked.status_code == 204
    assert (await client.get("/api/v1/users", headers=bearer(key["key"]))).status_code == 401
    async with sessions() as session:
        actions = (
            await session.scalars(
                select(AuditEntry.action).where(
                    AuditEntry.object_type == "api_key", AuditEntry.object_id == str(key["id"])
                )
            )
        ).all()
    assert set(actions) == {"create", "revoke"}


async def test_a_token_or_key_a_revocation_overtook_stays_revoked(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    # A login, refresh or key creation still running when an admin resets the password stores
    # its row after the reset's revocation: such rows carry the old epoch, and are refused.
    world = await make_world(client, sessions)
    user_id, email = await new_user(client, world)
    issued = await tokens(client, email, world.slug, PASSWORD)
    key = await new_key(client, bearer(issued["access_token"]))
    reset = await client.patch(
        f"/api/v1/users/{user_id}", headers=world.admin.headers, json={"password": NEW_PASSWORD}
    )
    assert reset.status_code == 200
    async with sessions() as session, session.begin():
        await session.execute(
            update(RefreshToken).where(RefreshToken.user_id == user_id).values(revoked_at=None)
        )
        await session.execute(update(ApiKey).where(ApiKey.id == key["id"]).values(revoked_at=None))
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": issued["refresh_token"]}
    )
    assert refreshed.status_code == 401
    assert (await client.get("/api/v1/users", headers=bearer(key["key"]))).status_code == 401


async def test_own_password_change_keeps_the_users_api_keys(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    _, email = await new_user(client, world)
    issued = await tokens(client, email, world.slug, PASSWORD)
    key = await new_key(client, bearer(issued["access_token"]), areas=["users"])
    changed = await client.post(
        "/api/v1/auth/password",
        headers=bearer(issued["access_token"]),
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 200, changed.text
    assert (await client.get("/api/v1/users", headers=bearer(key["key"]))).status_code == 200
