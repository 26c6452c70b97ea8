"""cluster: Asterisk nodes and each tenant's placement on one node (and its standby)

Revision ID: 0020_cluster
Revises: 0019_realtime_sip
Create Date: 2026-12-04 16:00:00+00:00
"""

from collections.abc import Sequence

revision: str = "0020_cluster"
down_revision: str | None = "0019_realtime_sip"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
