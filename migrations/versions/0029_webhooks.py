"""webhooks: tenants' endpoints, their events and one delivery per event and endpoint

Revision ID: 0029_webhooks
Revises: 0028_recordings
Create Date: 2026-12-06 01:20:00+00:00

``webhook_endpoints``: a tenant's HTTP endpoints, the event types each subscribed to, its
signing secret. ``webhook_events``: the tenant's events (only while some enabled endpoint of
the tenant subscribes to the type). ``webhook_deliveries``: one per event and subscribed
endpoint, pending until delivered or dead.

Triggers make events where Postgres is the first to know (statement-level, from the rows the
statement wrote, doing nothing unless some enabled endpoint subscribes to the type):
``call.ended`` for every CDR written (live or backfilled: a CDR written twice is inserted once,
so its event is made once), ``agent.state_changed`` for every new stretch of an agent's
timeline, ``campaign.finished`` when a campaign's status becomes finished. Every new event is
fanned out to the deliveries of its tenant's subscribed endpoints in the same transaction, and
the delivery worker is woken (``pg_notify('graam_webhooks')``). A voicemail message is
announced once: ``voicemail.left`` events are unique per tenant and message.

A new API area, ``webhooks``: existing API keys are not scoped to it.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0029_webhooks"
down_revision: str | None = "0028_recordings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TYPES = (
    "type in ('call.ringing', 'call.answered', 'call.missed', 'call.abandoned', "
    "'call.ended', 'voicemail.left', 'agent.state_changed', 'campaign.finished')"
)
STATES = "state in ('pending', 'delivered', 'dead')"

# Whether some enabled endpoint of a tenant subscribes to an event type.
SUBSCRIBED = (
    "EXISTS (SELECT 1 FROM webhook_endpoints p WHERE p.tenant_id = {tenant} AND p.enabled "
    "AND {type} = ANY (p.events))"
)
ANY_SUBSCRIBED = (
    "NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled AND {type} = ANY (events))"
)

FUNCTIONS = [
    """
    CREATE FUNCTION webhook_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id, ordering_key)
        SELECT e.tenant_id, p.id, e.id, e.ordering_key
        FROM new_events e
        JOIN webhook_endpoints p
          ON p.tenant_id = e.tenant_id AND p.enabled AND e.type = ANY (p.events)
        ORDER BY e.id, p.id;
        IF FOUND THEN
            PERFORM pg_notify('graam_webhooks', '');
        END IF;
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION webhook_cdrs_ended() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF {ANY_SUBSCRIBED.format(type="'call.ended'")} THEN
            RETURN NULL;
        END IF;
        INSERT INTO webhook_events (tenant_id, type, ordering_key, occurred_at, payload)
        SELECT c.tenant_id, 'call.ended', 'call:' || c.linkedid, c.ended_at,
               jsonb_build_object(
                   'call_id', c.linkedid,
                   'channel_id', c.uniqueid,
                   'cdr', jsonb_build_object(
                       'uniqueid', c.uniqueid, 'sequence', c.sequence,
                       'linkedid', c.linkedid, 'system_name', c.system_name,
                       'started_at', c.started_at, 'answered_at', c.answered_at,
                       'ended_at', c.ended_at, 'duration', c.duration, 'billsec', c.billsec,
                       'disposition', c.disposition, 'direction', c.direction, 'did', c.did,
                       'queue_id', c.queue_id, 'agent_user_id', c.agent_user_id,
                       'src', c.src, 'dst', c.dst, 'to_number', c.to_number,
                       'refusal_reason', c.refusal_reason, 'billable', c.billable,
                       'device', c.device))
        FROM new_cdrs c
        WHERE c.tenant_id IS NOT NULL
          AND {SUBSCRIBED.format(tenant="c.tenant_id", type="'call.ended'")}
        ORDER BY c.ended_at, c.uniqueid, c.sequence;
        RETURN NULL;
    END $$
    """,  # noqa: S608 - built from this file's constants
    f"""
    CREATE FUNCTION webhook_agent_states() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF {ANY_SUBSCRIBED.format(type="'agent.state_changed'")} THEN
            RETURN NULL;
        END IF;
        INSERT INTO webhook_events (tenant_id, type, ordering_key, occurred_at, payload)
        SELECT i.tenant_id, 'agent.state_changed', 'agent:' || i.agent_id, i.started_at,
               jsonb_build_object(
                   'agent_user_id', i.agent_id, 'state', i.state,
                   'pause_reason', i.pause_reason_code, 'since', i.started_at)
        FROM new_intervals i
        WHERE {SUBSCRIBED.format(tenant="i.tenant_id", type="'agent.state_changed'")}
        ORDER BY i.started_at, i.id;
        RETURN NULL;
    END $$
    """,  # noqa: S608 - built from this file's constants
    f"""
    CREATE FUNCTION webhook_campaign_finished() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO webhook_events (tenant_id, type, ordering_key, occurred_at, payload)
        SELECT NEW.tenant_id, 'campaign.finished', 'campaign:' || NEW.id, now(),
               jsonb_build_object('campaign_id', NEW.id, 'name', NEW.name)
        WHERE {SUBSCRIBED.format(tenant="NEW.tenant_id", type="'campaign.finished'")};
        RETURN NULL;
    END $$
    """,
]

TRIGGERS = [
    "CREATE TRIGGER webhook_events_fan_out AFTER INSERT ON webhook_events "
    "REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION webhook_fan_out()",
    "CREATE TRIGGER cdrs_webhooks AFTER INSERT ON cdrs "
    "REFERENCING NEW TABLE AS new_cdrs FOR EACH STATEMENT EXECUTE FUNCTION webhook_cdrs_ended()",
    "CREATE TRIGGER agent_state_intervals_webhooks AFTER INSERT ON agent_state_intervals "
    "REFERENCING NEW TABLE AS new_intervals FOR EACH STATEMENT "
    "EXECUTE FUNCTION webhook_agent_states()",
    "CREATE TRIGGER campaigns_webhooks AFTER UPDATE OF status ON campaigns FOR EACH ROW "
    "WHEN (NEW.status = 'finished' AND OLD.status IS DISTINCT FROM 'finished') "
    "EXECUTE FUNCTION webhook_campaign_finished()",
]


def _tenant(table: str) -> list[Any]:
    return [
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f(f"fk_{table}_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        *_tenant("webhook_endpoints"),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("description", sa.String(length=200), server_default="", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index(op.f("ix_webhook_endpoints_tenant_id"), "webhook_endpoints", ["tenant_id"])
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        *_tenant("webhook_events"),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("ordering_key", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(TYPES, name=op.f("ck_webhook_events_type_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
    )
    op.create_index(op.f("ix_webhook_events_tenant_id"), "webhook_events", ["tenant_id"])
    op.create_index("ix_webhook_events_tenant_id_id", "webhook_events", ["tenant_id", "id"])
    op.create_index(
        "ux_webhook_events_voicemail",
        "webhook_events",
        ["tenant_id", "ordering_key"],
        unique=True,
        postgresql_where=sa.text("type = 'voicemail.left'"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        *_tenant("webhook_deliveries"),
        sa.Column("endpoint_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("ordering_key", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=10), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retry_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(STATES, name=op.f("ck_webhook_deliveries_state_known")),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["webhook_events.id"],
            name=op.f("fk_webhook_deliveries_event_id_webhook_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "endpoint_id", "event_id", name=op.f("uq_webhook_deliveries_endpoint_id_event_id")
        ),
    )
    op.create_index(op.f("ix_webhook_deliveries_tenant_id"), "webhook_deliveries", ["tenant_id"])
    op.create_index(op.f("ix_webhook_deliveries_event_id"), "webhook_deliveries", ["event_id"])
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_webhook_deliveries_pending_order",
        "webhook_deliveries",
        ["endpoint_id", "ordering_key", "id"],
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint_id_id", "webhook_deliveries", ["endpoint_id", "id"]
    )
    for function in FUNCTIONS:
        op.execute(function)
    for trigger in TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    op.execute("DROP TRIGGER campaigns_webhooks ON campaigns")
    op.execute("DROP TRIGGER agent_state_intervals_webhooks ON agent_state_intervals")
    op.execute("DROP TRIGGER cdrs_webhooks ON cdrs")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_events")
    op.drop_table("webhook_endpoints")
    for name in (
        "webhook_campaign_finished",
        "webhook_agent_states",
        "webhook_cdrs_ended",
        "webhook_fan_out",
    ):
        op.execute(f"DROP FUNCTION {name}()")
