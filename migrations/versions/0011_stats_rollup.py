"""queue KPIs pre-summed per queue and 15-minute bucket, kept exact by triggers

Revision ID: 0011_stats_rollup
Revises: 0011_queue_options
Create Date: 2026-12-03

``queue_stats_rollup`` holds, per (tenant, queue, 15-minute UTC bucket of ``entered_at``),
the sums and counts the queue KPIs are made of, with the thresholds they were counted with.
Triggers on ``queue_calls`` keep it in the writing transaction: the rows a statement really
inserted (not those ON CONFLICT DO NOTHING skipped) are added to their buckets; the buckets
of updated or deleted rows (before and after) are recomputed from ``queue_calls`` itself.
Locks on the queue's row order them: adding takes it in share mode, recomputing (and a
threshold change, and a rebuild) exclusively, so a recomputation sees every addition
committed before it and no addition lands on counts made with other thresholds. A queue
whose thresholds change has its rows recomputed by the UPDATE itself.
``queue_stats_rollup_rebuild(tenant, queue)`` recomputes everything (or one tenant, or one
queue) from ``queue_calls``; the upgrade runs it once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_stats_rollup"
down_revision: str | None = "0011_queue_options"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = (
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "answered_within",
    "abandoned_within",
    "timeout",
    "full",
    "joinempty",
    "leaveempty",
    "closed",
    "exitkey",
    "transferred",
)
SUMS = ("answered_wait", "abandoned_wait", "talk", "hold", "wrapup")
COLUMNS = (
    "tenant_id, queue_id, bucket_start, service_level_seconds, short_abandon_seconds, "
    "queue_name, "
    # "full" is a keyword of SQL.
    + ", ".join(f'"{name}"' for name in COUNTS)
    + ", "
    + ", ".join(SUMS)
    + ", longest_wait"
)

# One bucket's figures from its queue calls ``qc`` and its queue ``q`` (the same definitions
# as graam_pbx.stats.service.queue_sums on the raw rows: a transferred call was answered).
AGGREGATES = """
    max(qc.queue_name),
    count(*),
    count(*) FILTER (WHERE qc.outcome IN ('answered', 'transferred')),
    count(*) FILTER (WHERE qc.outcome = 'abandoned'),
    count(*) FILTER (
        WHERE qc.outcome = 'abandoned' AND qc.wait_seconds < q.short_abandon_seconds),
    count(*) FILTER (
        WHERE qc.outcome IN ('answered', 'transferred')
        AND qc.wait_seconds <= q.service_level_seconds),
    count(*) FILTER (
        WHERE qc.outcome = 'abandoned' AND qc.wait_seconds <= q.service_level_seconds),
    count(*) FILTER (WHERE qc.outcome = 'timeout'),
    count(*) FILTER (WHERE qc.outcome = 'full'),
    count(*) FILTER (WHERE qc.outcome = 'joinempty'),
    count(*) FILTER (WHERE qc.outcome = 'leaveempty'),
    count(*) FILTER (WHERE qc.outcome = 'closed'),
    count(*) FILTER (WHERE qc.outcome = 'exitkey'),
    count(*) FILTER (WHERE qc.outcome = 'transferred'),
    coalesce(sum(qc.wait_seconds) FILTER (WHERE qc.outcome IN ('answered', 'transferred')), 0),
    coalesce(sum(qc.wait_seconds) FILTER (WHERE qc.outcome = 'abandoned'), 0),
    coalesce(sum(qc.talk_seconds) FILTER (WHERE qc.outcome IN ('answered', 'transferred')), 0),
    coalesce(sum(qc.hold_seconds) FILTER (WHERE qc.outcome IN ('answered', 'transferred')), 0),
    coalesce(sum(qc.wrapup_seconds) FILTER (WHERE qc.outcome IN ('answered', 'transferred')), 0),
    max(qc.wait_seconds)
"""

BUCKET = "date_bin('15 minutes', qc.entered_at, timestamptz '1970-01-01 00:00:00+00')"
# The same, quoted to sit in a string literal of PL/pgSQL's EXECUTE.
QUOTED_AGGREGATES = " ".join(AGGREGATES.replace("'", "''").split())
QUOTED_BUCKET = BUCKET.replace("'", "''")

REFRESH = f"""
CREATE FUNCTION queue_stats_rollup_refresh(
    tenant_ids bigint[], queue_ids bigint[], bucket_starts timestamptz[]
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(cardinality(queue_ids), 0) = 0 THEN
        RETURN;
    END IF;
    -- A queue's rollup is only written under its row lock: each statement below takes a new
    -- snapshot (READ COMMITTED), so it sees what the queue's previous writer committed.
    PERFORM 1 FROM queues WHERE id = ANY(queue_ids) ORDER BY id FOR NO KEY UPDATE;
    DELETE FROM queue_stats_rollup AS r
        USING unnest(tenant_ids, queue_ids, bucket_starts) AS k(tenant_id, queue_id, bucket_start)
        WHERE r.tenant_id = k.tenant_id AND r.queue_id = k.queue_id
        AND r.bucket_start = k.bucket_start;
    INSERT INTO queue_stats_rollup ({COLUMNS})
    SELECT k.tenant_id, k.queue_id, k.bucket_start, q.service_level_seconds,
        q.short_abandon_seconds, {AGGREGATES}
    FROM (
        SELECT DISTINCT tenant_id, queue_id, bucket_start
        FROM unnest(tenant_ids, queue_ids, bucket_starts) AS u(tenant_id, queue_id, bucket_start)
    ) AS k
    JOIN queues AS q ON q.id = k.queue_id AND q.tenant_id = k.tenant_id
    JOIN queue_calls AS qc ON qc.tenant_id = k.tenant_id AND qc.queue_id = k.queue_id
        AND qc.entered_at >= k.bucket_start
        AND qc.entered_at < k.bucket_start + interval '15 minutes'
    GROUP BY k.tenant_id, k.queue_id, k.bucket_start, q.service_level_seconds,
        q.short_abandon_seconds;
END
$$
"""  # noqa: S608 - built from this module's constants only

REBUILD = f"""
CREATE FUNCTION queue_stats_rollup_rebuild(
    p_tenant_id bigint DEFAULT NULL, p_queue_id bigint DEFAULT NULL
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    scope text := 'TRUE';
    written bigint;
BEGIN
    IF p_tenant_id IS NOT NULL THEN
        scope := scope || format(' AND qc.tenant_id = %s', p_tenant_id);
    END IF;
    IF p_queue_id IS NOT NULL THEN
        scope := scope || format(' AND qc.queue_id = %s', p_queue_id);
    END IF;
    PERFORM 1 FROM queues
        WHERE (p_tenant_id IS NULL OR tenant_id = p_tenant_id)
        AND (p_queue_id IS NULL OR id = p_queue_id)
        ORDER BY id FOR NO KEY UPDATE;
    DELETE FROM queue_stats_rollup
        WHERE (p_tenant_id IS NULL OR tenant_id = p_tenant_id)
        AND (p_queue_id IS NULL OR queue_id = p_queue_id);
    EXECUTE 'INSERT INTO queue_stats_rollup ({COLUMNS}) '
        || 'SELECT qc.tenant_id, qc.queue_id, {QUOTED_BUCKET}, q.service_level_seconds, '
        || 'q.short_abandon_seconds, {QUOTED_AGGREGATES} '
        || 'FROM queue_calls AS qc JOIN queues AS q '
        || 'ON q.id = qc.queue_id AND q.tenant_id = qc.tenant_id WHERE '
        || scope
        || ' GROUP BY 1, 2, 3, 4, 5';
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$
"""  # noqa: S608 - built from this module's constants only

ADDITIONS = ", ".join(
    [
        "queue_name = greatest(r.queue_name, excluded.queue_name)",
        *(f'"{name}" = r."{name}" + excluded."{name}"' for name in (*COUNTS, *SUMS)),
        "longest_wait = greatest(r.longest_wait, excluded.longest_wait)",
    ]
)

KEYS = f"SELECT DISTINCT qc.tenant_id, qc.queue_id, {BUCKET} AS bucket_start"

# A statement's new calls are added to their buckets: each row a statement really inserted
# is in ``new_rows`` once (a key already there, ON CONFLICT DO NOTHING, is not), and the
# upsert adds onto the committed row (another writer's addition waits for its commit). The
# queue is share-locked first: a threshold change or a rebuild (exclusive) waits for the
# writers of the queue, the writers for it, so an addition never lands on counts made with
# other thresholds.
ADD = f"""
CREATE FUNCTION queue_calls_rollup_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM queues
        WHERE id IN (SELECT queue_id FROM new_rows)
        ORDER BY id FOR SHARE;
    INSERT INTO queue_stats_rollup AS r ({COLUMNS})
    SELECT qc.tenant_id, qc.queue_id, {BUCKET}, q.service_level_seconds,
        q.short_abandon_seconds, {AGGREGATES}
    FROM new_rows AS qc
    JOIN queues AS q ON q.id = qc.queue_id AND q.tenant_id = qc.tenant_id
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 3, 2
    ON CONFLICT (tenant_id, bucket_start, queue_id) DO UPDATE SET {ADDITIONS};
    RETURN NULL;
END
$$
"""  # noqa: S608 - built from this module's constants only

# What the rollup reads of a call: an update changing none of it (an agent deleted, its
# ``agent_id`` set to null) recomputes nothing.
READ = (
    "tenant_id",
    "queue_id",
    "queue_name",
    "entered_at",
    "outcome",
    "wait_seconds",
    "talk_seconds",
    "hold_seconds",
    "wrapup_seconds",
)
CHANGED = (
    "(SELECT o.id FROM old_rows AS o JOIN new_rows AS n USING (id) WHERE ("  # noqa: S608
    + ", ".join(f"o.{name}" for name in READ)
    + ") IS DISTINCT FROM ("
    + ", ".join(f"n.{name}" for name in READ)
    + ")) AS changed"
)

# Updated or deleted calls: their buckets (before and after) are recomputed.
ON_CHANGE = f"""
CREATE FUNCTION queue_calls_rollup_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        PERFORM queue_stats_rollup_refresh(
            array_agg(k.tenant_id), array_agg(k.queue_id), array_agg(k.bucket_start))
        FROM (
            {KEYS} FROM new_rows AS qc JOIN {CHANGED} USING (id) WHERE qc.queue_id IS NOT NULL
            UNION
            {KEYS} FROM old_rows AS qc JOIN {CHANGED} USING (id) WHERE qc.queue_id IS NOT NULL
        ) AS k;
    ELSE
        PERFORM queue_stats_rollup_refresh(
            array_agg(k.tenant_id), array_agg(k.queue_id), array_agg(k.bucket_start))
        FROM ({KEYS} FROM old_rows AS qc WHERE qc.queue_id IS NOT NULL) AS k;
    END IF;
    RETURN NULL;
END
$$
"""

ON_TRUNCATE = """
CREATE FUNCTION queue_calls_rollup_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM queue_stats_rollup;
    RETURN NULL;
END
$$
"""

ON_THRESHOLDS = """
CREATE FUNCTION queues_rollup_thresholds() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM queue_stats_rollup_rebuild(NEW.tenant_id, NEW.id);
    RETURN NULL;
END
$$
"""

TRIGGERS = (
    "CREATE TRIGGER queue_calls_rollup_insert AFTER INSERT ON queue_calls "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION queue_calls_rollup_add()",
    "CREATE TRIGGER queue_calls_rollup_update AFTER UPDATE ON queue_calls "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION queue_calls_rollup_refresh()",
    "CREATE TRIGGER queue_calls_rollup_delete AFTER DELETE ON queue_calls "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION queue_calls_rollup_refresh()",
    "CREATE TRIGGER queue_calls_rollup_truncate AFTER TRUNCATE ON queue_calls "
    "FOR EACH STATEMENT EXECUTE FUNCTION queue_calls_rollup_truncate()",
    "CREATE TRIGGER queues_rollup_thresholds "
    "AFTER UPDATE OF service_level_seconds, short_abandon_seconds ON queues FOR EACH ROW "
    "WHEN (OLD.service_level_seconds IS DISTINCT FROM NEW.service_level_seconds "
    "OR OLD.short_abandon_seconds IS DISTINCT FROM NEW.short_abandon_seconds) "
    "EXECUTE FUNCTION queues_rollup_thresholds()",
)


def upgrade() -> None:
    op.create_table(
        "queue_stats_rollup",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("queue_id", sa.BigInteger(), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("service_level_seconds", sa.Integer(), nullable=False),
        sa.Column("short_abandon_seconds", sa.Integer(), nullable=False),
        sa.Column("queue_name", sa.Text(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        *(sa.Column(name, sa.Numeric(), nullable=False) for name in SUMS),
        sa.Column("longest_wait", sa.Numeric(12, 3), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_queue_stats_rollup_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queues.id"],
            name=op.f("fk_queue_stats_rollup_queue_id_queues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "bucket_start", "queue_id", name=op.f("pk_queue_stats_rollup")
        ),
    )
    op.create_index(
        "ix_queue_stats_rollup_queue_bucket", "queue_stats_rollup", ["queue_id", "bucket_start"]
    )
    for statement in (REFRESH, REBUILD, ADD, ON_CHANGE, ON_TRUNCATE, ON_THRESHOLDS, *TRIGGERS):
        op.execute(statement)
    op.execute("SELECT queue_stats_rollup_rebuild()")


def downgrade() -> None:
    op.execute("DROP TRIGGER queues_rollup_thresholds ON queues")
    for name in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER queue_calls_rollup_{name} ON queue_calls")
    for function in (
        "queues_rollup_thresholds()",
        "queue_calls_rollup_truncate()",
        "queue_calls_rollup_add()",
        "queue_calls_rollup_refresh()",
        "queue_stats_rollup_rebuild(bigint, bigint)",
        "queue_stats_rollup_refresh(bigint[], bigint[], timestamptz[])",
    ):
        op.execute(f"DROP FUNCTION {function}")
    op.drop_table("queue_stats_rollup")
