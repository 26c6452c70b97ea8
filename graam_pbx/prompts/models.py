from __future__ import annotations

from sqlalchemy import BigInteger, Identity, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, deferred, mapped_column

from graam_pbx.db import Base, TenantOwned, Timestamped, Versioned


class Prompt(TenantOwned, Timestamped, Versioned, Base):
    """A tenant's recording (WAV, 8 or 16 kHz, mono, 16-bit PCM); Postgres holds the audio."""

    __tablename__ = "prompts"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    sample_rate: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    audio: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
