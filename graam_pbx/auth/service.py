"""Passwords, logins with throttling, tokens, API keys and users."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.models import ApiKey, LoginAttempt, RefreshToken, User
from graam_pbx.auth.principal import Principal, Role, Scope
from graam_pbx.auth.schemas import ApiKeyCreate, UserCreate, UserUpdate
from graam_pbx.db import ensure_version, flush_or_conflict, get_in_tenant, keyset_page
from graam_pbx.errors import Conflict, Forbidden, NotFound, Throttled, Unauthorized
from graam_pbx.settings import Settings
from graam_pbx.tenants.models import Tenant, TenantStatus

# OWASP's argon2id floor: strong, and cheap enough to log agents in by the hundred.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_DUMMY_HASH = _hasher.hash("timing-equaliser")
_TOKEN_ALGORITHM = "HS256"  # noqa: S105 - an algorithm name
API_KEY_PREFIX = "gk_"


class LoginFailed(Unauthorized):
    error_id = "login-failed"


# ---- keys and passwords ---------------------------------------------------------------------


def signing_key(settings: Settings) -> str:
    """The token signing key: configured, or generated once under data_dir (never committed)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = Path(settings.data_dir) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value


async def hash_password(password: str) -> str:
    """An argon2id hash; hashing runs off the event loop."""
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# ---- logins ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int


async def login(
    session: AsyncSession,
    settings: Settings,
    key: str,
    *,
    email: str,
    password: str,
    tenant_slug: str | None,
    address: str | None,
) -> Tokens:
    """Check a password login (throttled per account and per address); every try is kept."""
    email = email.strip().lower()
    window_start = datetime.now(UTC) - timedelta(seconds=settings.login_window)
    if await _throttled(session, settings, window_start, email, tenant_slug, address):
        await _attempt(session, email, tenant_slug, address, None, "throttled")
        raise Throttled(
            "too many failed logins; try again later", retry_after=settings.login_window
        )
    user = await _find_login_user(session, email, tenant_slug)
    ok = await verify_password(user.password_hash if user else _DUMMY_HASH, password)
    if user is None or not ok:
        await _attempt(session, email, tenant_slug, address, user, "bad-credentials")
        raise LoginFailed("wrong e-mail, tenant or password")
    if user.disabled:
        await _attempt(session, email, tenant_slug, address, user, "disabled")
        raise LoginFailed("this account is disabled")
    await _attempt(session, email, tenant_slug, address, user, "ok")
    return await _issue(session, settings, key, user)


async def refresh(session: AsyncSession, settings: Settings, key: str, token: str) -> Tokens:
    """Trade a refresh token (used once) for new tokens."""
    stored = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == _digest(token)).with_for_update()
    )
    now = datetime.now(UTC)
    if stored is None or stored.revoked_at is not None or stored.expires_at <= now:
        raise Unauthorized("the refresh token is unknown, used or expired")
    stored.revoked_at = now
    user = await session.get(User, stored.user_id)
    if user is None or user.disabled:
        raise Unauthorized("this account is disabled")
    return await _issue(session, settings, key, user)


async def _throttled(
    session: AsyncSession,
    settings: Settings,
    since: datetime,
    email: str,
    tenant_slug: str | None,
    address: str | None,
) -> bool:
    failed = LoginAttempt.success.is_(False)
    per_account = await session.scalar(
        select(func.count()).where(
            failed,
            LoginAttempt.email == email,
            LoginAttempt.tenant_slug.is_not_distinct_from(tenant_slug),
            LoginAttempt.at >= since,
            LoginAttempt.reason != "throttled",
        )
    )
    if (per_account or 0) >= settings.login_max_failures:
        return True
    if address is None:
        return False
    per_address = await session.scalar(
        select(func.count()).where(
            failed,
            LoginAttempt.address == address,
            LoginAttempt.at >= since,
            LoginAttempt.reason != "throttled",
        )
    )
    return (per_address or 0) >= settings.login_max_failures_per_address


async def _find_login_user(
    session: AsyncSession, email: str, tenant_slug: str | None
) -> User | None:
    if tenant_slug is None:
        return await session.scalar(
            select(User).where(User.email == email, User.tenant_id.is_(None))
        )
    return await session.scalar(
        select(User)
        .join(Tenant, Tenant.id == User.tenant_id)
        .where(
            User.email == email,
            Tenant.slug == tenant_slug,
            Tenant.status != TenantStatus.TERMINATED.value,
        )
    )


async def _attempt(
    session: AsyncSession,
    email: str,
    tenant_slug: str | None,
    address: str | None,
    user: User | None,
    reason: str,
) -> None:
    # Kept even when the request fails: the caller's transaction would roll it back, so
    # the attempt is written in a transaction of its own.
    bind = session.bind
    async with AsyncSession(bind) as own, own.begin():
        own.add(
            LoginAttempt(
                email=email[:254],
                tenant_slug=tenant_slug,
                address=address,
                user_id=user.id if user else None,
                success=reason == "ok",
                reason=reason,
            )
        )


async def _issue(session: AsyncSession, settings: Settings, key: str, user: User) -> Tokens:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user.id),
        "role": user.role,
        "tid": user.tenant_id,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=settings.access_token_ttl)).timestamp()),
        "typ": "access",
    }
    access = jwt.encode(claims, key, algorithm=_TOKEN_ALGORITHM)
    refresh_token = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            user_id=user.id,
            token_hash=_digest(refresh_token),
            expires_at=now + timedelta(seconds=settings.refresh_token_ttl),
        )
    )
    await session.flush()
    return Tokens(access, refresh_token, settings.access_token_ttl)


async def list_login_attempts(
    session: AsyncSession,
    tenant_id: int,
    *,
    after_id: int | None,
    limit: int,
) -> tuple[list[LoginAttempt], int | None]:
    """Login attempts against a tenant, failed and throttled ones included."""
    slug = select(Tenant.slug).where(Tenant.id == tenant_id).scalar_subquery()
    statement = select(LoginAttempt).where(LoginAttempt.tenant_slug == slug)
    return await keyset_page(session, statement, LoginAttempt.id, after_id, limit)


# ---- who is calling -------------------------------------------------------------------------


async def principal_from_credential(session: AsyncSession, credential: str, key: str) -> Principal:
    """The caller behind a bearer access token or an API key."""
    if credential.startswith(API_KEY_PREFIX):
        return await _principal_from_api_key(session, credential)
    try:
        claims = jwt.decode(
            credential, key, algorithms=[_TOKEN_ALGORITHM], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the access token expired: refresh it") from None
    except jwt.PyJWTError:
        raise Unauthorized("the access token is not valid") from None
    if claims.get("typ") != "access":
        raise Unauthorized("the access token is not valid")
    user = await session.get(User, int(claims["sub"]))
    if user is None or user.disabled:
        raise Unauthorized("this account is disabled or gone")
    return Principal(user.id, Role(user.role), user.tenant_id, user.email)


async def _principal_from_api_key(session: AsyncSession, credential: str) -> Principal:
    prefix, _, secret = credential.removeprefix(API_KEY_PREFIX).partition("_")
    stored = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if (
        stored is None
        or stored.revoked_at is not None
        or not hmac.compare_digest(stored.secret_hash, _digest(secret))
    ):
        raise Unauthorized("the API key is not valid")
    user = await session.get(User, stored.user_id)
    if user is None or user.disabled:
        raise Unauthorized("the API key's user is disabled or gone")
    stored.last_used_at = datetime.now(UTC)
    return Principal(user.id, Role(user.role), user.tenant_id, f"key:{stored.name}", stored.id)


# ---- API keys -------------------------------------------------------------------------------


async def create_api_key(
    session: AsyncSession, principal: Principal, data: ApiKeyCreate
) -> tuple[ApiKey, str]:
    """A key acting as the caller; its full text is returned once and never stored."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        user_id=principal.user_id,
        tenant_id=principal.tenant_id,
        name=data.name,
        prefix=prefix,
        secret_hash=_digest(secret),
    )
    session.add(key)
    await session.flush()
    await audit.record(
        session,
        principal,
        "create",
        "api_key",
        key.id,
        {"name": data.name},
        tenant_id=principal.tenant_id,
    )
    return key, f"{API_KEY_PREFIX}{prefix}_{secret}"


async def list_api_keys(session: AsyncSession, principal: Principal) -> list[ApiKey]:
    """The caller's own keys."""
    rows = await session.scalars(
        select(ApiKey).where(ApiKey.user_id == principal.user_id).order_by(ApiKey.id)
    )
    return list(rows.all())


async def revoke_api_key(session: AsyncSession, principal: Principal, key_id: int) -> None:
    key = await session.get(ApiKey, key_id)
    if key is None or key.user_id != principal.user_id:
        raise NotFound(f"no API key {key_id}")
    key.revoked_at = key.revoked_at or datetime.now(UTC)
    await audit.record(
        session, principal, "revoke", "api_key", key.id, {}, tenant_id=principal.tenant_id
    )


# ---- users ----------------------------------------------------------------------------------


async def create_user(session: AsyncSession, scope: Scope, data: UserCreate) -> User:
    """A user of the scope's tenant."""
    if data.role is Role.OPERATOR:
        raise Forbidden("operators are made with `graam-pbx operator create`")
    user = User(
        tenant_id=scope.tenant_id,
        email=data.email,
        display_name=data.display_name,
        role=data.role.value,
        password_hash=await hash_password(data.password.get_secret_value()),
        disabled=False,
    )
    session.add(user)
    await flush_or_conflict(session, taken=_email_taken(user.email))
    await audit.record(
        session, scope, "create", "user", user.id, {"email": user.email, "role": user.role}
    )
    return user


async def create_operator(
    session: AsyncSession, email: str, display_name: str, password: str
) -> User:
    """A platform operator (no tenant)."""
    user = User(
        tenant_id=None,
        email=email.strip().lower(),
        display_name=display_name,
        role=Role.OPERATOR.value,
        password_hash=await hash_password(password),
        disabled=False,
    )
    session.add(user)
    await flush_or_conflict(session, taken=_email_taken(user.email))
    return user


async def list_users(
    session: AsyncSession,
    scope: Scope,
    *,
    role: Role | None,
    after_id: int | None,
    limit: int,
) -> tuple[list[User], int | None]:
    """The tenant's users; an agent sees only itself."""
    statement = select(User).where(User.tenant_id == scope.tenant_id)
    if scope.role is Role.AGENT:
        statement = statement.where(User.id == scope.principal.user_id)
    if role is not None:
        statement = statement.where(User.role == role.value)
    return await keyset_page(session, statement, User.id, after_id, limit)


async def get_user(session: AsyncSession, scope: Scope, user_id: int) -> User:
    if scope.role is Role.AGENT and user_id != scope.principal.user_id:
        raise NotFound(f"no user {user_id}")
    return await get_in_tenant(session, User, scope.tenant_id, user_id)


async def update_user(
    session: AsyncSession, scope: Scope, user_id: int, data: UserUpdate, expected: int | None
) -> User:
    user = await get_in_tenant(session, User, scope.tenant_id, user_id)
    ensure_version(user, expected)
    changes = data.model_dump(exclude_unset=True, exclude={"password"})
    if data.role is Role.OPERATOR:
        raise Forbidden("a tenant user cannot become an operator")
    for field, value in changes.items():
        setattr(user, field, value.value if isinstance(value, Role) else value)
    if data.password is not None:
        user.password_hash = await hash_password(data.password.get_secret_value())
        changes["password"] = "changed"  # noqa: S105 - the audit says it changed, not to what
    await flush_or_conflict(session, taken=_email_taken(user.email))
    await audit.record(session, scope, "update", "user", user.id, changes)
    return user


async def delete_user(session: AsyncSession, scope: Scope, user_id: int) -> None:
    user = await get_in_tenant(session, User, scope.tenant_id, user_id)
    if user.id == scope.principal.user_id:
        raise Conflict("you cannot delete yourself", field="id")
    await session.delete(user)
    await flush_or_conflict(
        session, otherwise=f"user {user_id} is still used (devices or queues): disable it instead"
    )
    await audit.record(session, scope, "delete", "user", user_id, {"email": user.email})


def _email_taken(email: str) -> dict[str, tuple[str, object]]:
    # E-mails are unique per tenant, and among operators.
    return {
        "uq_users_tenant_email": ("email", email),
        "uq_users_operator_email": ("email", email),
    }
