from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Identity,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base, TenantOwned, Timestamped, Versioned
from graam_pbx.destinations.models import DESTINATION_CHECK

STRATEGIES = ("ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear", "wrandom")
# Asterisk's joinempty / leavewhenempty: "loose" when the queue has no member, "strict" also
# when every member is paused or unavailable; "yes" always joins, "no" never leaves.
JOIN_EMPTY = ("yes", "loose", "strict")
LEAVE_WHEN_EMPTY = ("no", "loose", "strict")


class Queue(TenantOwned, Timestamped, Versioned, Base):
    __tablename__ = "queues"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        CheckConstraint("strategy in ('" + "', '".join(STRATEGIES) + "')", name="strategy_known"),
        CheckConstraint(
            "fallback_type IS NULL OR " + DESTINATION_CHECK.format("fallback"),
            name="fallback_known",
        ),
        CheckConstraint(
            "service_level_seconds BETWEEN 1 AND 3600", name="service_level_seconds_range"
        ),
        CheckConstraint(
            "short_abandon_seconds BETWEEN 0 AND 600", name="short_abandon_seconds_range"
        ),
        CheckConstraint(
            "join_empty in ('" + "', '".join(JOIN_EMPTY) + "')", name="join_empty_known"
        ),
        CheckConstraint(
            "leave_when_empty in ('" + "', '".join(LEAVE_WHEN_EMPTY) + "')",
            name="leave_when_empty_known",
        ),
        CheckConstraint(
            "wallboard_waiting_warn BETWEEN 1 AND wallboard_waiting_alarm "
            "AND wallboard_waiting_alarm <= 10000",
            name="wallboard_waiting_order",
        ),
        CheckConstraint(
            "wallboard_wait_warn_seconds BETWEEN 1 AND wallboard_wait_alarm_seconds "
            "AND wallboard_wait_alarm_seconds <= 86400",
            name="wallboard_wait_order",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    strategy: Mapped[str] = mapped_column(String(16), default="ringall")
    ring_timeout: Mapped[int] = mapped_column(Integer, default=15)  # seconds per member try
    retry: Mapped[int] = mapped_column(Integer, default=5)  # seconds between rounds
    wrapup_time: Mapped[int] = mapped_column(Integer, default=0)
    max_wait: Mapped[int | None] = mapped_column(Integer)  # seconds, then the fallback
    fallback_type: Mapped[str | None] = mapped_column(String(16))
    fallback_id: Mapped[int | None] = mapped_column(BigInteger)
    music_on_hold: Mapped[str] = mapped_column(String(64), default="default")
    # The tenant's class named by music_on_hold (none for the shared "default"): while a
    # queue plays it, the class cannot be deleted.
    moh_class_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("moh_classes.id", ondelete="RESTRICT"), index=True
    )
    announce_position: Mapped[bool] = mapped_column(Boolean, default=False)
    announce_holdtime: Mapped[bool] = mapped_column(Boolean, default=False)
    announce_frequency: Mapped[int] = mapped_column(Integer, default=0)  # seconds; 0 = never
    weight: Mapped[int] = mapped_column(Integer, default=0)  # priority between queues
    # The KPIs' thresholds (seconds): answered within the first meets the service level, a
    # caller hanging up before the second is a short abandon.
    service_level_seconds: Mapped[int] = mapped_column(Integer, default=20, server_default="20")
    short_abandon_seconds: Mapped[int] = mapped_column(Integer, default=5, server_default="5")
    join_empty: Mapped[str] = mapped_column(String(8), default="yes", server_default="yes")
    leave_when_empty: Mapped[str] = mapped_column(String(8), default="no", server_default="no")
    # The wallboard's colours: warn (amber) then alarm (red) at so many callers waiting, or
    # at so long a wait for the longest waiting caller.
    wallboard_waiting_warn: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    wallboard_waiting_alarm: Mapped[int] = mapped_column(Integer, default=6, server_default="6")
    wallboard_wait_warn_seconds: Mapped[int] = mapped_column(
        Integer, default=30, server_default="30"
    )
    wallboard_wait_alarm_seconds: Mapped[int] = mapped_column(
        Integer, default=90, server_default="90"
    )


class QueueMember(TenantOwned, Base):
    __tablename__ = "queue_members"
    __table_args__ = (
        UniqueConstraint("queue_id", "user_id"),
        CheckConstraint("penalty >= 0", name="penalty_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    queue_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("queues.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    penalty: Mapped[int] = mapped_column(Integer, default=0)  # priority between agents
