"""call records: the user whose forwarding rule sent a leg

Revision ID: 0035_cdr_forwarded_from
Revises: 0034_user_forwarding
Create Date: 2026-12-07 09:00:00+00:00

``cdrs.forwarded_from``: the user (of the leg's tenant) whose forwarding rule (unconditional,
busy, no-answer, unreachable or do-not-disturb) sent the leg, from the dialplan's CDR
variable ``graam_forwarded_from``; NULL on every other leg. A nullable column added to the
partitioned ``cdrs`` reaches every partition and changes no stored row. Like
``agent_user_id``, no foreign key: a CDR is kept, and still written, after its user is
deleted.

``ix_cdrs_tenant_forwarded_started`` serves ``GET /api/v1/cdrs?forwarded_from=``; partial,
so that the legs nobody forwarded (nearly all) cost nothing to write. It is made on every
partition: with the column just added, each is read once and nothing is indexed.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0035_cdr_forwarded_from"
down_revision: str | None = "0034_user_forwarding"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE cdrs ADD COLUMN forwarded_from bigint")
    op.execute(
        "CREATE INDEX ix_cdrs_tenant_forwarded_started"
        " ON cdrs (tenant_id, forwarded_from, started_at) WHERE forwarded_from IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_cdrs_tenant_forwarded_started")
    op.execute("ALTER TABLE cdrs DROP COLUMN forwarded_from")
