from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base


class SipBlock(Base):
    """A SIP source Asterisk denies: from ``blocked_at`` until ``expires_at`` or an unblock.

    Rows are kept once lifted (``unblocked_at``): the history of who attacked and who let
    them in again. At most one row per source is in force (the partial unique index), so
    two processes blocking the same source at once extend one block.
    """

    __tablename__ = "sip_blocks"
    __table_args__ = (
        Index(
            "uq_sip_blocks_address_in_force",
            "address",
            unique=True,
            postgresql_where=text("unblocked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # An IPv4 address, or an IPv6 /64 (one host's share of a network) as CIDR.
    address: Mapped[str] = mapped_column(String(49))
    reason: Mapped[str] = mapped_column(String(200))
    failures: Mapped[int] = mapped_column(Integer)
    blocked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # When and by whom it was lifted: an operator's e-mail, "cli", "allow-list"; a block that
    # simply expired has unblocked_at = expires_at and no unblocked_by.
    unblocked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    unblocked_by: Mapped[str | None] = mapped_column(String(254))
