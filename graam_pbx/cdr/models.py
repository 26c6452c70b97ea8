from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Numeric,
    Sequence,
    Text,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base

CDR_ID_SEQUENCE = Sequence("cdrs_id_seq")


class Cdr(Base):
    """One Asterisk CDR (one leg of a call), as Asterisk reported it; never updated.

    Partitioned by month of ``started_at`` (UTC): ``cdrs_YYYY_MM``, made ahead by the migration
    and by the CDR worker through ``cdrs_ensure_partition()``. The key Asterisk gives a CDR is
    (system name, uniqueid, sequence): a channel's CDRs share its uniqueid, and the sequence
    restarts from 0 with every Asterisk start. A unique index on a partitioned table has to
    hold the partition column too; ``started_at`` is exact to the microsecond from both the
    AMI event and the CSV log, so a CDR has one key whatever the source.
    """

    __tablename__ = "cdrs"
    __table_args__ = (
        Index("uq_cdrs_key", "uniqueid", "sequence", "system_name", "started_at", unique=True),
        Index("ix_cdrs_tenant_started", "tenant_id", "started_at", "id"),
        # Operators read across tenants in the same order (migration 0005_cdr).
        Index("ix_cdrs_started", "started_at", "id"),
        Index("ix_cdrs_tenant_agent_started", "tenant_id", "agent_user_id", "started_at"),
        Index("ix_cdrs_tenant_linkedid", "tenant_id", "linkedid"),
        # ?forwarded_from=: only forwarded legs are indexed (migration 0035_cdr_forwarded_from).
        Index(
            "ix_cdrs_tenant_forwarded_started",
            "tenant_id",
            "forwarded_from",
            "started_at",
            postgresql_where=text("forwarded_from IS NOT NULL"),
        ),
        {"postgresql_partition_by": "RANGE (started_at)"},
    )

    id: Mapped[int] = mapped_column(
        BigInteger, CDR_ID_SEQUENCE, server_default=CDR_ID_SEQUENCE.next_value(), primary_key=True
    )
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    system_name: Mapped[str] = mapped_column(Text)
    uniqueid: Mapped[str] = mapped_column(Text)
    sequence: Mapped[int] = mapped_column(BigInteger)
    linkedid: Mapped[str] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Seconds, exact to the microsecond: never a float (the contract bills every started second).
    duration: Mapped[Decimal] = mapped_column(Numeric(14, 6))
    billsec: Mapped[Decimal] = mapped_column(Numeric(14, 6))
    disposition: Mapped[str] = mapped_column(Text)
    # No foreign keys: a CDR naming a tenant or queue since deleted must still be written.
    tenant_id: Mapped[int | None] = mapped_column(BigInteger)
    direction: Mapped[str | None] = mapped_column(Text)
    did: Mapped[str | None] = mapped_column(Text)
    queue_id: Mapped[int | None] = mapped_column(BigInteger)
    agent_user_id: Mapped[int | None] = mapped_column(BigInteger)
    src: Mapped[str] = mapped_column(Text)
    dst: Mapped[str] = mapped_column(Text)
    dcontext: Mapped[str] = mapped_column(Text)
    clid: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(Text)
    dstchannel: Mapped[str] = mapped_column(Text)
    lastapp: Mapped[str] = mapped_column(Text)
    lastdata: Mapped[str] = mapped_column(Text)
    accountcode: Mapped[str] = mapped_column(Text)
    peeraccount: Mapped[str] = mapped_column(Text)
    amaflags: Mapped[str] = mapped_column(Text)
    userfield: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)  # "ami" (live event) or "csv" (backfilled)
    # Migration 0010_cdr_legs. What was dialled (E.164, or an internal call's extension); NULL on
    # legs recorded before it (``dst`` then).
    to_number: Mapped[str | None] = mapped_column(Text)
    refusal_reason: Mapped[str | None] = mapped_column(Text)
    billable: Mapped[bool] = mapped_column(Boolean, server_default=false())
    device: Mapped[str | None] = mapped_column(Text)
    # Migration 0035_cdr_forwarded_from. The user (of the leg's tenant) whose forwarding rule
    # sent this leg here; like the agent, no foreign key: a user's legs outlive the user.
    forwarded_from: Mapped[int | None] = mapped_column(BigInteger)
