"""queues say whether callers may join, or must leave, a queue nobody can answer

Revision ID: 0011_queue_options
Revises: 0010_queue_calls
Create Date: 2026-12-03

``join_empty`` (Asterisk's ``joinempty``): ``yes`` joins whatever the members' states (the
behaviour so far), ``loose`` refuses a caller when the queue has no member, ``strict`` also
when every member is paused or unavailable. ``leave_when_empty`` (``leavewhenempty``): ``no``
(so far), ``loose`` or ``strict``, the same conditions for callers already waiting. Constant
defaults: no stored row is rewritten.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_queue_options"
down_revision: str | None = "0010_queue_calls"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "queues", sa.Column("join_empty", sa.String(8), server_default="yes", nullable=False)
    )
    op.add_column(
        "queues", sa.Column("leave_when_empty", sa.String(8), server_default="no", nullable=False)
    )
    op.create_check_constraint(
        op.f("ck_queues_join_empty_known"), "queues", "join_empty in ('yes', 'loose', 'strict')"
    )
    op.create_check_constraint(
        op.f("ck_queues_leave_when_empty_known"),
        "queues",
        "leave_when_empty in ('no', 'loose', 'strict')",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_queues_leave_when_empty_known"), "queues", type_="check")
    op.drop_constraint(op.f("ck_queues_join_empty_known"), "queues", type_="check")
    op.drop_column("queues", "leave_when_empty")
    op.drop_column("queues", "join_empty")
