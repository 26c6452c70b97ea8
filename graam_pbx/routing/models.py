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
from graam_pbx.destinations.models import DESTINATION_CHECK


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
        CheckConstraint("match in ('ip', 'ip_and_header', 'auth')", name="match_known"),
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
    # How a call is known to come from this carrier (graam_pbx.routing.schemas.TrunkMatch).
    match: Mapped[str] = mapped_column(String(16), default="ip", server_default="ip")
    # Where the carrier sends from, as CIDR; the host too when it is an address.
    inbound_addresses: Mapped[list[str]] = mapped_column(
        ARRAY(String(49)), default=list, server_default="{}"
    )
    match_header: Mapped[str | None] = mapped_column(String(200))
    # The account the carrier authenticates with (match "auth"); plain for the same reason.
    inbound_username: Mapped[str | None] = mapped_column(String(80), unique=True)
    inbound_password: Mapped[str | None] = mapped_column(String(128))
    # The host name's addresses as the control plane last resolved them (CIDR), and which host
    # name they are of: Asterisk itself never resolves a trunk's name at a reload.
    resolved_addresses: Mapped[list[str]] = mapped_column(
        ARRAY(String(49)), default=list, server_default="{}"
    )
    resolved_host: Mapped[str | None] = mapped_column(String(253))
    # The carrier accepts, on a call a tenant forwards, a caller number the tenant does not
    # hold: the forwarded call shows the original caller's number (else the route's number).
    forwarded_caller_id: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default="false"
    )


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
    # The name carriers see (From, P-Asserted-Identity); none sends no name, never an agent's.
    caller_id_name: Mapped[str | None] = mapped_column(String(40))
