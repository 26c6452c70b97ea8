"""Asterisk nodes and where each tenant lives.

A tenant's queues and agents share one Asterisk (``app_queue`` state lives in one process),
so each tenant is placed on one node, with an optional standby the SIP edge sends its
phones and calls to while the node is down. A tenant with no placement lives on the
default node (the active node with the lowest id).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base, Timestamped, Versioned


class NodeState(StrEnum):
    ACTIVE = "active"  # takes new tenants, calls and registrations
    DRAINING = "draining"  # keeps what it has, gets no new calls or tenants
    DOWN = "down"  # out of service: the edge sends its tenants to their standby


class AsteriskNode(Timestamped, Versioned, Base):
    """One Asterisk: how the control plane reaches it (AMI) and the SIP edge (SIP)."""

    __tablename__ = "asterisk_nodes"
    __table_args__ = (
        CheckConstraint("name ~ '^[a-z0-9][a-z0-9-]{0,31}$'", name="name_alphabet"),
        CheckConstraint(
            "systemname ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$'", name="systemname_alphabet"
        ),
        CheckConstraint("state in ('active', 'draining', 'down')", name="state_known"),
        CheckConstraint("ami_port between 1 and 65535", name="ami_port_range"),
        CheckConstraint("sip_port between 1 and 65535", name="sip_port_range"),
        CheckConstraint(r"phone_websocket ~ '^wss?://[^\s/]+(/\S*)?$'", name="phone_websocket_url"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    # Asterisk's `systemname` (asterisk.conf): it prefixes every uniqueid, so CDR keys of
    # different nodes never collide.
    systemname: Mapped[str] = mapped_column(String(32), unique=True)
    ami_host: Mapped[str] = mapped_column(String(255))
    ami_port: Mapped[int] = mapped_column(Integer, default=5038)
    ami_username: Mapped[str] = mapped_column(String(64))
    ami_secret: Mapped[str] = mapped_column(Text)
    sip_host: Mapped[str] = mapped_column(String(255))
    sip_port: Mapped[int] = mapped_column(Integer, default=5060)
    state: Mapped[str] = mapped_column(String(8), default=NodeState.ACTIVE.value)
    # Where browsers reach this node's SIP WebSocket (browser phones, docs/webrtc.md); none:
    # the control plane's own setting for the configured Asterisk, else no browser phones.
    phone_websocket: Mapped[str | None] = mapped_column(String(255))


class TenantPlacement(Base):
    """The node a tenant lives on, and the node that takes it while that one is down."""

    __tablename__ = "tenant_placements"
    __table_args__ = (
        CheckConstraint(
            "standby_node_id is null or standby_node_id <> node_id", name="standby_elsewhere"
        ),
    )

    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    node_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("asterisk_nodes.id", ondelete="RESTRICT"), index=True
    )
    standby_node_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("asterisk_nodes.id", ondelete="RESTRICT"), index=True
    )
    placed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
