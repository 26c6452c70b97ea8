"""agents' state timeline and the tenants' pause-reason catalogues

Revision ID: 0010_agent_states
Revises: 0009_logins
Create Date: 2026-12-03

``agent_state_intervals`` is the timeline the KPI queries sum (one open interval per agent,
held by a partial unique index); ``pause_reasons`` is each tenant's catalogue of pause codes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_agent_states"
down_revision: str | None = "0009_logins"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pause_reasons",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
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
        sa.CheckConstraint("code ~ '^[0-9]{1,8}$'", name=op.f("ck_pause_reasons_code_digits")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_pause_reasons_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pause_reasons")),
        sa.UniqueConstraint("tenant_id", "code", name=op.f("uq_pause_reasons_tenant_id_code")),
    )
    op.create_index(op.f("ix_pause_reasons_tenant_id"), "pause_reasons", ["tenant_id"])
    op.create_table(
        "agent_state_intervals",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("agent_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("pause_reason_code", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state in ('available', 'ringing', 'on-call', 'wrap-up', 'paused', "
            "'unregistered', 'logged-out')",
            name=op.f("ck_agent_state_intervals_state_known"),
        ),
        sa.CheckConstraint(
            "pause_reason_code IS NULL OR state = 'paused'",
            name=op.f("ck_agent_state_intervals_reason_only_paused"),
        ),
        sa.CheckConstraint(
            "ended_at IS NULL OR ended_at >= started_at",
            name=op.f("ck_agent_state_intervals_ordered"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_state_intervals")),
    )
    op.create_index(
        "uq_agent_state_intervals_open",
        "agent_state_intervals",
        ["agent_id"],
        unique=True,
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.create_index(
        "ix_agent_state_intervals_tenant_started",
        "agent_state_intervals",
        ["tenant_id", "started_at"],
    )
    op.create_index(
        "ix_agent_state_intervals_agent_started",
        "agent_state_intervals",
        ["agent_id", "started_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_agent_state_intervals_agent_started", table_name="agent_state_intervals")
    op.drop_index("ix_agent_state_intervals_tenant_started", table_name="agent_state_intervals")
    op.drop_index("uq_agent_state_intervals_open", table_name="agent_state_intervals")
    op.drop_table("agent_state_intervals")
    op.drop_index(op.f("ix_pause_reasons_tenant_id"), table_name="pause_reasons")
    op.drop_table("pause_reasons")
