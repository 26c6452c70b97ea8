"""login attempts counted by throttling get indexes of their own

Revision ID: 0009_logins
Revises: 0009_sip_blocks
Create Date: 2026-12-03

Throttling counts an account's and an address's failed logins under advisory locks; refused
attempts (``throttled``, ``busy``) are kept for the audit but not counted. Partial indexes of
the counted ones keep each count as short as the limit, however many refused attempts a
flood leaves in the window.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_logins"
down_revision: str | None = "0009_sip_blocks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same text as graam_pbx.auth.models.COUNTED_FAILURE (a migration keeps its own copy).
COUNTED_FAILURE = "NOT success AND reason NOT IN ('throttled', 'busy')"


def upgrade() -> None:
    op.create_index(
        "ix_login_attempts_counted_email_at",
        "login_attempts",
        ["email", "at"],
        postgresql_where=sa.text(COUNTED_FAILURE),
    )
    op.create_index(
        "ix_login_attempts_counted_address_at",
        "login_attempts",
        ["address", "at"],
        postgresql_where=sa.text(COUNTED_FAILURE),
    )


def downgrade() -> None:
    op.drop_index("ix_login_attempts_counted_address_at", table_name="login_attempts")
    op.drop_index("ix_login_attempts_counted_email_at", table_name="login_attempts")
