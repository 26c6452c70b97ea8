from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Identity, String, UniqueConstraint
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
