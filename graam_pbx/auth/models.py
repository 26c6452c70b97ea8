from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base, Timestamped, Versioned


class User(Timestamped, Versioned, Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role in ('operator', 'admin', 'supervisor', 'agent')", name="role_known"),
        # Operators have no tenant, every other role has one.
        CheckConstraint("(role = 'operator') = (tenant_id IS NULL)", name="operator_has_no_tenant"),
        CheckConstraint("locale in ('en', 'fr')", name="locale_known"),
        Index(
            "uq_users_tenant_email",
            "tenant_id",
            "email",
            unique=True,
            postgresql_where=text("tenant_id IS NOT NULL"),
        ),
        Index(
            "uq_users_operator_email",
            "email",
            unique=True,
            postgresql_where=text("tenant_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )
    email: Mapped[str] = mapped_column(String(254))
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Raised when the password is reset, the role changes or the user is disabled: access
    # tokens carry it, and one issued before the change is refused.
    token_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The console language the user chose; None: the browser's Accept-Language decides.
    locale: Mapped[str | None] = mapped_column(String(5))


class ApiKey(Base):
    """A machine credential: ``gk_<prefix>_<secret>``; only the secret's hash is kept.

    It acts as its user, within its areas (OpenAPI tags), only reading when ``read_only``,
    until ``expires_at``.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_address: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    read_only: Mapped[bool] = mapped_column(Boolean, default=True)
    areas: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    # The user's token_epoch when the key was made: one made by a request that a revocation
    # overtook is born revoked.
    token_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class RefreshToken(Base):
    """One use only: using it revokes it and issues the next one."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The user's token_epoch at issue: a login or refresh that a revocation overtook issues a
    # token that no longer works.
    token_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class WebSession(Base):
    """A console login: the browser's cookie holds the token, only its hash is kept here.

    Unlike an access token it can be taken back: logging out revokes the row.
    """

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_epoch: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# The attempts throttling counts: failures whose password was checked, or is being checked
# (``pending``). Refused ones (``throttled``, ``busy``) are kept but never counted, and the
# partial indexes below leave them out, so a flood of refused attempts does not make each
# count longer. The throttle filters with this very text, so the planner can use them.
COUNTED_FAILURE = "NOT success AND reason NOT IN ('throttled', 'busy')"


class LoginAttempt(Base):
    """Every attempt to log in, kept for the audit and counted for throttling."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_email_at", "email", "at"),
        Index("ix_login_attempts_address_at", "address", "at"),
        Index(
            "ix_login_attempts_counted_email_at",
            "email",
            "at",
            postgresql_where=text(COUNTED_FAILURE),
        ),
        Index(
            "ix_login_attempts_counted_address_at",
            "address",
            "at",
            postgresql_where=text(COUNTED_FAILURE),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    email: Mapped[str] = mapped_column(String(254))
    tenant_slug: Mapped[str | None] = mapped_column(String(63))
    address: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    success: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(32))
