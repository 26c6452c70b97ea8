"""call records: what was dialled, refusals, billable legs, the agent's own answer

Revision ID: 0010_cdr_legs
Revises: 0010_agent_states
Create Date: 2026-12-03

Columns added to the partitioned ``cdrs`` (an ALTER on the parent reaches every partition;
a nullable column, or a constant default, changes no stored row). Legs recorded before this
revision get ``billable`` from what they show: an answered outbound leg that reached
``Dial`` (a refusal answered, played its announcement and hung up without dialling).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_cdr_legs"
down_revision: str | None = "0010_agent_states"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE cdrs"
        " ADD COLUMN to_number text,"
        " ADD COLUMN refusal_reason text,"
        " ADD COLUMN billable boolean NOT NULL DEFAULT false,"
        " ADD COLUMN device text"
    )
    op.execute(
        "UPDATE cdrs SET billable = true WHERE direction = 'outbound'"
        " AND disposition = 'ANSWERED' AND billsec > 0 AND lastapp = 'Dial'"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE cdrs DROP COLUMN to_number, DROP COLUMN refusal_reason,"
        " DROP COLUMN billable, DROP COLUMN device"
    )
