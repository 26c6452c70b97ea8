"""queues get their service-level and short-abandon thresholds

Revision ID: 0010_stats
Revises: 0010_cdr_legs
Create Date: 2026-12-03

The KPIs judge each queue by its own thresholds: a call answered within
``service_level_seconds`` meets the service level, a caller who hangs up before
``short_abandon_seconds`` is a short abandon. Constant defaults: no stored row is rewritten.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_stats"
down_revision: str | None = "0010_cdr_legs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "queues",
        sa.Column("service_level_seconds", sa.Integer(), server_default="20", nullable=False),
    )
    op.add_column(
        "queues",
        sa.Column("short_abandon_seconds", sa.Integer(), server_default="5", nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_queues_service_level_seconds_range"),
        "queues",
        "service_level_seconds BETWEEN 1 AND 3600",
    )
    op.create_check_constraint(
        op.f("ck_queues_short_abandon_seconds_range"),
        "queues",
        "short_abandon_seconds BETWEEN 0 AND 600",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_queues_short_abandon_seconds_range"), "queues", type_="check")
    op.drop_constraint(op.f("ck_queues_service_level_seconds_range"), "queues", type_="check")
    op.drop_column("queues", "short_abandon_seconds")
    op.drop_column("queues", "service_level_seconds")
