"""how calls are known to come from a carrier, and the caller name outbound routes send

Revision ID: 0008_trunks
Revises: 0007_moh
Create Date: 2026-12-03

Every existing trunk keeps matching by source address (``match = 'ip'``): its host when that
is an address; a host name is no longer resolved by Asterisk at each reload but by the
control plane in the background (``resolved_addresses``, of ``resolved_host``), and
``inbound_addresses`` lists more. Existing outbound routes send no caller name (before, the
agent's display name went out).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_trunks"
down_revision: str | None = "0007_moh"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "trunks", sa.Column("match", sa.String(length=16), server_default="ip", nullable=False)
    )
    op.create_check_constraint(
        op.f("ck_trunks_match_known"), "trunks", "match in ('ip', 'ip_and_header', 'auth')"
    )
    op.add_column(
        "trunks",
        sa.Column(
            "inbound_addresses",
            postgresql.ARRAY(sa.String(length=49)),
            server_default="{}",
            nullable=False,
        ),
    )
    op.add_column("trunks", sa.Column("match_header", sa.String(length=200), nullable=True))
    op.add_column("trunks", sa.Column("inbound_username", sa.String(length=80), nullable=True))
    op.add_column("trunks", sa.Column("inbound_password", sa.String(length=128), nullable=True))
    op.create_unique_constraint(op.f("uq_trunks_inbound_username"), "trunks", ["inbound_username"])
    op.add_column(
        "trunks",
        sa.Column(
            "resolved_addresses",
            postgresql.ARRAY(sa.String(length=49)),
            server_default="{}",
            nullable=False,
        ),
    )
    op.add_column("trunks", sa.Column("resolved_host", sa.String(length=253), nullable=True))
    op.add_column(
        "outbound_routes", sa.Column("caller_id_name", sa.String(length=40), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("outbound_routes", "caller_id_name")
    op.drop_column("trunks", "resolved_host")
    op.drop_column("trunks", "resolved_addresses")
    op.drop_constraint(op.f("uq_trunks_inbound_username"), "trunks", type_="unique")
    op.drop_column("trunks", "inbound_password")
    op.drop_column("trunks", "inbound_username")
    op.drop_column("trunks", "match_header")
    op.drop_column("trunks", "inbound_addresses")
    op.drop_constraint(op.f("ck_trunks_match_known"), "trunks", type_="check")
    op.drop_column("trunks", "match")
