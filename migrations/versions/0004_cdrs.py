"""call detail records, partitioned by month

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

``cdrs`` is partitioned by month of ``started_at`` (UTC). ``cdrs_ensure_partition(ts)`` makes
the partition holding ``ts`` when it is missing; this migration makes the current month's and
the next two, and the CDR worker calls it for every month it writes and for next month once a
day, so an insert never meets a missing partition. There is no default partition: a row of a
month nobody prepared would make that month's partition impossible to attach later.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = """
    id bigint NOT NULL DEFAULT nextval('cdrs_id_seq'),
    started_at timestamptz NOT NULL,
    system_name text NOT NULL,
    uniqueid text NOT NULL,
    sequence bigint NOT NULL,
    linkedid text NOT NULL,
    answered_at timestamptz,
    ended_at timestamptz NOT NULL,
    duration numeric(14, 6) NOT NULL,
    billsec numeric(14, 6) NOT NULL,
    disposition text NOT NULL,
    tenant_id bigint,
    direction text,
    did text,
    queue_id bigint,
    agent_user_id bigint,
    src text NOT NULL,
    dst text NOT NULL,
    dcontext text NOT NULL,
    clid text NOT NULL,
    channel text NOT NULL,
    dstchannel text NOT NULL,
    lastapp text NOT NULL,
    lastdata text NOT NULL,
    accountcode text NOT NULL,
    peeraccount text NOT NULL,
    amaflags text NOT NULL,
    userfield text NOT NULL,
    source text NOT NULL,
    CONSTRAINT pk_cdrs PRIMARY KEY (id, started_at)
"""

ENSURE_PARTITION = """
CREATE FUNCTION cdrs_ensure_partition(ts timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    month_start timestamp := date_trunc('month', ts AT TIME ZONE 'UTC');
    name text := 'cdrs_' || to_char(month_start, 'YYYY_MM');
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN name;
    END IF;
    -- Two writers (two control planes) may meet the same new month.
    PERFORM pg_advisory_xact_lock(hashtext('cdrs_ensure_partition'));
    IF to_regclass(name) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF cdrs FOR VALUES FROM (%L) TO (%L)',
            name,
            (month_start AT TIME ZONE 'UTC'),
            ((month_start + interval '1 month') AT TIME ZONE 'UTC')
        );
    END IF;
    RETURN name;
END
$$
"""


def upgrade() -> None:
    op.execute("CREATE SEQUENCE cdrs_id_seq AS bigint")
    op.execute(f"CREATE TABLE cdrs ({COLUMNS}) PARTITION BY RANGE (started_at)")
    op.execute("ALTER SEQUENCE cdrs_id_seq OWNED BY cdrs.id")
    op.execute(
        "CREATE UNIQUE INDEX uq_cdrs_key ON cdrs (uniqueid, sequence, system_name, started_at)"
    )
    op.execute("CREATE INDEX ix_cdrs_tenant_started ON cdrs (tenant_id, started_at, id)")
    op.execute(
        "CREATE INDEX ix_cdrs_tenant_agent_started ON cdrs (tenant_id, agent_user_id, started_at)"
    )
    op.execute("CREATE INDEX ix_cdrs_tenant_linkedid ON cdrs (tenant_id, linkedid)")
    op.execute(ENSURE_PARTITION)
    for months_ahead in range(3):
        op.execute(f"SELECT cdrs_ensure_partition(now() + interval '{months_ahead} month')")


def downgrade() -> None:
    op.execute("DROP TABLE cdrs")  # and every partition with it
    op.execute("DROP FUNCTION cdrs_ensure_partition(timestamptz)")
    op.execute("DROP SEQUENCE IF EXISTS cdrs_id_seq")
