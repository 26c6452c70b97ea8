from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base
from graam_pbx.queue_calls.tracker import OUTCOMES


class QueueCall(Base):
    """One caller's stay in one queue (a call entering a queue twice has two rows); never
    updated. Written by the live AMI path and by the queue_log backfill under one key."""

    __tablename__ = "queue_calls"
    __table_args__ = (
        UniqueConstraint("tenant_id", "caller_uniqueid", "queue_name", "entry"),
        CheckConstraint(
            "outcome IN (" + ", ".join(f"'{name}'" for name in OUTCOMES) + ")", name="outcome"
        ),
        Index("ix_queue_calls_tenant_entered", "tenant_id", "entered_at", "id"),
        Index("ix_queue_calls_tenant_queue_entered", "tenant_id", "queue_id", "entered_at"),
        Index("ix_queue_calls_tenant_agent_entered", "tenant_id", "agent_id", "entered_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tenants.id", ondelete="CASCADE"))
    queue_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("queues.id", ondelete="SET NULL")
    )
    queue_name: Mapped[str] = mapped_column(Text)
    entry: Mapped[int] = mapped_column(Integer)  # the caller's 1st, 2nd, ... entry here
    linkedid: Mapped[str] = mapped_column(Text)
    caller_uniqueid: Mapped[str] = mapped_column(Text)
    caller_number: Mapped[str] = mapped_column(Text)
    did: Mapped[str | None] = mapped_column(Text)
    entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    position_at_entry: Mapped[int | None] = mapped_column(Integer)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    agent_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL")
    )
    device_id: Mapped[int | None] = mapped_column(BigInteger)
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Seconds, to the millisecond: entry to answer, or entry to leaving when not answered.
    wait_seconds: Mapped[Decimal] = mapped_column(Numeric(12, 3))
    talk_seconds: Mapped[Decimal] = mapped_column(Numeric(12, 3), server_default="0")
    hold_seconds: Mapped[Decimal] = mapped_column(Numeric(12, 3), server_default="0")
    wrapup_seconds: Mapped[Decimal] = mapped_column(Numeric(12, 3), server_default="0")
    ring_no_answer: Mapped[int] = mapped_column(Integer, server_default="0")
    outcome: Mapped[str] = mapped_column(Text)
    abandon_position: Mapped[int | None] = mapped_column(Integer)
    exit_key: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)  # "ami" (live) or "queue_log" (backfilled)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
