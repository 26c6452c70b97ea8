"""Click-to-call requests, one per tenant and idempotency key (docs/integrations.md).

A request's row is committed before its ``Originate`` is sent: the same key asked again (a
client's retry, or the same click sent twice at once) finds it and answers with its call, and
no second call is ever placed. ``status`` says what became of the ``Originate``: ``pending``
until Asterisk answered it (or when its answer never came: the call may exist), ``sent`` once
Asterisk queued it, ``failed`` when Asterisk certainly did not; only a failed one is sent
again by a retry, with the same channel id.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Identity,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base, TenantOwned


class OriginateStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class ClickToCall(TenantOwned, Base):
    __tablename__ = "click_to_calls"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        CheckConstraint("status in ('pending', 'sent', 'failed')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    # The channel id given to the Originate: the agent's channel's uniqueid, and the call's
    # linkedid (its CDRs' and its recordings').
    call_id: Mapped[str] = mapped_column(String(64), unique=True)
    # Who rings (users are kept as ids: the row outlives a deleted user, as the audit log).
    agent_user_id: Mapped[int] = mapped_column(BigInteger)
    device: Mapped[str] = mapped_column(String(128))  # the device's SIP username
    number: Mapped[str] = mapped_column(String(16))  # E.164, dialled once the agent answers
    requested_by: Mapped[int] = mapped_column(BigInteger)  # the user (or API key's user)
    status: Mapped[str] = mapped_column(
        String(8), default=OriginateStatus.PENDING.value, server_default="pending"
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
