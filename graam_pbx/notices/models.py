from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Identity, String, Text, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base


class Notice(Base):
    """The operator's notice of a change to the service, to every tenant or to some.

    Shown to its tenants' users from ``published_at`` until ``SHOWN_AFTER_EFFECT`` after
    ``effective_on`` (service.py).
    """

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    effective_on: Mapped[date] = mapped_column(Date, index=True)
    # None: every tenant, present and future; else the ids of the tenants it concerns.
    tenant_ids: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger))
    published_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    published_by_user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL")
    )
    published_by: Mapped[str] = mapped_column(String(254))
