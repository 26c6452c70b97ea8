from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Identity, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base, TenantOwned, Timestamped, Versioned

# The class every installation has (asterisk_conf/musiconhold.conf): Debian's hold music.
DEFAULT_CLASS = "default"


class MohClass(TenantOwned, Timestamped, Versioned, Base):
    """A tenant's hold music: its prompts played in turn, Asterisk's class ``t<tenant>-<name>``."""

    __tablename__ = "moh_classes"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))


class MohClassPrompt(TenantOwned, Base):
    """One prompt of a class, at its place in the playing order."""

    __tablename__ = "moh_class_prompts"
    __table_args__ = (UniqueConstraint("class_id", "position"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    class_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("moh_classes.id", ondelete="CASCADE"), index=True
    )
    # A prompt still played as hold music cannot be deleted.
    prompt_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("prompts.id", ondelete="RESTRICT"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
