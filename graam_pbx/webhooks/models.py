"""Webhooks: each tenant's endpoints, the events of its calls, agents and campaigns, and one
delivery per event and endpoint subscribed to it. docs/integrations.md.

Events are written by the control plane (``graam_pbx.webhooks.recorder``, from Asterisk's
queue events) and by Postgres itself (triggers of the migration: a CDR written, an agent's
state changed, a campaign finished), only for tenants with an enabled endpoint subscribed to
the event's type, or whose events are streamed (``EventStream``: all their types). Each new
event gets, in the same transaction, a pending delivery per such endpoint, and the delivery
worker and the streams are woken (``pg_notify``). A delivery is delivered, retried, or dead
(failed for a day; shown to the tenant with its last error).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base, TenantOwned, Timestamped, Versioned


class EventType(StrEnum):
    CALL_RINGING = "call.ringing"  # an agent's phone rings with a queue call
    CALL_ANSWERED = "call.answered"  # an agent answered a queue call
    CALL_MISSED = "call.missed"  # an agent's phone rang and nobody answered
    CALL_ABANDONED = "call.abandoned"  # the caller hung up while waiting in a queue
    CALL_ENDED = "call.ended"  # a leg of a call ended: its CDR
    VOICEMAIL_LEFT = "voicemail.left"  # a caller left a message in a voicemail box
    AGENT_STATE_CHANGED = "agent.state_changed"
    CAMPAIGN_FINISHED = "campaign.finished"


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"  # failed for a day: not retried any more


def _known(column: str, values: list[str]) -> str:
    return f"{column} in ('" + "', '".join(values) + "')"


class WebhookEndpoint(TenantOwned, Timestamped, Versioned, Base):
    """An HTTP endpoint of a tenant and the events it subscribed to."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(ARRAY(Text))
    # HMAC-SHA256 key of the signatures: shown once, when made or rotated.
    secret: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(String(200), default="", server_default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    # Since when every delivery to it failed (None: the last one succeeded, or none yet).
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookEvent(TenantOwned, Base):
    """One event of a tenant, as delivered (``payload`` is the body's ``data``)."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        CheckConstraint(_known("type", [t.value for t in EventType]), name="type_known"),
        Index("ix_webhook_events_tenant_id_id", "tenant_id", "id"),
        # A message is announced once (its key: "voicemail:<box id>:<msg_id>").
        Index(
            "ux_webhook_events_voicemail",
            "tenant_id",
            "ordering_key",
            unique=True,
            postgresql_where=text("type = 'voicemail.left'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    # Events with one key are delivered to an endpoint in their order: a call's
    # ("call:<linkedid>"), an agent's ("agent:<user id>"); None: in any order.
    ordering_key: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebhookDelivery(TenantOwned, Base):
    """One event to one endpoint: pending until delivered, or dead."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        CheckConstraint(_known("state", [s.value for s in DeliveryState]), name="state_known"),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("state = 'pending'"),
        ),
        Index(
            "ix_webhook_deliveries_pending_order",
            "endpoint_id",
            "ordering_key",
            "id",
            postgresql_where=text("state = 'pending'"),
        ),
        Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True
    )
    ordering_key: Mapped[str | None] = mapped_column(Text)  # the event's
    state: Mapped[str] = mapped_column(String(10), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    last_status: Mapped[int | None] = mapped_column(Integer)  # the endpoint's HTTP status
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Retried by hand: tried again for the retry period from then, not from the event.
    retry_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EventStream(Base):
    """A tenant whose events are streamed (``GET /api/v1/events/stream``): while the lease runs,
    its events are stored as for an endpoint subscribed to every type. The API processes
    serving its streams renew it while one is connected (``graam_pbx.webhooks.stream``)."""

    __tablename__ = "event_streams"

    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    # When the tenant's streaming began: the lease unbroken since.
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
