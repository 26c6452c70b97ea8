"""Where each tenant's configuration stands: committed in Postgres vs live in Asterisk."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base


class ConfigGeneration(Base):
    """One row per tenant. ``committed`` grows in the transaction of every configuration
    change; ``applied`` is the committed value whose files are written and reloaded."""

    __tablename__ = "config_generations"

    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    committed: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    applied: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    committed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The first commit not applied yet (NULL when applied == committed): the apply lag.
    pending_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ConfigTrunkFailure(Base):
    """A trunk whose configuration cannot be rendered (its previous file stays live)."""

    __tablename__ = "config_trunk_failures"

    trunk_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("trunks.id", ondelete="CASCADE"), primary_key=True
    )
    last_error: Mapped[str] = mapped_column(Text, nullable=False)
    failing_since: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
