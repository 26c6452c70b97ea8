"""recordings: each tenant's recording policy and settings, and the recordings

Revision ID: 0028_recordings
Revises: 0027_node_phone_websocket
Create Date: 2026-12-05 21:30:00+00:00

``recording_rules``: a tenant's policy, one row per scope (the tenant, one queue or one agent)
and direction (or every direction: NULL), with its mode (never, always, on demand); the most
specific rule wins (docs/recordings.md). ``recording_settings``: the announcement played to
callers, the retention, whether agents may play their own recordings and whether an agent is
told when a supervisor listens. ``recordings``: one row per recorded leg, stored, with its
size and checksum; keyed by the recorded channel's uniqueid, so a file found twice is
registered once.

A new API area, ``recordings``: existing API keys are not scoped to it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028_recordings"
down_revision: str | None = "0027_node_phone_websocket"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MODES = "mode in ('never', 'always', 'on_demand')"
DIRECTIONS = "direction in ('inbound', 'outbound', 'internal')"


def _timestamps() -> list[sa.Column[object]]:
    return [
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
    ]


def upgrade() -> None:
    op.create_table(
        "recording_settings",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("announce_prompt_id", sa.BigInteger(), nullable=True),
        sa.Column("retention_days", sa.Integer(), server_default="90", nullable=False),
        sa.Column("agents_play_own", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("supervision_tells_agent", sa.Boolean(), server_default="true", nullable=False),
        *_timestamps(),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "retention_days BETWEEN 1 AND 3650",
            name=op.f("ck_recording_settings_retention_days_range"),
        ),
        sa.ForeignKeyConstraint(
            ["announce_prompt_id"],
            ["prompts.id"],
            name=op.f("fk_recording_settings_announce_prompt_id_prompts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_recording_settings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_recording_settings")),
    )
    op.create_index(
        op.f("ix_recording_settings_announce_prompt_id"),
        "recording_settings",
        ["announce_prompt_id"],
    )
    op.create_table(
        "recording_rules",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("queue_id", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("direction", sa.String(length=8), nullable=True),
        sa.Column("mode", sa.String(length=10), nullable=False),
        *_timestamps(),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(MODES, name=op.f("ck_recording_rules_mode_known")),
        sa.CheckConstraint(
            f"direction IS NULL OR {DIRECTIONS}", name=op.f("ck_recording_rules_direction_known")
        ),
        sa.CheckConstraint(
            "queue_id IS NULL OR user_id IS NULL", name=op.f("ck_recording_rules_one_scope")
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queues.id"],
            name=op.f("fk_recording_rules_queue_id_queues"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_recording_rules_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_recording_rules_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_rules")),
        sa.UniqueConstraint(
            "tenant_id",
            "queue_id",
            "user_id",
            "direction",
            name=op.f("uq_recording_rules_tenant_id_queue_id_user_id_direction"),
            postgresql_nulls_not_distinct=True,
        ),
    )
    for column in ("tenant_id", "queue_id", "user_id"):
        op.create_index(op.f(f"ix_recording_rules_{column}"), "recording_rules", [column])
    op.create_table(
        "recordings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("linkedid", sa.Text(), nullable=False),
        sa.Column("uniqueid", sa.Text(), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("queue_id", sa.BigInteger(), nullable=True),
        sa.Column("agent_user_id", sa.BigInteger(), nullable=True),
        sa.Column("party_number", sa.String(length=32), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("storage_key", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(DIRECTIONS, name=op.f("ck_recordings_direction_known")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_recordings_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        sa.UniqueConstraint("uniqueid", name=op.f("uq_recordings_uniqueid")),
    )
    op.create_index(op.f("ix_recordings_tenant_id"), "recordings", ["tenant_id"])
    op.create_index(op.f("ix_recordings_agent_user_id"), "recordings", ["agent_user_id"])
    op.create_index(op.f("ix_recordings_party_number"), "recordings", ["party_number"])
    op.create_index("ix_recordings_tenant_linkedid", "recordings", ["tenant_id", "linkedid"])
    op.create_index("ix_recordings_tenant_started_at", "recordings", ["tenant_id", "started_at"])


def downgrade() -> None:
    op.drop_table("recordings")
    op.drop_table("recording_rules")
    op.drop_table("recording_settings")
