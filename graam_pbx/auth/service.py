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
from sqlalchemy import Select, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth import passwords, throttle
from graam_pbx.auth.models import ApiKey, LoginAttempt, RefreshToken, User, WebSession
from graam_pbx.auth.principal import (
    ACCOUNT_GONE,
    CREDENTIAL_AREAS,
    TOKEN_REVOKED,
    Area,
    Principal,
    Role,
    Scope,
)
from graam_pbx.auth.schemas import ApiKeyCreate, PasswordChange, UserCreate, UserUpdate
from graam_pbx.db import ensure_version, flush_or_conflict, get_in_tenant, keyset_page
from graam_pbx.errors import Conflict, Forbidden, Invalid, NotFound, Throttled, Unauthorized
from graam_pbx.settings import Settings
from graam_pbx.tenants.models import Tenant, TenantStatus

# OWASP's argon2id floor: strong, and cheap enough to log agents in by the hundred.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_DUMMY_HASH = _hasher.hash("timing-equaliser")
_TOKEN_ALGORITHM = "HS256"  # noqa: S105 - an algorithm name
API_KEY_PREFIX = "gk_"
# An API key's last use is written at most this often (each write locks the key's row).
_LAST_USE_RESOLUTION = timedelta(minutes=1)
# Ended console sessions are kept this long (then deleted at the user's next login).
_ENDED_SESSIONS_KEPT = timedelta(days=1)
# The console's languages; the first is the default.
LOCALES = ("en", "fr")


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
    gate: throttle.LoginGate,
    *,
    email: str,
    password: str,
    tenant_slug: str | None,
    address: str | None,
) -> Tokens:
    """Check a password login (throttled, see ``checked_login``) and issue the API's tokens."""
    user = await checked_login(
        session,
        settings,
        gate,
        email=email,
        password=password,
        tenant_slug=tenant_slug,
        address=address,
    )
    return await _issue(session, settings, key, user)


async def checked_login(
    session: AsyncSession,
    settings: Settings,
    gate: throttle.LoginGate,
    *,
    email: str,
    password: str,
    tenant_slug: str | None,
    address: str | None,
) -> User:
    """The user a password login names, throttled per account and per address across
    processes; the one check behind the API's tokens and the console's sessions.

    The attempt is reserved in one short transaction and its outcome recorded in another: no
    database connection is held while the password is verified. Every try is kept.
    """
    # Cut to the column's size first, so the throttle counts exactly what it stores.
    email = email.strip().lower()[:254]
    user: User | None = None
    async with (
        gate.transaction(),
        AsyncSession(session.bind, expire_on_commit=False) as own,
        own.begin(),
    ):
        decision = await throttle.reserve(
            own, settings, email=email, tenant_slug=tenant_slug, address=address
        )
        if isinstance(decision, throttle.Reservation):
            user = await _find_login_user(own, email, tenant_slug)
    if isinstance(decision, throttle.Refusal):
        raise Throttled(
            "too many failed logins; try again later",
            retry_after=decision.retry_after,
            per=decision.per,
        )
    ok = await _verify_reserved(session, gate, decision, user, password)
    if user is None or not ok:
        await _attempt(session, gate, decision, user, "bad-credentials")
        raise LoginFailed("wrong e-mail, tenant or password")
    if user.disabled:
        await _attempt(session, gate, decision, user, "disabled")
        raise LoginFailed("this account is disabled")
    await _attempt(session, gate, decision, user, "ok")
    return user


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
    if stored.token_epoch != user.token_epoch:
        raise Unauthorized("the refresh token was revoked (password, role or account changed)")
    return await _issue(session, settings, key, user)


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
    gate: throttle.LoginGate,
    reservation: throttle.Reservation,
    user: User | None,
    reason: str,
) -> None:
    # Kept even when the request fails: the caller's transaction would roll it back, so the
    # outcome is written in a short transaction of its own. Its wait for a slot is not
    # bounded: the attempt was reserved, and its outcome must be known.
    async with (
        gate.transaction(bounded=False),
        AsyncSession(session.bind) as own,
        own.begin(),
    ):
        await throttle.record_outcome(
            own, reservation.attempt_id, user_id=user.id if user else None, reason=reason
        )


async def _verify_reserved(
    session: AsyncSession,
    gate: throttle.LoginGate,
    reservation: throttle.Reservation,
    user: User | None,
    password: str,
) -> bool:
    """Verify a reserved attempt's password (``user``'s, or none), holding no connection."""
    try:
        async with gate.verification():
            return await verify_password(user.password_hash if user else _DUMMY_HASH, password)
    except throttle.LoginBusy:
        # Never checked: the reservation no longer counts as a failure.
        await _attempt(session, gate, reservation, user, throttle.BUSY)
        raise


async def _issue(session: AsyncSession, settings: Settings, key: str, user: User) -> Tokens:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user.id),
        "role": user.role,
        "tid": user.tenant_id,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=settings.access_token_ttl)).timestamp()),
        "typ": "access",
        "ep": user.token_epoch,
    }
    access = jwt.encode(claims, key, algorithm=_TOKEN_ALGORITHM)
    refresh_token = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            user_id=user.id,
            token_epoch=user.token_epoch,
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


# ---- console sessions -----------------------------------------------------------------------


async def open_web_session(session: AsyncSession, settings: Settings, user: User) -> str:
    """A new console session of a checked login: the cookie's token (only its hash is kept).

    The user's sessions that ended a day ago or more are deleted on the way: the table holds
    only live sessions and recent ones, however often users log in.
    """
    await session.execute(
        delete(WebSession).where(
            WebSession.user_id == user.id,
            or_(
                WebSession.expires_at < func.now() - _ENDED_SESSIONS_KEPT,
                WebSession.revoked_at < func.now() - _ENDED_SESSIONS_KEPT,
            ),
        )
    )
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            user_id=user.id,
            token_hash=_digest(token),
            token_epoch=user.token_epoch,
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.web_session_ttl),
        )
    )
    await session.flush()
    return token


async def principal_from_web_session(session: AsyncSession, token: str) -> Principal:
    """The user behind a console session's cookie, as a bearer token's would be checked."""
    row = await session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == _digest(token))
    )
    found = row.first()
    if found is None:
        raise Unauthorized("no such console session")
    web, user = found
    if web.revoked_at is not None or web.expires_at <= datetime.now(UTC):
        raise Unauthorized("the console session ended")
    if user.disabled:
        raise Unauthorized("this account is disabled")
    if web.token_epoch != user.token_epoch:
        raise Unauthorized("the console session was revoked (password, role or account changed)")
    return Principal(
        user.id, Role(user.role), user.tenant_id, user.email, token_epoch=user.token_epoch
    )


async def close_web_session(session: AsyncSession, token: str) -> None:
    """Log a console session out: its cookie no longer works, here or anywhere."""
    await session.execute(
        update(WebSession)
        .where(WebSession.token_hash == _digest(token), WebSession.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


async def user_locale(session: AsyncSession, principal: Principal) -> str | None:
    """The console language the caller chose (None: none chosen)."""
    # By primary key: the console session's check has just loaded the user, no second query.
    user = await session.get(User, principal.user_id)
    return user.locale if user is not None else None


async def set_user_locale(session: AsyncSession, principal: Principal, locale: str) -> None:
    """Remember the console language the caller chose (``en`` or ``fr``)."""
    if locale not in LOCALES:
        raise Invalid("body.locale", f"must be one of {', '.join(LOCALES)}")
    await session.execute(update(User).where(User.id == principal.user_id).values(locale=locale))


# ---- who is calling -------------------------------------------------------------------------


async def principal_from_credential(
    session: AsyncSession, credential: str, key: str, *, address: str | None = None
) -> Principal:
    """The caller behind a bearer access token or an API key (used from ``address``)."""
    if credential.startswith(API_KEY_PREFIX):
        return await _principal_from_api_key(session, credential, address)
    claims = _access_claims(credential, key)
    user = await session.get(User, int(claims["sub"]))
    if user is None or user.disabled:
        raise Unauthorized(ACCOUNT_GONE)
    if claims.get("ep") != user.token_epoch:
        raise Unauthorized(TOKEN_REVOKED)
    return Principal(
        user.id, Role(user.role), user.tenant_id, user.email, token_epoch=user.token_epoch
    )


def claimed_principal(credential: str, key: str) -> Principal | None:
    """A tenant user's access token as its caller, from the token's signed claims alone (its
    account not read: ``account_read`` False), or None for an API key or an operator's token,
    whose callers are read (``principal_from_credential``). Only for a route whose one
    statement checks the account itself, before anything else: it exists, is not disabled
    and its ``token_epoch`` is still the token's (a new role, password or status moves it),
    or the statement answers ``caller-gone`` or ``caller-revoked`` (``ACCOUNT_GONE``,
    ``TOKEN_REVOKED``) having done nothing."""
    if credential.startswith(API_KEY_PREFIX):
        return None
    claims = _access_claims(credential, key)
    tenant_id, epoch = claims.get("tid"), claims.get("ep")
    if not isinstance(tenant_id, int) or not isinstance(epoch, int):
        return None
    try:
        role = Role(str(claims.get("role")))
    except ValueError:
        raise Unauthorized("the access token is not valid") from None
    return Principal(
        int(claims["sub"]),
        role,
        tenant_id,
        f"user {claims['sub']}",
        token_epoch=epoch,
        account_read=False,
    )


def _access_claims(credential: str, key: str) -> dict[str, Any]:
    """The claims of a valid, unexpired access token signed with ``key``."""
    try:
        claims: dict[str, Any] = jwt.decode(
            credential, key, algorithms=[_TOKEN_ALGORITHM], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the access token expired: refresh it") from None
    except jwt.PyJWTError:
        raise Unauthorized("the access token is not valid") from None
    if claims.get("typ") != "access":
        raise Unauthorized("the access token is not valid")
    return claims


async def _principal_from_api_key(
    session: AsyncSession, credential: str, address: str | None
) -> Principal:
    # Checked, and its use written, in a short transaction of its own before the request's
    # takes a connection: the use is kept whatever the request's outcome, the key's row is
    # never locked for the length of a request (a streamed export), which would make the key's
    # other requests and its revocation wait, and a request never holds two connections.
    async with AsyncSession(session.bind) as own, own.begin():
        return await _checked_api_key(own, credential, address)


async def _checked_api_key(
    session: AsyncSession, credential: str, address: str | None
) -> Principal:
    prefix, _, secret = credential.removeprefix(API_KEY_PREFIX).partition("_")
    stored = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if (
        stored is None
        or stored.revoked_at is not None
        or not hmac.compare_digest(stored.secret_hash, _digest(secret))
    ):
        raise Unauthorized("the API key is not valid")
    now = datetime.now(UTC)
    if stored.expires_at <= now:
        raise Unauthorized("the API key expired")
    user = await session.get(User, stored.user_id)
    if user is None or user.disabled:
        raise Unauthorized("the API key's user is disabled or gone")
    if stored.token_epoch != user.token_epoch:
        raise Unauthorized("the API key was revoked (password, role or account changed)")
    address = address[:64] if address else None
    if (
        stored.last_used_at is None
        or now - stored.last_used_at >= _LAST_USE_RESOLUTION
        or stored.last_used_address != address
    ):
        await _record_key_use(session, stored.id, now, address)
    return Principal(
        user.id,
        Role(user.role),
        user.tenant_id,
        f"key:{stored.name}",
        stored.id,
        read_only=stored.read_only,
        areas=frozenset(stored.areas),
        expires_at=stored.expires_at,
        token_epoch=user.token_epoch,
    )


async def _record_key_use(
    session: AsyncSession, key_id: int, now: datetime, address: str | None
) -> None:
    await session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(
                ApiKey.last_used_at.is_(None),
                ApiKey.last_used_at <= now - _LAST_USE_RESOLUTION,
                ApiKey.last_used_address.is_distinct_from(address),
            ),
        )
        .values(last_used_at=now, last_used_address=address)
    )


# ---- API keys -------------------------------------------------------------------------------


async def create_api_key(
    session: AsyncSession, principal: Principal, data: ApiKeyCreate
) -> tuple[ApiKey, str]:
    """A key acting as the caller within its scope; its full text is returned once.

    A key made by a key is never broader than its maker: no more areas, no writing when the
    maker only reads, and no longer life.
    """
    if data.areas is not None:
        areas = sorted(set(data.areas))
    elif data.read_only:
        areas = sorted(Area)
    else:
        areas = sorted(set(Area) - CREDENTIAL_AREAS)
    expires_at = datetime.now(UTC) + timedelta(days=data.expires_in_days)
    if principal.api_key_id is not None:
        if principal.read_only and not data.read_only:
            raise Invalid("body.read_only", "a read-only key can only make read-only keys")
        beyond = sorted(set(areas) - (principal.areas or frozenset()))
        if beyond:
            raise Invalid("body.areas", f"beyond the areas of the key that asks: {beyond}")
        if principal.expires_at is not None:
            expires_at = min(expires_at, principal.expires_at)
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        user_id=principal.user_id,
        tenant_id=principal.tenant_id,
        name=data.name,
        prefix=prefix,
        secret_hash=_digest(secret),
        read_only=data.read_only,
        areas=[str(area) for area in areas],
        expires_at=expires_at,
        token_epoch=await _epoch_of(session, principal),
    )
    session.add(key)
    await session.flush()
    await audit.record(
        session,
        principal,
        "create",
        "api_key",
        key.id,
        {
            "name": data.name,
            "read_only": key.read_only,
            "areas": key.areas,
            "expires_at": expires_at.isoformat(),
        },
        tenant_id=principal.tenant_id,
    )
    return key, f"{API_KEY_PREFIX}{prefix}_{secret}"


async def _epoch_of(session: AsyncSession, principal: Principal) -> int:
    if principal.token_epoch is not None:
        return principal.token_epoch
    epoch = await session.scalar(select(User.token_epoch).where(User.id == principal.user_id))
    return epoch or 0


async def list_api_keys(session: AsyncSession, principal: Principal) -> list[ApiKey]:
    """The caller's own keys."""
    rows = await session.scalars(
        select(ApiKey).where(ApiKey.user_id == principal.user_id).order_by(ApiKey.id)
    )
    return list(rows.all())


async def list_tenant_api_keys(
    session: AsyncSession, scope: Scope, *, user_id: int | None
) -> list[ApiKey]:
    """Every key of the scope's tenant (an admin's view), or of one of its users."""
    statement = select(ApiKey).where(ApiKey.tenant_id == scope.tenant_id)
    if user_id is not None:
        statement = statement.where(ApiKey.user_id == user_id)
    rows = await session.scalars(statement.order_by(ApiKey.id))
    return list(rows.all())


async def revoke_api_key(session: AsyncSession, principal: Principal, key_id: int) -> None:
    """Revoke one of the caller's own keys."""
    key = await session.get(ApiKey, key_id)
    if key is None or key.user_id != principal.user_id:
        raise NotFound(f"no API key {key_id}")
    key.revoked_at = key.revoked_at or datetime.now(UTC)
    await audit.record(
        session, principal, "revoke", "api_key", key.id, {}, tenant_id=principal.tenant_id
    )


async def revoke_tenant_api_key(session: AsyncSession, scope: Scope, key_id: int) -> None:
    """Revoke any key of the scope's tenant (an admin's)."""
    key = await session.get(ApiKey, key_id)
    if key is None or key.tenant_id != scope.tenant_id:
        raise NotFound(f"no API key {key_id}")
    key.revoked_at = key.revoked_at or datetime.now(UTC)
    await audit.record(session, scope, "revoke", "api_key", key.id, {"user_id": key.user_id})


# ---- revocation and the user's own password -------------------------------------------------


async def revoke_credentials(session: AsyncSession, user: User, *, api_keys: bool) -> None:
    """End every session of ``user``: its access tokens (epoch), refresh tokens, and keys.

    Tokens and keys carry the epoch they were issued under, so one issued by a request still
    running (a login, a refresh) is refused too. Kept keys move to the new epoch.
    """
    now = datetime.now(UTC)
    old_epoch = user.token_epoch
    user.token_epoch += 1
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    keys = update(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
    if api_keys:
        await session.execute(keys.values(revoked_at=now))
    else:
        await session.execute(
            keys.where(ApiKey.token_epoch == old_epoch).values(token_epoch=user.token_epoch)
        )


async def change_own_password(
    session: AsyncSession,
    settings: Settings,
    key: str,
    gate: throttle.LoginGate,
    principal: Principal,
    data: PasswordChange,
    *,
    address: str | None,
) -> Tokens:
    """The caller changes its password with the current one; its other sessions end.

    Its API keys stay (an admin's reset revokes them); the caller gets fresh tokens.
    """
    if principal.api_key_id is not None:
        raise Forbidden("an API key cannot change its user's password: log in")
    # The user's row is locked only once the slow part (argon2 twice, the strength check) is
    # done, so no update of the user waits on it meanwhile.
    user = await session.get(User, principal.user_id)
    if user is None or user.disabled:
        raise Unauthorized("this account is disabled or gone")
    verified_hash = user.password_hash
    current = data.current_password.get_secret_value()
    await _check_current_password(session, settings, gate, user, current, address)
    new = data.new_password.get_secret_value()
    if new == current:
        raise Invalid("body.new_password", "the same as the current password")
    await passwords.ensure_strong(
        new, email=user.email, names=[user.display_name], field="body.new_password"
    )
    password_hash = await hash_password(new)
    # A query rather than get(): get() would refuse the locked row as stale had the user
    # changed at all (its version), where only a new password matters.
    user = await session.scalar(
        select(User)
        .where(User.id == principal.user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if user is None or user.disabled:
        raise Unauthorized("this account is disabled or gone")
    if user.password_hash != verified_hash:  # changed meanwhile, which revoked this token
        raise Unauthorized("the access token was revoked (password, role or account changed)")
    user.password_hash = password_hash
    await revoke_credentials(session, user, api_keys=False)
    await session.flush()
    await audit.record(
        session,
        principal,
        "change-password",
        "user",
        user.id,
        {"password": "changed"},
        tenant_id=user.tenant_id,
    )
    return await _issue(session, settings, key, user)


async def _check_current_password(
    session: AsyncSession,
    settings: Settings,
    gate: throttle.LoginGate,
    user: User,
    password: str,
    address: str | None,
) -> None:
    # Counted, throttled and bounded as a login of the account: guessing here is guessing
    # at login. The attempt is kept in transactions of its own (the request's is rolled back
    # on error).
    slug = None
    if user.tenant_id is not None:
        slug = await session.scalar(select(Tenant.slug).where(Tenant.id == user.tenant_id))
    async with gate.transaction(), AsyncSession(session.bind) as own, own.begin():
        reserved = await throttle.reserve(
            own, settings, email=user.email, tenant_slug=slug, address=address
        )
    if isinstance(reserved, throttle.Refusal):
        raise Throttled(
            "too many wrong passwords; try again later",
            retry_after=reserved.retry_after,
            per=reserved.per,
        )
    ok = await _verify_reserved(session, gate, reserved, user, password)
    await _attempt(session, gate, reserved, user, "ok" if ok else "bad-current-password")
    if not ok:
        raise Invalid("body.current_password", "not the current password")


# ---- users ----------------------------------------------------------------------------------


async def create_user(session: AsyncSession, scope: Scope, data: UserCreate) -> User:
    """A user of the scope's tenant."""
    if data.role is Role.OPERATOR:
        raise Forbidden("operators are made with `graam-pbx operator create`")
    await passwords.ensure_strong(
        data.password.get_secret_value(), email=data.email, names=[data.display_name]
    )
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
    """A platform operator (no tenant); a weak password is refused (field ``password``)."""
    await passwords.ensure_strong(
        password, email=email.strip().lower(), names=[display_name], field="password"
    )
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
    statement = _users_seen(scope)
    if role is not None:
        statement = statement.where(User.role == role.value)
    return await keyset_page(session, statement, User.id, after_id, limit)


async def count_users(session: AsyncSession, scope: Scope) -> int:
    """How many users ``list_users`` pages through (without a role filter)."""
    counted = select(func.count()).select_from(_users_seen(scope).subquery())
    return int(await session.scalar(counted) or 0)


def _users_seen(scope: Scope) -> Select[User]:
    # The one rule of which users a caller sees, for the list and its count alike.
    statement = select(User).where(User.tenant_id == scope.tenant_id)
    if scope.role is Role.AGENT:
        statement = statement.where(User.id == scope.principal.user_id)
    return statement


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
    # A reset, a new role or a disabled account ends every session the user had.
    revoke = (
        data.password is not None
        or (data.role is not None and data.role.value != user.role)
        or (data.disabled is True and not user.disabled)
    )
    if data.password is not None:
        await passwords.ensure_strong(
            data.password.get_secret_value(),
            email=data.email or user.email,
            names=[data.display_name or user.display_name],
        )
    for field, value in changes.items():
        setattr(user, field, value.value if isinstance(value, Role) else value)
    if data.password is not None:
        user.password_hash = await hash_password(data.password.get_secret_value())
        changes["password"] = "changed"  # noqa: S105 - the audit says it changed, not to what
    await flush_or_conflict(session, taken=_email_taken(user.email))
    if revoke:
        await revoke_credentials(session, user, api_keys=True)
        await session.flush()
        changes["sessions"] = "revoked"
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
