"""queue calls: one row per caller's stay in a queue, with its outcome

Revision ID: 0010_queue_calls
Revises: 0010_stats
Create Date: 2026-12-03

Written by the live AMI path and by the queue_log backfill under one key (tenant, caller
uniqueid, queue name, entry ordinal), so a row is never doubled.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_queue_calls"
down_revision: str | None = "0010_stats"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTCOMES = (
    "answered",
    "abandoned",
    "timeout",
    "full",
    "joinempty",
    "leaveempty",
    "closed",
    "exitkey",
    "transferred",
)


def upgrade() -> None:
    op.create_table(
        "queue_calls",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("queue_id", sa.BigInteger(), nullable=True),
        sa.Column("queue_name", sa.Text(), nullable=False),
        sa.Column("entry", sa.Integer(), nullable=False),
        sa.Column("linkedid", sa.Text(), nullable=False),
        sa.Column("caller_uniqueid", sa.Text(), nullable=False),
        sa.Column("caller_number", sa.Text(), nullable=False),
        sa.Column("did", sa.Text(), nullable=True),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("position_at_entry", sa.Integer(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("agent_id", sa.BigInteger(), nullable=True),
        sa.Column("device_id", sa.BigInteger(), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("wait_seconds", sa.Numeric(12, 3), nullable=False),
        sa.Column("talk_seconds", sa.Numeric(12, 3), server_default="0", nullable=False),
        sa.Column("hold_seconds", sa.Numeric(12, 3), server_default="0", nullable=False),
        sa.Column("wrapup_seconds", sa.Numeric(12, 3), server_default="0", nullable=False),
        sa.Column("ring_no_answer", sa.Integer(), server_default="0", nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("abandon_position", sa.Integer(), nullable=True),
        sa.Column("exit_key", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "outcome IN (" + ", ".join(f"'{name}'" for name in OUTCOMES) + ")",
            name=op.f("ck_queue_calls_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_queue_calls_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queues.id"],
            name=op.f("fk_queue_calls_queue_id_queues"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["users.id"],
            name=op.f("fk_queue_calls_agent_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_calls")),
        sa.UniqueConstraint(
            "tenant_id",
            "caller_uniqueid",
            "queue_name",
            "entry",
            name=op.f("uq_queue_calls_tenant_id_caller_uniqueid_queue_name_entry"),
        ),
    )
    op.create_index(
        "ix_queue_calls_tenant_entered", "queue_calls", ["tenant_id", "entered_at", "id"]
    )
    op.create_index(
        "ix_queue_calls_tenant_queue_entered",
        "queue_calls",
        ["tenant_id", "queue_id", "entered_at"],
    )
    op.create_index(
        "ix_queue_calls_tenant_agent_entered",
        "queue_calls",
        ["tenant_id", "agent_id", "entered_at"],
    )


def downgrade() -> None:
    op.drop_table("queue_calls")
