"""SIP devices changed: the rows Asterisk reads say which devices changed, at commit

Revision ID: 0038_sip_devices_changed
Revises: 0037_webhook_forwarded_from
Create Date: 2026-12-06 19:00:00+00:00

Asterisk keeps the AORs it reads from Postgres in memory (``asterisk_conf/sorcery.conf``):
the qualify reads one for every registered phone every minute. Whatever changes a device's
row must therefore say so, for the control plane to expire that device's entries on every
node (``graam_pbx/asterisk/sip_cache.py``).

``sip_device_rows_refresh()`` (0032) is made again: it collects the ids (SIP usernames) of the
rows it deletes and of those it writes again, and sends them with
``pg_notify('graam_sip_devices', 'alice,bob')``, delivered once, at commit, only if the
transaction commits. Every writer of the rows goes through it (its triggers), so no code path
can change a device without the notification. A payload too long for Postgres is ``*``:
every entry.

What a node's views hold also depends on ``asterisk_nodes`` (the node a connection names, the
default node of tenants not placed): a node inserted, deleted, renamed or changing state
sends ``*``.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0038_sip_devices_changed"
down_revision: str | None = "0037_webhook_forwarded_from"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _revision(name: str) -> ModuleType:
    """An earlier revision of this folder, whose texts this one reuses (and restores)."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"graam_revision_{name}", path)
    assert spec is not None and spec.loader is not None  # noqa: S101 - a file of this folder
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_ROWS = _revision("0032_sip_device_rows")

CHANNEL = "graam_sip_devices"  # graam_pbx/asterisk/sip_cache.py's CHANNEL
EVERY = "*"
# Postgres refuses a payload of 8000 bytes or more.
MAX_PAYLOAD = 7000

CHANGED = f"""
CREATE FUNCTION sip_devices_changed(p_ids text[]) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
-- Tell the control plane (at commit) that Asterisk's copies of these devices are stale.
DECLARE
    v_payload text;
BEGIN
    IF cardinality(p_ids) IS NULL OR cardinality(p_ids) = 0 THEN
        RETURN;
    END IF;
    v_payload := array_to_string(ARRAY(SELECT DISTINCT i FROM unnest(p_ids) AS i ORDER BY i), ',');
    IF length(v_payload) > {MAX_PAYLOAD} THEN
        v_payload := '{EVERY}';
    END IF;
    PERFORM pg_notify('{CHANNEL}', v_payload);
END
$$
"""  # noqa: S608 - built from this module's constants only

REFRESH = f"""
CREATE OR REPLACE FUNCTION sip_device_rows_refresh(p_tenants bigint[], p_devices bigint[])
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
-- p_devices: the devices to write again, or NULL: every device of p_tenants.
DECLARE
    v_gone text[];
    v_made text[];
BEGIN
    IF cardinality(p_tenants) IS NULL OR cardinality(p_tenants) = 0 THEN
        RETURN;
    END IF;
    PERFORM 1 FROM tenants t WHERE t.id = ANY(p_tenants) ORDER BY t.id FOR NO KEY UPDATE;
    IF p_devices IS NULL THEN
        WITH gone AS (
            DELETE FROM sip_device_rows r WHERE r.tenant_id = ANY(p_tenants) RETURNING r.id
        ) SELECT array_agg(gone.id) INTO v_gone FROM gone;
        WITH made AS (
            INSERT INTO sip_device_rows ({_ROWS.COLUMNS}) {_ROWS.ROWS}
            WHERE d.tenant_id = ANY(p_tenants)
            RETURNING id
        ) SELECT array_agg(made.id) INTO v_made FROM made;
    ELSE
        WITH gone AS (
            DELETE FROM sip_device_rows r WHERE r.device_id = ANY(p_devices) RETURNING r.id
        ) SELECT array_agg(gone.id) INTO v_gone FROM gone;
        WITH made AS (
            INSERT INTO sip_device_rows ({_ROWS.COLUMNS}) {_ROWS.ROWS}
            WHERE d.id = ANY(p_devices)
            RETURNING id
        ) SELECT array_agg(made.id) INTO v_made FROM made;
    END IF;
    PERFORM sip_devices_changed(coalesce(v_gone, '{{}}') || coalesce(v_made, '{{}}'));
END
$$
"""  # noqa: S608 - built from this module's and 0032's constants only

NODES_CHANGED = f"""
CREATE FUNCTION sip_devices_nodes_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '{EVERY}');
    RETURN NULL;
END
$$
"""

NODES_TRIGGER = (
    "CREATE TRIGGER asterisk_nodes_sip_devices "
    "AFTER INSERT OR DELETE OR UPDATE OF systemname, state ON asterisk_nodes "
    "FOR EACH STATEMENT EXECUTE FUNCTION sip_devices_nodes_changed()"
)


def upgrade() -> None:
    op.execute(CHANGED)
    op.execute(REFRESH)
    op.execute(NODES_CHANGED)
    op.execute(NODES_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER asterisk_nodes_sip_devices ON asterisk_nodes")
    op.execute("DROP FUNCTION sip_devices_nodes_changed()")
    op.execute(_ROWS.REFRESH.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute("DROP FUNCTION sip_devices_changed(text[])")
