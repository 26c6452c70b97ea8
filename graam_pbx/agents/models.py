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
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base, TenantOwned, Timestamped, Versioned


class AgentDevice(TenantOwned, Timestamped, Versioned, Base):
    """A SIP phone or softphone of an agent: one PJSIP endpoint, auth and AOR."""

    __tablename__ = "agent_devices"
    __table_args__ = (
        UniqueConstraint("tenant_id", "extension"),
        CheckConstraint("max_contacts between 1 and 10", name="max_contacts_range"),
        CheckConstraint("transport in ('udp', 'tcp', 'tls', 'webrtc')", name="transport_known"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    # Globally unique and tenant-prefixed: it names the PJSIP endpoint, auth and AOR.
    sip_username: Mapped[str] = mapped_column(String(128), unique=True)
    # HA1 = md5("user:realm:password"): Asterisk can check digests, nobody can read it back.
    password_ha1: Mapped[str] = mapped_column(String(32))
    extension: Mapped[str] = mapped_column(String(8))
    codecs: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    # udp, tcp, tls: a SIP phone; webrtc: a browser (SIP over WebSocket, DTLS-SRTP).
    transport: Mapped[str] = mapped_column(String(8), default="udp")
    max_contacts: Mapped[int] = mapped_column(Integer, default=1)


class AgentSession(TenantOwned, Base):
    """An agent connected with one device: it holds one of the tenant's licences while live.

    Live means ``ended_at IS NULL``; a partial unique index allows one live session per agent.
    Ended sessions are kept (occupancy and licence history are computed from them).
    """

    __tablename__ = "agent_sessions"
    __table_args__ = (
        Index(
            "uq_agent_sessions_live_user",
            "user_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index(
            "ix_agent_sessions_live_tenant", "tenant_id", postgresql_where=text("ended_at IS NULL")
        ),
        CheckConstraint("source in ('api', 'phone', 'web')", name="source_known"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    # A deleted device keeps its sessions' history; a live session without one ends.
    device_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("agent_devices.id", ondelete="SET NULL"), index=True
    )
    source: Mapped[str] = mapped_column(String(8))
    started_by: Mapped[int | None] = mapped_column(BigInteger)  # the user who logged it in
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    pause_reason: Mapped[str | None] = mapped_column(String(64))
    paused_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_reason: Mapped[str | None] = mapped_column(String(16))


class AgentStateEvent(Base):
    """Append-only: every login, logout, pause, unpause and refused login of an agent."""

    __tablename__ = "agent_state_events"
    __table_args__ = (
        Index("ix_agent_state_events_tenant_at", "tenant_id", "at"),
        Index("ix_agent_state_events_user_at", "user_id", "at"),
        CheckConstraint(
            "kind in ('login', 'logout', 'pause', 'unpause', 'refused')", name="kind_known"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(BigInteger)
    session_id: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(8))  # api, phone or system
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger)


class PauseReason(TenantOwned, Timestamped, Versioned, Base):
    """A tenant's pause reason: a code of digits (a phone dials ``*47<code>``) and a label.

    Once a tenant has one, pauses must name one of its codes (API and phone); a tenant without
    any keeps free reasons, as before the catalogue existed.
    """

    __tablename__ = "pause_reasons"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        CheckConstraint("code ~ '^[0-9]{1,8}$'", name="code_digits"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(8))
    label: Mapped[str] = mapped_column(String(64))


AGENT_STATES = (
    "available",
    "ringing",
    "on-call",
    "wrap-up",
    "paused",
    "unregistered",
    "logged-out",
)


class AgentStateInterval(Base):
    """The agents' timeline: one row per stretch of time an agent spent in one state.

    Columns (the names are a contract of the KPI queries):

    - ``tenant_id``, ``agent_id`` (the agent's user id);
    - ``state``: ``available`` (logged in, not paused, free for calls), ``ringing`` (a queue
      rings its device: ``AgentCalled``), ``on-call`` (it answered a queue call:
      ``AgentConnect``), ``wrap-up`` (the queue's ``wrapuptime`` after ``AgentComplete``),
      ``paused``, ``unregistered`` (logged in but its phone unreachable), ``logged-out``
      (after a logout, until the next login);
    - ``pause_reason_code``: the pause's code while ``paused`` (null: a pause without a
      reason), null in every other state;
    - ``started_at``, ``ended_at``: ``[started_at, ended_at)``; ``ended_at`` is null for the
      agent's current state only.

    Every transition closes the open interval and opens the next at the same instant, in one
    statement under a per-agent lock: an agent's intervals are contiguous, never overlap, and
    at most one is open (a partial unique index holds it). Time logged in is the sum of every
    state but ``logged-out``; an agent never logged in has no row.
    """

    __tablename__ = "agent_state_intervals"
    __table_args__ = (
        Index(
            "uq_agent_state_intervals_open",
            "agent_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index("ix_agent_state_intervals_tenant_started", "tenant_id", "started_at"),
        Index("ix_agent_state_intervals_agent_started", "agent_id", "started_at"),
        CheckConstraint(
            "state in ('available', 'ringing', 'on-call', 'wrap-up', 'paused', "
            "'unregistered', 'logged-out')",
            name="state_known",
        ),
        CheckConstraint("pause_reason_code IS NULL OR state = 'paused'", name="reason_only_paused"),
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ordered"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    agent_id: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))
    pause_reason_code: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
