"""external numbers: a destination can send calls to a number outside the switch

Revision ID: 0033_external_numbers
Revises: 0032_sip_device_rows
Create Date: 2026-12-06 10:00:00+00:00

``external_numbers`` holds a tenant's numbers outside the switch (E.164); a destination of
type ``external`` names one by id, in every place a destination is kept (inbound routes,
IVR menus and options, queue fallbacks), whose CHECK constraints now accept the type.

``trunks.forwarded_caller_id``: the carrier accepts, on a call the tenant forwards, a caller
number the tenant does not hold; the forwarded call then shows the original caller's
number. Otherwise (the default) it shows the route's number, as every outbound call.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0033_external_numbers"
down_revision: str | None = "0032_sip_device_rows"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = ("agent", "extension", "queue", "ivr", "voicemail", "announcement", "hangup")
_AFTER = (*_BEFORE, "external")

# (table, constraint's name, its column prefix, whether the pair may be NULL)
CHECKS = (
    ("inbound_routes", "open_dest_known", "open_dest", False),
    ("inbound_routes", "closed_dest_known", "closed_dest", True),
    ("queues", "fallback_known", "fallback", True),
    ("ivr_menus", "timeout_dest_known", "timeout_dest", False),
    ("ivr_menus", "invalid_dest_known", "invalid_dest", False),
    ("ivr_options", "dest_known", "dest", False),
)


def _check(prefix: str, nullable: bool, types: Sequence[str]) -> str:
    known = f"{prefix}_type in ('" + "', '".join(types) + "')"
    return f"{prefix}_type IS NULL OR {known}" if nullable else known


def _set_checks(types: Sequence[str]) -> None:
    for table, name, prefix, nullable in CHECKS:
        op.drop_constraint(op.f(f"ck_{table}_{name}"), table, type_="check")
        op.create_check_constraint(
            op.f(f"ck_{table}_{name}"), table, _check(prefix, nullable, types)
        )


def upgrade() -> None:
    op.create_table(
        "external_numbers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("number", sa.String(length=16), nullable=False),
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
            name=op.f("fk_external_numbers_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_numbers")),
    )
    op.create_index(op.f("ix_external_numbers_tenant_id"), "external_numbers", ["tenant_id"])
    _set_checks(_AFTER)
    op.add_column(
        "trunks",
        sa.Column("forwarded_caller_id", sa.Boolean(), server_default="false", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("trunks", "forwarded_caller_id")
    for table, _, prefix, _ in CHECKS:
        op.execute(f"DELETE FROM {table} WHERE {prefix}_type = 'external'")  # noqa: S608
    _set_checks(_BEFORE)
    op.drop_index(op.f("ix_external_numbers_tenant_id"), table_name="external_numbers")
    op.drop_table("external_numbers")
