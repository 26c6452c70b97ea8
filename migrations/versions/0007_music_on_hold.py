"""hold music classes of tenants, and the class a queue plays

Revision ID: 0007_moh
Revises: 0007_config
Create Date: 2026-12-03

Before this revision a queue could name any class and Asterisk knew only ``default``, which
had no files: such a queue played silence. Its class becomes ``default``, which now plays.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_moh"
down_revision: str | None = "0007_config"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "moh_classes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
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
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_moh_classes_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moh_classes")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_moh_classes_tenant_id_name")),
    )
    op.create_index(op.f("ix_moh_classes_tenant_id"), "moh_classes", ["tenant_id"], unique=False)
    op.create_table(
        "moh_class_prompts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("class_id", sa.BigInteger(), nullable=False),
        sa.Column("prompt_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["class_id"],
            ["moh_classes.id"],
            name=op.f("fk_moh_class_prompts_class_id_moh_classes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["prompts.id"],
            name=op.f("fk_moh_class_prompts_prompt_id_prompts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_moh_class_prompts_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moh_class_prompts")),
        sa.UniqueConstraint(
            "class_id", "position", name=op.f("uq_moh_class_prompts_class_id_position")
        ),
    )
    for column in ("class_id", "prompt_id", "tenant_id"):
        op.create_index(
            op.f(f"ix_moh_class_prompts_{column}"), "moh_class_prompts", [column], unique=False
        )
    op.add_column("queues", sa.Column("moh_class_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_queues_moh_class_id_moh_classes"),
        "queues",
        "moh_classes",
        ["moh_class_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.create_index(op.f("ix_queues_moh_class_id"), "queues", ["moh_class_id"], unique=False)
    op.execute("UPDATE queues SET music_on_hold = 'default' WHERE music_on_hold <> 'default'")


def downgrade() -> None:
    op.drop_index(op.f("ix_queues_moh_class_id"), table_name="queues")
    op.drop_constraint(op.f("fk_queues_moh_class_id_moh_classes"), "queues", type_="foreignkey")
    op.drop_column("queues", "moh_class_id")
    for column in ("class_id", "prompt_id", "tenant_id"):
        op.drop_index(op.f(f"ix_moh_class_prompts_{column}"), table_name="moh_class_prompts")
    op.drop_table("moh_class_prompts")
    op.drop_index(op.f("ix_moh_classes_tenant_id"), table_name="moh_classes")
    op.drop_table("moh_classes")
