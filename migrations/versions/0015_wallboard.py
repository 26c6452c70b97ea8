"""the wallboard: each queue's colour thresholds

Revision ID: 0015_wallboard
Revises: 0014_agent_web_source
Create Date: 2026-12-03

A queue turns amber (warn) then red (alarm) on the wallboard when as many callers wait as
``wallboard_waiting_warn`` / ``wallboard_waiting_alarm``, or when its longest wait reaches
``wallboard_wait_warn_seconds`` / ``wallboard_wait_alarm_seconds``; a warning never comes
after its alarm.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_wallboard"
down_revision: str | None = "0014_agent_web_source"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("wallboard_waiting_warn", "3"),
    ("wallboard_waiting_alarm", "6"),
    ("wallboard_wait_warn_seconds", "30"),
    ("wallboard_wait_alarm_seconds", "90"),
)


def upgrade() -> None:
    for name, default in COLUMNS:
        op.add_column(
            "queues", sa.Column(name, sa.Integer(), server_default=default, nullable=False)
        )
    op.create_check_constraint(
        op.f("ck_queues_wallboard_waiting_order"),
        "queues",
        "wallboard_waiting_warn BETWEEN 1 AND wallboard_waiting_alarm "
        "AND wallboard_waiting_alarm <= 10000",
    )
    op.create_check_constraint(
        op.f("ck_queues_wallboard_wait_order"),
        "queues",
        "wallboard_wait_warn_seconds BETWEEN 1 AND wallboard_wait_alarm_seconds "
        "AND wallboard_wait_alarm_seconds <= 86400",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_queues_wallboard_wait_order"), "queues", type_="check")
    op.drop_constraint(op.f("ck_queues_wallboard_waiting_order"), "queues", type_="check")
    for name, _ in reversed(COLUMNS):
        op.drop_column("queues", name)
