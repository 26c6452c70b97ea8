from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, Numeric, Text
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base


class QueueStatsRollup(Base):
    """A queue's calls summed over one 15-minute UTC bucket of their entry (what the queue
    KPIs are made of). Written only by the database: triggers on ``queue_calls`` recompute
    the buckets a statement touched, a change of the queue's thresholds recomputes the
    queue (migration 0011_stats_rollup). Every tenant's 15-minute, hourly, daily and monthly
    buckets are unions of these, offsets being whole quarters of an hour."""

    __tablename__ = "queue_stats_rollup"
    __table_args__ = (Index("ix_queue_stats_rollup_queue_bucket", "queue_id", "bucket_start"),)

    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    bucket_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    queue_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True
    )
    # The queue's thresholds the within/short counts were made with: a row made with others
    # is not read (the raw rows are).
    service_level_seconds: Mapped[int] = mapped_column(Integer)
    short_abandon_seconds: Mapped[int] = mapped_column(Integer)
    queue_name: Mapped[str] = mapped_column(Text)
    offered: Mapped[int] = mapped_column(Integer)
    answered: Mapped[int] = mapped_column(Integer)
    abandoned: Mapped[int] = mapped_column(Integer)
    short_abandoned: Mapped[int] = mapped_column(Integer)
    answered_within: Mapped[int] = mapped_column(Integer)
    abandoned_within: Mapped[int] = mapped_column(Integer)
    timeout: Mapped[int] = mapped_column(Integer)
    full: Mapped[int] = mapped_column(Integer)
    joinempty: Mapped[int] = mapped_column(Integer)
    leaveempty: Mapped[int] = mapped_column(Integer)
    closed: Mapped[int] = mapped_column(Integer)
    exitkey: Mapped[int] = mapped_column(Integer)
    transferred: Mapped[int] = mapped_column(Integer)
    answered_wait: Mapped[Decimal] = mapped_column(Numeric)
    abandoned_wait: Mapped[Decimal] = mapped_column(Numeric)
    talk: Mapped[Decimal] = mapped_column(Numeric)
    hold: Mapped[Decimal] = mapped_column(Numeric)
    wrapup: Mapped[Decimal] = mapped_column(Numeric)
    longest_wait: Mapped[Decimal] = mapped_column(Numeric(12, 3))
