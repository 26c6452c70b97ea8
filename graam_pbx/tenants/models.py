from __future__ import annotations

from datetime import date
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Date, Identity, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base, Timestamped, Versioned


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATING = "terminating"
    TERMINATED = "terminated"


class Tenant(Timestamped, Versioned, Base):
    __tablename__ = "tenants"
    __table_args__ = (
        CheckConstraint("licences >= 0", name="licences_not_negative"),
        CheckConstraint("licence_ceiling >= 0", name="licence_ceiling_not_negative"),
        CheckConstraint(
            "status in ('active', 'suspended', 'terminating', 'terminated')", name="status_known"
        ),
        CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'", name="slug_alphabet"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    timezone: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=TenantStatus.ACTIVE.value)
    plan: Mapped[str] = mapped_column(String(64), default="standard")
    licences: Mapped[int] = mapped_column(Integer, default=0)
    # The most licences the tenant's admin may hold, set by the operator (None: no ceiling).
    licence_ceiling: Mapped[int | None] = mapped_column(Integer)
    ends_on: Mapped[date | None] = mapped_column(Date)  # set while terminating
