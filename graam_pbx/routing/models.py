from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Identity,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base, TenantOwned, Timestamped, Versioned

# A destination is one typed reference, kept as (<prefix>_type, <prefix>_id) column pairs;
# graam_pbx.routing.destinations checks that it exists in the same tenant.
DESTINATION_TYPES = ("agent", "extension", "queue", "ivr", "voicemail", "announcement", "hangup")
DESTINATION_CHECK = "{0}_type in ('" + "', '".join(DESTINATION_TYPES) + "')"


class Schedule(TenantOwned, Timestamped, Versioned, Base):
    """Weekly business hours in a time zone, plus holiday dates (closed all day)."""

    __tablename__ = "schedules"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64))
    # [{"day": 0..6 (Monday=0), "open": "HH:MM", "close": "HH:MM"}, ...]
    weekly: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    # ["YYYY-MM-DD", ...]
    holidays: Mapped[list[str]] = mapped_column(JSONB, default=list)


class InboundRoute(TenantOwned, Timestamped, Versioned, Base):
    """A tenant's DID: where its calls go while open, and while closed."""

    __tablename__ = "inbound_routes"
    __table_args__ = (
        CheckConstraint(DESTINATION_CHECK.format("open_dest"), name="open_dest_known"),
        CheckConstraint(
            "closed_dest_type IS NULL OR " + DESTINATION_CHECK.format("closed_dest"),
            name="closed_dest_known",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    number_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("phone_numbers.id", ondelete="RESTRICT"), unique=True
    )
    schedule_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("schedules.id", ondelete="RESTRICT")
    )
    open_dest_type: Mapped[str] = mapped_column(String(16))
    open_dest_id: Mapped[int | None] = mapped_column(BigInteger)
    closed_dest_type: Mapped[str | None] = mapped_column(String(16))
    closed_dest_id: Mapped[int | None] = mapped_column(BigInteger)


class Trunk(Timestamped, Versioned, Base):
    """An operator's SIP peer to a carrier, shared by every tenant's outbound routes."""

    __tablename__ = "trunks"
    __table_args__ = (
        CheckConstraint("transport in ('udp', 'tcp', 'tls')", name="transport_known"),
        CheckConstraint("port between 1 and 65535", name="port_range"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(Integer, default=5060)
    transport: Mapped[str] = mapped_column(String(8), default="udp")
    country: Mapped[str] = mapped_column(String(2))  # where calls leave: the rating origin
    username: Mapped[str | None] = mapped_column(String(80))
    # Asterisk must present it to the carrier, so it cannot be a one-way hash.
    password: Mapped[str | None] = mapped_column(String(128))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class OutboundRoute(TenantOwned, Timestamped, Versioned, Base):
    """How a tenant's agents reach the outside world: trunk, caller ID, allowed countries."""

    __tablename__ = "outbound_routes"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    trunk_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("trunks.id", ondelete="RESTRICT"))
    caller_id_number_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("phone_numbers.id", ondelete="RESTRICT")
    )
    allowed_countries: Mapped[list[str]] = mapped_column(ARRAY(String(2)))
    priority: Mapped[int] = mapped_column(Integer, default=0)
