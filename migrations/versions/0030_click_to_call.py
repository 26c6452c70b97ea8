"""click to call: one row per tenant and idempotency key

Revision ID: 0030_click_to_call
Revises: 0029_webhooks
Create Date: 2026-12-06 03:00:00+00:00

``click_to_calls``: a click-to-call request (``POST /api/v1/calls``), committed before its
``Originate`` is sent; unique per tenant and client-supplied idempotency key, so the same key
asked again answers with the first request's call and never places a second. ``call_id`` is
the channel id given to the ``Originate`` (the agent's channel's uniqueid, the call's linkedid).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030_click_to_call"
down_revision: str | None = "0029_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "click_to_calls",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("agent_user_id", sa.BigInteger(), nullable=False),
        sa.Column("device", sa.String(length=128), nullable=False),
        sa.Column("number", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=8), server_default="pending", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status in ('pending', 'sent', 'failed')", name=op.f("ck_click_to_calls_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_click_to_calls_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_click_to_calls")),
        sa.UniqueConstraint("call_id", name=op.f("uq_click_to_calls_call_id")),
        sa.UniqueConstraint(
            "tenant_id",
            "idempotency_key",
            name=op.f("uq_click_to_calls_tenant_id_idempotency_key"),
        ),
    )
    op.create_index(op.f("ix_click_to_calls_tenant_id"), "click_to_calls", ["tenant_id"])


def downgrade() -> None:
    op.drop_table("click_to_calls")
