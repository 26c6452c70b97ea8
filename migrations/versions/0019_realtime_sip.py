"""realtime SIP: the PJSIP endpoints, auths and AORs Asterisk reads from Postgres (res_config_pgsql), and the contacts it writes

Revision ID: 0019_realtime_sip
Revises: 0018_campaigns
Create Date: 2026-12-04 16:00:00+00:00
"""

from collections.abc import Sequence

revision: str = "0019_realtime_sip"
down_revision: str | None = "0018_campaigns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
