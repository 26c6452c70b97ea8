from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Numeric,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base, Timestamped, Versioned


class NumberType(StrEnum):
    GEOGRAPHIC = "geographic"
    MOBILE = "mobile"
    TOLL_FREE = "toll_free"
    NATIONAL = "national"


class NumberStatus(StrEnum):
    AVAILABLE = "available"
    ASSIGNED = "assigned"
    PORT_OUT = "port_out"  # released for a port-out request: reserved, never sold again
    PORTED_OUT = "ported_out"  # gone to another operator: held by no one, never sold again


class PhoneNumber(Timestamped, Versioned, Base):
    """One number of the operator's catalogue; ``tenant_id`` is set while a tenant holds it."""

    __tablename__ = "phone_numbers"
    __table_args__ = (
        CheckConstraint("e164 ~ '^\\+[1-9][0-9]{6,14}$'", name="e164_format"),
        CheckConstraint(
            "number_type in ('geographic', 'mobile', 'toll_free', 'national')", name="type_known"
        ),
        CheckConstraint(
            "status in ('available', 'assigned', 'port_out', 'ported_out')", name="status_known"
        ),
        CheckConstraint(
            "(status in ('available', 'ported_out')) = (tenant_id IS NULL)",
            name="held_iff_not_free",
        ),
        CheckConstraint("monthly_price >= 0", name="price_not_negative"),
        Index("ix_phone_numbers_available", "country", "number_type", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    e164: Mapped[str] = mapped_column(String(16), unique=True)
    country: Mapped[str] = mapped_column(String(2))
    number_type: Mapped[str] = mapped_column(String(16))
    monthly_price: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    status: Mapped[str] = mapped_column(String(16), default=NumberStatus.AVAILABLE.value)
    tenant_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
