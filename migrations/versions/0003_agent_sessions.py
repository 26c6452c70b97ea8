"""agent sessions, licences in use and agent-state events

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_sessions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("device_id", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("started_by", sa.BigInteger(), nullable=True),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("pause_reason", sa.String(length=64), nullable=True),
        sa.Column("paused_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "source in ('api', 'phone')", name=op.f("ck_agent_sessions_source_known")
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["agent_devices.id"],
            name=op.f("fk_agent_sessions_device_id_agent_devices"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_agent_sessions_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_agent_sessions_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_sessions")),
    )
    op.create_index(
        op.f("ix_agent_sessions_device_id"), "agent_sessions", ["device_id"], unique=False
    )
    op.create_index(
        op.f("ix_agent_sessions_tenant_id"), "agent_sessions", ["tenant_id"], unique=False
    )
    op.create_index(op.f("ix_agent_sessions_user_id"), "agent_sessions", ["user_id"], unique=False)
    # The licence count and "one live session per agent" read only live rows.
    op.create_index(
        "ix_agent_sessions_live_tenant",
        "agent_sessions",
        ["tenant_id"],
        unique=False,
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.create_index(
        "uq_agent_sessions_live_user",
        "agent_sessions",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.create_table(
        "agent_state_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("session_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("actor_user_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "kind in ('login', 'logout', 'pause', 'unpause', 'refused')",
            name=op.f("ck_agent_state_events_kind_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_state_events")),
    )
    op.create_index(
        "ix_agent_state_events_tenant_at", "agent_state_events", ["tenant_id", "at"], unique=False
    )
    op.create_index(
        "ix_agent_state_events_user_at", "agent_state_events", ["user_id", "at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_agent_state_events_user_at", table_name="agent_state_events")
    op.drop_index("ix_agent_state_events_tenant_at", table_name="agent_state_events")
    op.drop_table("agent_state_events")
    op.drop_index("uq_agent_sessions_live_user", table_name="agent_sessions")
    op.drop_index("ix_agent_sessions_live_tenant", table_name="agent_sessions")
    op.drop_index(op.f("ix_agent_sessions_user_id"), table_name="agent_sessions")
    op.drop_index(op.f("ix_agent_sessions_tenant_id"), table_name="agent_sessions")
    op.drop_index(op.f("ix_agent_sessions_device_id"), table_name="agent_sessions")
    op.drop_table("agent_sessions")
