"""SIP sources blocked after repeated failed authentications

Revision ID: 0009_sip_blocks
Revises: 0009_api_keys
Create Date: 2026-12-03

One row per block, kept once lifted; at most one in force per source (a partial unique
index), so blocks survive restarts and several control-plane processes agree on them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_sip_blocks"
down_revision: str | None = "0009_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sip_blocks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("address", sa.String(length=49), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column(
            "blocked_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unblocked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unblocked_by", sa.String(length=254), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sip_blocks")),
    )
    op.create_index(op.f("ix_sip_blocks_expires_at"), "sip_blocks", ["expires_at"])
    op.create_index(
        "uq_sip_blocks_address_in_force",
        "sip_blocks",
        ["address"],
        unique=True,
        postgresql_where=sa.text("unblocked_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_sip_blocks_address_in_force",
        table_name="sip_blocks",
        postgresql_where=sa.text("unblocked_at IS NULL"),
    )
    op.drop_index(op.f("ix_sip_blocks_expires_at"), table_name="sip_blocks")
    op.drop_table("sip_blocks")
