"""follow-me: a destination that rings phones and external numbers in steps

Revision ID: 0036_follow_me
Revises: 0035_cdr_forwarded_from
Create Date: 2026-12-06 13:00:00+00:00

``follow_me`` rings its steps in order (``step_seconds[i]`` each), then sends the call to its
final destination; ``follow_me_members`` are each step's phones, people and external numbers
(``confirm``: an external number must press 1 to take the call). A destination of type
``follow_me`` names one, in every place a destination is kept.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0036_follow_me"
down_revision: str | None = "0035_cdr_forwarded_from"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = (
    "agent",
    "extension",
    "queue",
    "ivr",
    "voicemail",
    "announcement",
    "hangup",
    "external",
)
_AFTER = (*_BEFORE, "follow_me")

# (table, constraint's name, its column prefix, whether the pair may be NULL)
CHECKS = (
    ("inbound_routes", "open_dest_known", "open_dest", False),
    ("inbound_routes", "closed_dest_known", "closed_dest", True),
    ("queues", "fallback_known", "fallback", True),
    ("ivr_menus", "timeout_dest_known", "timeout_dest", False),
    ("ivr_menus", "invalid_dest_known", "invalid_dest", False),
    ("ivr_options", "dest_known", "dest", False),
    ("follow_me", "final_known", "final", False),
)


def _check(prefix: str, nullable: bool, types: Sequence[str]) -> str:
    known = f"{prefix}_type in ('" + "', '".join(types) + "')"
    return f"{prefix}_type IS NULL OR {known}" if nullable else known


def _set_checks(types: Sequence[str], *, create_only: str | None = None) -> None:
    for table, name, prefix, nullable in CHECKS:
        if table != create_only:
            op.drop_constraint(op.f(f"ck_{table}_{name}"), table, type_="check")
        op.create_check_constraint(
            op.f(f"ck_{table}_{name}"), table, _check(prefix, nullable, types)
        )


def _timestamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
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
    ]


def upgrade() -> None:
    op.create_table(
        "follow_me",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("step_seconds", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("final_type", sa.String(length=16), nullable=False),
        sa.Column("final_id", sa.BigInteger(), nullable=True),
        *_timestamps(),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "cardinality(step_seconds) between 1 and 10", name=op.f("ck_follow_me_steps_count")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_follow_me_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_me")),
    )
    op.create_index(op.f("ix_follow_me_tenant_id"), "follow_me", ["tenant_id"])
    op.create_table(
        "follow_me_members",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("follow_me_id", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("dest_type", sa.String(length=16), nullable=False),
        sa.Column("dest_id", sa.BigInteger(), nullable=False),
        sa.Column("confirm", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "(dest_type IS NULL) = (dest_id IS NULL)"
            " AND (dest_type IS NULL OR dest_type in ('extension', 'agent', 'external'))",
            name=op.f("ck_follow_me_members_dest_known"),
        ),
        sa.CheckConstraint(
            "confirm = false OR dest_type = 'external'",
            name=op.f("ck_follow_me_members_confirm_external"),
        ),
        sa.ForeignKeyConstraint(
            ["follow_me_id"],
            ["follow_me.id"],
            name=op.f("fk_follow_me_members_follow_me_id_follow_me"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_follow_me_members_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_me_members")),
    )
    op.create_index(
        op.f("ix_follow_me_members_follow_me_id"), "follow_me_members", ["follow_me_id"]
    )
    op.create_index(op.f("ix_follow_me_members_tenant_id"), "follow_me_members", ["tenant_id"])
    _set_checks(_AFTER, create_only="follow_me")


def downgrade() -> None:
    for table, _, prefix, _ in CHECKS[:-1]:
        op.execute(f"DELETE FROM {table} WHERE {prefix}_type = 'follow_me'")  # noqa: S608
    op.drop_table("follow_me_members")
    op.drop_table("follow_me")
    CHECKS_BEFORE = CHECKS[:-1]
    for table, name, prefix, nullable in CHECKS_BEFORE:
        op.drop_constraint(op.f(f"ck_{table}_{name}"), table, type_="check")
        op.create_check_constraint(
            op.f(f"ck_{table}_{name}"), table, _check(prefix, nullable, _BEFORE)
        )
