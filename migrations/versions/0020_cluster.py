"""cluster: Asterisk nodes and each tenant's placement on one node (and its standby)

Revision ID: 0020_cluster
Revises: 0019_realtime_sip
Create Date: 2026-12-04 16:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_cluster"
down_revision: str | None = "0019_realtime_sip"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "asterisk_nodes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("systemname", sa.String(length=32), nullable=False),
        sa.Column("ami_host", sa.String(length=255), nullable=False),
        sa.Column("ami_port", sa.Integer(), nullable=False),
        sa.Column("ami_username", sa.String(length=64), nullable=False),
        sa.Column("ami_secret", sa.Text(), nullable=False),
        sa.Column("sip_host", sa.String(length=255), nullable=False),
        sa.Column("sip_port", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
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
        sa.CheckConstraint(
            "ami_port between 1 and 65535", name=op.f("ck_asterisk_nodes_ami_port_range")
        ),
        sa.CheckConstraint(
            "name ~ '^[a-z0-9][a-z0-9-]{0,31}$'", name=op.f("ck_asterisk_nodes_name_alphabet")
        ),
        sa.CheckConstraint(
            "sip_port between 1 and 65535", name=op.f("ck_asterisk_nodes_sip_port_range")
        ),
        sa.CheckConstraint(
            "state in ('active', 'draining', 'down')", name=op.f("ck_asterisk_nodes_state_known")
        ),
        sa.CheckConstraint(
            "systemname ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$'",
            name=op.f("ck_asterisk_nodes_systemname_alphabet"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asterisk_nodes")),
        sa.UniqueConstraint("name", name=op.f("uq_asterisk_nodes_name")),
        sa.UniqueConstraint("systemname", name=op.f("uq_asterisk_nodes_systemname")),
    )
    op.create_table(
        "tenant_placements",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("node_id", sa.BigInteger(), nullable=False),
        sa.Column("standby_node_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "placed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(
            "standby_node_id is null or standby_node_id <> node_id",
            name=op.f("ck_tenant_placements_standby_elsewhere"),
        ),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["asterisk_nodes.id"],
            name=op.f("fk_tenant_placements_node_id_asterisk_nodes"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["standby_node_id"],
            ["asterisk_nodes.id"],
            name=op.f("fk_tenant_placements_standby_node_id_asterisk_nodes"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tenant_placements_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tenant_placements")),
    )
    op.create_index(
        op.f("ix_tenant_placements_node_id"), "tenant_placements", ["node_id"], unique=False
    )
    op.create_index(
        op.f("ix_tenant_placements_standby_node_id"),
        "tenant_placements",
        ["standby_node_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_tenant_placements_standby_node_id"), table_name="tenant_placements")
    op.drop_index(op.f("ix_tenant_placements_node_id"), table_name="tenant_placements")
    op.drop_table("tenant_placements")
    op.drop_table("asterisk_nodes")
