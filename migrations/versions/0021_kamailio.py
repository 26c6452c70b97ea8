"""kamailio: what the SIP edge reads from Postgres (dispatcher destinations, routes of SIP users and numbers to nodes)

Revision ID: 0021_kamailio
Revises: 0020_cluster
Create Date: 2026-12-04 16:00:00+00:00
"""

from collections.abc import Sequence

revision: str = "0021_kamailio"
down_revision: str | None = "0020_cluster"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
