from __future__ import annotations

from sqlalchemy import (
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
from graam_pbx.destinations.models import DESTINATION_CHECK


class IvrMenu(TenantOwned, Timestamped, Versioned, Base):
    __tablename__ = "ivr_menus"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        CheckConstraint("repeat_count between 0 and 10", name="repeat_range"),
        CheckConstraint(DESTINATION_CHECK.format("timeout_dest"), name="timeout_dest_known"),
        CheckConstraint(DESTINATION_CHECK.format("invalid_dest"), name="invalid_dest_known"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    greeting_prompt_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("prompts.id", ondelete="RESTRICT")
    )
    timeout_s: Mapped[int] = mapped_column(Integer, default=5)
    repeat_count: Mapped[int] = mapped_column(Integer, default=2)
    timeout_dest_type: Mapped[str] = mapped_column(String(16), default="hangup")
    timeout_dest_id: Mapped[int | None] = mapped_column(BigInteger)
    invalid_dest_type: Mapped[str] = mapped_column(String(16), default="hangup")
    invalid_dest_id: Mapped[int | None] = mapped_column(BigInteger)


class IvrOption(TenantOwned, Base):
    __tablename__ = "ivr_options"
    __table_args__ = (
        UniqueConstraint("menu_id", "digit"),
        CheckConstraint("digit ~ '^[0-9*#]$'", name="digit_alphabet"),
        CheckConstraint(DESTINATION_CHECK.format("dest"), name="dest_known"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    menu_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("ivr_menus.id", ondelete="CASCADE"), index=True
    )
    digit: Mapped[str] = mapped_column(String(1))
    dest_type: Mapped[str] = mapped_column(String(16))
    dest_id: Mapped[int | None] = mapped_column(BigInteger)
