from __future__ import annotations

from sqlalchemy import BigInteger, Identity, String
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base, TenantOwned, Timestamped, Versioned


class ExternalNumber(TenantOwned, Timestamped, Versioned, Base):
    """A number outside the switch that calls can be sent to (a destination of type
    ``external``): placed through the tenant's outbound routes as any outbound call."""

    __tablename__ = "external_numbers"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    number: Mapped[str] = mapped_column(String(16))  # E.164
