"""support requests and the operator's notices

Revision ID: 0016_support
Revises: 0015_wallboard
Create Date: 2026-12-03

``support_requests`` holds a client's requests (``due_at`` = filed + the priority's delay:
24 h high, 48 h medium, 5 days low) and ``support_messages`` their conversation.
``notices`` holds the operator's notices of changes (``tenant_ids`` NULL: every tenant).

Two new API areas, ``support`` and ``notices``: existing API keys keep their areas and are
not scoped to these; a key that needs them is made anew with them (as for every area that
appeared after a key was made).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016_support"
down_revision: str | None = "0015_wallboard"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "support_requests",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("requester_user_id", sa.BigInteger(), nullable=True),
        sa.Column("requester_email", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "priority in ('high', 'medium', 'low')",
            name=op.f("ck_support_requests_priority_known"),
        ),
        sa.CheckConstraint(
            "status in ('open', 'answered', 'closed')",
            name=op.f("ck_support_requests_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["requester_user_id"],
            ["users.id"],
            name=op.f("fk_support_requests_requester_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_support_requests_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_requests")),
    )
    op.create_index(
        op.f("ix_support_requests_tenant_id"), "support_requests", ["tenant_id"], unique=False
    )
    op.create_index(
        "ix_support_requests_status_due_at",
        "support_requests",
        ["status", "due_at"],
        unique=False,
    )
    op.create_table(
        "support_messages",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("author_user_id", sa.BigInteger(), nullable=True),
        sa.Column("author_label", sa.String(length=254), nullable=False),
        sa.Column("from_operator", sa.Boolean(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["author_user_id"],
            ["users.id"],
            name=op.f("fk_support_messages_author_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["support_requests.id"],
            name=op.f("fk_support_messages_request_id_support_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_messages")),
    )
    op.create_index(
        op.f("ix_support_messages_request_id"), "support_messages", ["request_id"], unique=False
    )
    op.create_table(
        "notices",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("tenant_ids", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.Column(
            "published_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_by_user_id", sa.BigInteger(), nullable=True),
        sa.Column("published_by", sa.String(length=254), nullable=False),
        sa.ForeignKeyConstraint(
            ["published_by_user_id"],
            ["users.id"],
            name=op.f("fk_notices_published_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
    )
    op.create_index(op.f("ix_notices_effective_on"), "notices", ["effective_on"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_notices_effective_on"), table_name="notices")
    op.drop_table("notices")
    op.drop_index(op.f("ix_support_messages_request_id"), table_name="support_messages")
    op.drop_table("support_messages")
    op.drop_index("ix_support_requests_status_due_at", table_name="support_requests")
    op.drop_index(op.f("ix_support_requests_tenant_id"), table_name="support_requests")
    op.drop_table("support_requests")
