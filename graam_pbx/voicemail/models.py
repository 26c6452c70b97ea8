from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base, TenantOwned, Timestamped, Versioned


class VoicemailBox(TenantOwned, Timestamped, Versioned, Base):
    __tablename__ = "voicemail_boxes"
    __table_args__ = (UniqueConstraint("tenant_id", "number"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    number: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(100))
    # app_voicemail checks the PIN itself, so it reaches voicemail.conf as written.
    pin: Mapped[str] = mapped_column(String(12))
    email: Mapped[str | None] = mapped_column(String(254))
    greeting_prompt_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("prompts.id", ondelete="RESTRICT")
    )


class VoicemailNotification(TenantOwned, Base):
    """The e-mail of one message: kept so that a message is mailed once, whatever retries.

    ``msg_id`` is the id Asterisk wrote into the message's msgNNNN.txt.
    """

    __tablename__ = "voicemail_notifications"
    __table_args__ = (UniqueConstraint("box_id", "msg_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    box_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("voicemail_boxes.id", ondelete="CASCADE")
    )
    msg_id: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(254))
    # pending (being sent), sent, failed (retried while the message is recent enough).
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
