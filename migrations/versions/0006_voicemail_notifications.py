"""voicemail e-mails sent, so that each message is mailed once

Revision ID: 0006_voicemail
Revises: 0005_cdr
Create Date: 2026-12-03

One row per message the control plane e-mails (``msg_id`` is the id Asterisk writes into the
message's msgNNNN.txt); the unique (box, msg_id) makes concurrent senders and retries agree.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_voicemail"
down_revision: str | None = "0005_cdr"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "voicemail_notifications",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("box_id", sa.BigInteger(), nullable=False),
        sa.Column("msg_id", sa.String(length=40), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["box_id"],
            ["voicemail_boxes.id"],
            name=op.f("fk_voicemail_notifications_box_id_voicemail_boxes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_voicemail_notifications_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voicemail_notifications")),
        sa.UniqueConstraint(
            "box_id", "msg_id", name=op.f("uq_voicemail_notifications_box_id_msg_id")
        ),
    )
    op.create_index(
        op.f("ix_voicemail_notifications_tenant_id"),
        "voicemail_notifications",
        ["tenant_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_voicemail_notifications_tenant_id"), table_name="voicemail_notifications"
    )
    op.drop_table("voicemail_notifications")
