"""call records read across tenants: an index on the start alone

Revision ID: 0005_cdr
Revises: 0004
Create Date: 2026-12-03

An operator lists and exports every tenant's legs oldest first, keyset on (started_at, id);
the tenant's index cannot give that order, so without this one every page would sort the
whole range. The index is made on every partition; on a large table building it delays the
start by as long (the CDRs of that time are backfilled from Asterisk's CSV log).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005_cdr"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_cdrs_started ON cdrs (started_at, id)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_cdrs_started")
