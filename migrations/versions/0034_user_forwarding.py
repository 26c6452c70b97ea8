"""users' forwarding rules: unconditional, busy, no-answer, unreachable, do-not-disturb

Revision ID: 0034_user_forwarding
Revises: 0033_external_numbers
Create Date: 2026-12-06 12:00:00+00:00

``user_forwarding`` holds one row per user who set rules (its ``id`` is the user's): each rule
a destination (type, id) pair of type agent, extension, voicemail or external, none when the
rule is off; do-not-disturb's may only be a voicemail box. Deleting the user deletes its
rules; a rule's target cannot be deleted while the rule names it (graam_pbx/destinations).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0034_user_forwarding"
down_revision: str | None = "0033_external_numbers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TARGETS = "'agent', 'extension', 'voicemail', 'external'"
_RULES = (
    ("unconditional", _TARGETS),
    ("busy", _TARGETS),
    ("no_answer", _TARGETS),
    ("unreachable", _TARGETS),
    ("dnd_dest", "'voicemail'"),
)


def _pair(prefix: str) -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column(f"{prefix}_type", sa.String(length=16), nullable=True),
        sa.Column(f"{prefix}_id", sa.BigInteger(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "user_forwarding",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("do_not_disturb", sa.Boolean(), nullable=False),
        *_pair("dnd_dest"),
        *_pair("unconditional"),
        *_pair("busy"),
        *_pair("no_answer"),
        sa.Column("no_answer_seconds", sa.Integer(), nullable=False),
        *_pair("unreachable"),
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
        *(
            sa.CheckConstraint(
                f"({prefix}_type IS NULL) = ({prefix}_id IS NULL)"
                f" AND ({prefix}_type IS NULL OR {prefix}_type in ({types}))",
                name=op.f(f"ck_user_forwarding_{prefix}_known"),
            )
            for prefix, types in _RULES
        ),
        sa.CheckConstraint(
            "no_answer_seconds between 5 and 120",
            name=op.f("ck_user_forwarding_no_answer_seconds_range"),
        ),
        sa.ForeignKeyConstraint(
            ["id"], ["users.id"], name=op.f("fk_user_forwarding_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_user_forwarding_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_forwarding")),
    )
    op.create_index(op.f("ix_user_forwarding_tenant_id"), "user_forwarding", ["tenant_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_user_forwarding_tenant_id"), table_name="user_forwarding")
    op.drop_table("user_forwarding")
