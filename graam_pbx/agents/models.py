from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base, TenantOwned, Timestamped, Versioned


class AgentDevice(TenantOwned, Timestamped, Versioned, Base):
    """A SIP phone or softphone of an agent: one PJSIP endpoint, auth and AOR."""

    __tablename__ = "agent_devices"
    __table_args__ = (
        UniqueConstraint("tenant_id", "extension"),
        CheckConstraint("max_contacts between 1 and 10", name="max_contacts_range"),
        CheckConstraint("transport in ('udp', 'tcp', 'tls')", name="transport_known"),
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
    transport: Mapped[str] = mapped_column(String(8), default="udp")
    max_contacts: Mapped[int] = mapped_column(Integer, default=1)
