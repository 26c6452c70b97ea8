"""configuration generations: committed vs applied, per tenant; failing trunks

Revision ID: 0007_config
Revises: 0006_voicemail
Create Date: 2026-12-03

Every tenant gets its row now (nothing committed, nothing applied); later rows are made by
the first configuration change of a new tenant.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_config"
down_revision: str | None = "0006_voicemail"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "config_generations",
        sa.Column(
            "tenant_id",
            sa.BigInteger(),
            sa.ForeignKey(
                "tenants.id",
                ondelete="CASCADE",
                name="fk_config_generations_tenant_id_tenants",
            ),
            nullable=False,
        ),
        sa.Column("committed", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("applied", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("committed_at", sa.DateTime(timezone=True)),
        sa.Column("pending_since", sa.DateTime(timezone=True)),
        sa.Column("applied_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text()),
        sa.Column("failing_since", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_config_generations"),
    )
    op.execute("INSERT INTO config_generations (tenant_id) SELECT id FROM tenants")
    op.create_table(
        "config_trunk_failures",
        sa.Column(
            "trunk_id",
            sa.BigInteger(),
            sa.ForeignKey(
                "trunks.id",
                ondelete="CASCADE",
                name="fk_config_trunk_failures_trunk_id_trunks",
            ),
            nullable=False,
        ),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("trunk_id", name="pk_config_trunk_failures"),
    )


def downgrade() -> None:
    op.drop_table("config_trunk_failures")
    op.drop_table("config_generations")
