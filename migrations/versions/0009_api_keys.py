"""API keys expire and are scoped; users' tokens can be revoked at once

Revision ID: 0009_api_keys
Revises: 0008_trunks
Create Date: 2026-12-03

Every existing API key expires 90 days from now, keeps writing, and loses the areas that mint
credentials (``auth``, ``users``): its owner makes a new key scoped to them if it needs them.
``users.token_epoch`` starts at 0; access tokens issued before this revision carry none and
are refused (their holders refresh or log in again).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009_api_keys"
down_revision: str | None = "0008_trunks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The areas (OpenAPI tags) of this revision but the credential ones, for existing keys.
_EXISTING_KEYS_AREAS = [
    "agent sessions",
    "audit",
    "call records",
    "catalogue",
    "configuration status",
    "devices",
    "inbound routes",
    "ivr",
    "music on hold",
    "numbers",
    "outbound routes",
    "prompts",
    "queues",
    "schedules",
    "tenants",
    "trunks",
    "voicemail",
]


def upgrade() -> None:
    op.add_column(
        "users", sa.Column("token_epoch", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("api_keys", sa.Column("last_used_address", sa.String(length=64), nullable=True))
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "api_keys",
        sa.Column("read_only", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        "api_keys",
        sa.Column("areas", postgresql.ARRAY(sa.String(length=32)), nullable=True),
    )
    op.execute(
        sa.text(
            "UPDATE api_keys SET expires_at = now() + interval '90 days', areas = :areas"
        ).bindparams(sa.bindparam("areas", _EXISTING_KEYS_AREAS, type_=postgresql.ARRAY(sa.String)))
    )
    op.alter_column("api_keys", "expires_at", nullable=False)
    op.alter_column("api_keys", "areas", nullable=False)
    op.alter_column("api_keys", "read_only", server_default=None)
    for table in ("api_keys", "refresh_tokens"):
        op.add_column(
            table, sa.Column("token_epoch", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    op.drop_column("refresh_tokens", "token_epoch")
    op.drop_column("api_keys", "token_epoch")
    op.drop_column("api_keys", "areas")
    op.drop_column("api_keys", "read_only")
    op.drop_column("api_keys", "expires_at")
    op.drop_column("api_keys", "last_used_address")
    op.drop_column("users", "token_epoch")
