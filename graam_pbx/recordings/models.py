"""Call recordings: each tenant's policy (rules and settings) and the recordings themselves.

A recording belongs to one call (``linkedid``, as the call's CDRs and queue call) and is one
channel's leg of it (``uniqueid``: the agent's channel, on which ``MixMonitor`` mixes both
sides). Its file is in the recordings store under ``storage_key``; ``sha256`` is the stored
file's. docs/recordings.md.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base, TenantOwned, Timestamped, Versioned

MODES = ("never", "always", "on_demand")
DIRECTIONS = ("inbound", "outbound", "internal")
RETENTION_DAYS_MAX = 3650  # ten years
DEFAULT_RETENTION_DAYS = 90  # a tenant without settings
DEFAULT_TELLS_AGENT = True  # likewise: a supervised agent is told


def _known(column: str, values: tuple[str, ...]) -> str:
    return f"{column} in ('" + "', '".join(values) + "')"


class RecordingSettings(Timestamped, Versioned, Base):
    """A tenant's recording and supervision settings; a tenant without a row has the
    defaults (``service.DEFAULT_SETTINGS``)."""

    __tablename__ = "recording_settings"
    __table_args__ = (
        CheckConstraint(
            f"retention_days BETWEEN 1 AND {RETENTION_DAYS_MAX}", name="retention_days_range"
        ),
    )

    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    # Played to a caller before a call that may be recorded (queue calls and calls to an
    # agent); none: no announcement.
    announce_prompt_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("prompts.id", ondelete="RESTRICT"), index=True
    )
    retention_days: Mapped[int] = mapped_column(
        Integer, default=DEFAULT_RETENTION_DAYS, server_default=str(DEFAULT_RETENTION_DAYS)
    )
    agents_play_own: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    supervision_tells_agent: Mapped[bool] = mapped_column(
        Boolean,
        default=DEFAULT_TELLS_AGENT,
        server_default="true" if DEFAULT_TELLS_AGENT else "false",
    )


class RecordingRule(TenantOwned, Timestamped, Versioned, Base):
    """One rule of a tenant's policy: the whole tenant (no queue, no agent), one queue or one
    agent; one direction or every direction (NULL). The most specific rule wins."""

    __tablename__ = "recording_rules"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id",
            "queue_id",
            "user_id",
            "direction",
            postgresql_nulls_not_distinct=True,
        ),
        CheckConstraint(_known("mode", MODES), name="mode_known"),
        CheckConstraint(
            "direction IS NULL OR " + _known("direction", DIRECTIONS), name="direction_known"
        ),
        CheckConstraint("queue_id IS NULL OR user_id IS NULL", name="one_scope"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    queue_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("queues.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    direction: Mapped[str | None] = mapped_column(String(8))
    mode: Mapped[str] = mapped_column(String(10))


class Recording(TenantOwned, Base):
    """One recorded leg of a call, stored."""

    __tablename__ = "recordings"
    __table_args__ = (
        UniqueConstraint("uniqueid"),
        Index("ix_recordings_tenant_linkedid", "tenant_id", "linkedid"),
        Index("ix_recordings_tenant_started_at", "tenant_id", "started_at"),
        CheckConstraint(_known("direction", DIRECTIONS), name="direction_known"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    linkedid: Mapped[str] = mapped_column(Text)  # the call's, as its CDRs and queue call
    uniqueid: Mapped[str] = mapped_column(Text)  # the recorded channel's (node-prefixed)
    direction: Mapped[str] = mapped_column(String(8))
    # No foreign keys: a recording outlives the queue or agent it names.
    queue_id: Mapped[int | None] = mapped_column(BigInteger)
    agent_user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    party_number: Mapped[str | None] = mapped_column(String(32), index=True)  # the other party
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(32))
    storage_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
