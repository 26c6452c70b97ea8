"""SIP device rows: what Asterisk reads of each device, kept in one table by triggers

Revision ID: 0032_sip_device_rows
Revises: 0031_event_streams
Create Date: 2026-12-06 09:30:00+00:00

``ps_endpoints``, ``ps_auths`` and ``ps_aors`` (0019, narrowed to a node's tenants by 0022,
0024 and 0026) computed each row at every lookup from ``agent_devices``, ``tenants``,
``tenant_placements`` and ``users``. ``res_config_pgsql`` sends each lookup as a statement of
its own, so Postgres planned that four-table join again every time: 0.34 ms of planning for
a lookup that runs in 0.05 ms, paid by every REGISTER, every call to a phone and every agent
added to a queue.

The rows are now computed once, when what they are made of changes, into
``sip_device_rows``; the three views read that one table (a lookup by id of
``ps_endpoints`` plans in 0.08 ms, most of it the node's filter). They keep their names, columns and
the node's filter, and what each connection sets (media address, behind an edge, DTLS
certificate) is still read at lookup time.

Triggers keep the table in step with its sources whatever writes them (the API, a bulk
import, a migration, a tenant's termination), as the views did:

- ``agent_devices`` inserted, updated or deleted: those devices;
- ``users`` whose display name, role or disabled flag changed: their devices;
- ``tenants`` whose status changed, ``tenant_placements`` inserted, updated or deleted: every
  device of those tenants.

Each trigger calls ``sip_device_rows_refresh(tenants, devices)``: it locks the tenants' rows
(``FOR NO KEY UPDATE``, in id order, held until the transaction ends), then, in statements
that start after the lock is granted and so see every change committed before it, deletes
the devices' rows and writes them again from the same join the views ran. Two transactions
changing the same tenant's devices (an agent renamed while its device's codecs change) thus
write one after the other, the second from a snapshot holding the first: no row is left
from a stale read. The lock is the one a login and ``set_licences`` take; it is held only
by the transactions that change devices, agents' names or roles, placements or a status.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0032_sip_device_rows"
down_revision: str | None = "0031_event_streams"
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


_REALTIME = _revision("0019_realtime_sip")
_NODES = _revision("0022_node_views")
_DEFAULT_NODE = _revision("0024_default_node")
_WEBRTC = _revision("0026_webrtc")

# The node the connection names (graam.node), computed once per statement.
_HERE = _NODES._HERE
HELD = f"""WHERE {_HERE} IS NULL
   OR {_HERE} IN (r.node_id, r.standby_node_id)
   OR (NOT r.placed AND {_HERE} = {_DEFAULT_NODE.DEFAULT})
"""

COLUMNS = (
    "device_id, id, tenant_id, node_id, standby_node_id, placed, transport, context, allow,"
    " accountcode, callerid, set_var, password_digest, max_contacts"
)

# What each device's rows hold: exactly what the views computed (0019, 0022, 0026).
ROWS = """
    SELECT
        d.id,
        d.sip_username,
        d.tenant_id,
        p.node_id,
        p.standby_node_id,
        p.tenant_id IS NOT NULL,
        d.transport,
        't' || d.tenant_id || '-internal',
        '!all,' || array_to_string(
            ARRAY(SELECT c FROM unnest(d.codecs) AS c WHERE c ~ '^[a-z0-9_]{1,16}$'), ','
        ),
        't' || d.tenant_id,
        replace(replace(
            '"' || left(btrim(regexp_replace(
                coalesce(u.display_name, d.extension),
                '["<>\\\\\\u0001-\\u001f\\u007f-\\u009f\\u2028\\u2029]', '', 'g'
            )), 80) || '" <' || d.extension || '>',
        '^', '^5E'), ';', '^3B'),
        '__GRAAM_TENANT=' || d.tenant_id || ';__GRAAM_DEVICE=' || d.id
            || ';__GRAAM_AGENT=' || d.user_id,
        'md5:' || d.password_ha1,
        d.max_contacts
    FROM agent_devices d
    JOIN tenants t ON t.id = d.tenant_id AND t.status <> 'terminated'
    LEFT JOIN tenant_placements p ON p.tenant_id = d.tenant_id
    LEFT JOIN users u ON u.id = d.user_id AND u.role = 'agent' AND NOT u.disabled
"""

REFRESH = f"""
CREATE FUNCTION sip_device_rows_refresh(p_tenants bigint[], p_devices bigint[])
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
-- p_devices: the devices to write again, or NULL: every device of p_tenants.
BEGIN
    IF cardinality(p_tenants) IS NULL OR cardinality(p_tenants) = 0 THEN
        RETURN;
    END IF;
    PERFORM 1 FROM tenants t WHERE t.id = ANY(p_tenants) ORDER BY t.id FOR NO KEY UPDATE;
    IF p_devices IS NULL THEN
        DELETE FROM sip_device_rows r WHERE r.tenant_id = ANY(p_tenants);
        INSERT INTO sip_device_rows ({COLUMNS}) {ROWS}
        WHERE d.tenant_id = ANY(p_tenants);
    ELSE
        DELETE FROM sip_device_rows r WHERE r.device_id = ANY(p_devices);
        INSERT INTO sip_device_rows ({COLUMNS}) {ROWS}
        WHERE d.id = ANY(p_devices);
    END IF;
END
$$
"""  # noqa: S608 - built from this module's constants only

# One function per transition table it reads: an UPDATE's old rows name the same devices
# and tenants as its new ones (neither id changes).
FUNCTIONS = (
    REFRESH,
    """
CREATE FUNCTION sip_device_rows_devices_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sip_device_rows_refresh(
        ARRAY(SELECT DISTINCT n.tenant_id FROM new_rows n), ARRAY(SELECT n.id FROM new_rows n));
    RETURN NULL;
END
$$
""",
    """
CREATE FUNCTION sip_device_rows_devices_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sip_device_rows_refresh(
        ARRAY(SELECT DISTINCT o.tenant_id FROM old_rows o), ARRAY(SELECT o.id FROM old_rows o));
    RETURN NULL;
END
$$
""",
    """
CREATE FUNCTION sip_device_rows_users() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_users bigint[];
BEGIN
    v_users := ARRAY(
        SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE (n.display_name, n.role, n.disabled, n.tenant_id)
              IS DISTINCT FROM (o.display_name, o.role, o.disabled, o.tenant_id));
    IF cardinality(v_users) > 0 THEN
        PERFORM sip_device_rows_refresh(
            ARRAY(SELECT DISTINCT d.tenant_id FROM agent_devices d
                  WHERE d.user_id = ANY(v_users)),
            ARRAY(SELECT d.id FROM agent_devices d WHERE d.user_id = ANY(v_users)));
    END IF;
    RETURN NULL;
END
$$
""",
    """
CREATE FUNCTION sip_device_rows_tenants() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sip_device_rows_refresh(
        ARRAY(SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
              WHERE n.status IS DISTINCT FROM o.status),
        NULL);
    RETURN NULL;
END
$$
""",
    """
CREATE FUNCTION sip_device_rows_placements_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sip_device_rows_refresh(ARRAY(SELECT DISTINCT n.tenant_id FROM new_rows n), NULL);
    RETURN NULL;
END
$$
""",
    """
CREATE FUNCTION sip_device_rows_placements_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sip_device_rows_refresh(ARRAY(SELECT DISTINCT o.tenant_id FROM old_rows o), NULL);
    RETURN NULL;
END
$$
""",
)

# (table, event, transition tables, function)
TRIGGERS = (
    ("agent_devices", "INSERT", "NEW TABLE AS new_rows", "sip_device_rows_devices_new"),
    (
        "agent_devices",
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "sip_device_rows_devices_old",
    ),
    ("agent_devices", "DELETE", "OLD TABLE AS old_rows", "sip_device_rows_devices_old"),
    ("users", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows", "sip_device_rows_users"),
    (
        "tenants",
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "sip_device_rows_tenants",
    ),
    ("tenant_placements", "INSERT", "NEW TABLE AS new_rows", "sip_device_rows_placements_new"),
    (
        "tenant_placements",
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "sip_device_rows_placements_new",
    ),
    ("tenant_placements", "DELETE", "OLD TABLE AS old_rows", "sip_device_rows_placements_old"),
)


def _trigger_name(table: str, event: str) -> str:
    return f"{table}_sip_device_rows_{event.lower()}"


_MEDIA = _REALTIME._MEDIA

VIEWS = (
    f"""
CREATE OR REPLACE VIEW ps_endpoints AS
SELECT
    r.id,
    CASE WHEN r.transport NOT IN ('udp', 'webrtc') THEN 'transport-' || r.transport END
        AS transport,
    r.id AS aors,
    r.id AS auth,
    r.context,
    r.allow,
    r.accountcode,
    r.accountcode AS tenantid,
    r.callerid,
    r.set_var,
    'no' AS direct_media,
    'yes' AS rtp_symmetric,
    'yes' AS force_rport,
    {_REALTIME._REWRITE_CONTACT} AS rewrite_contact,
    'rfc4733' AS dtmf_mode,
    {_MEDIA} AS media_address,
    CASE WHEN {_MEDIA} IS NOT NULL THEN 'yes' END AS bind_rtp_to_media_address,
    CASE WHEN r.transport = 'webrtc' THEN 'yes' END AS webrtc,
    CASE WHEN r.transport = 'webrtc' THEN {_WEBRTC.DTLS_CERT_FILE} END AS dtls_cert_file
FROM sip_device_rows r
{HELD}""",  # noqa: S608 - built from this module's constants only
    f"""
CREATE OR REPLACE VIEW ps_auths AS
SELECT
    r.id,
    'digest' AS auth_type,
    r.id AS username,
    'graam' AS realm,
    r.password_digest
FROM sip_device_rows r
{HELD}""",  # noqa: S608 - built from this module's constants only
    f"""
CREATE OR REPLACE VIEW ps_aors AS
SELECT
    r.id,
    NULL::text AS contact,
    r.max_contacts,
    'yes' AS remove_existing,
    60 AS qualify_frequency,
    'yes' AS support_path
FROM sip_device_rows r
{HELD}""",  # noqa: S608 - built from this module's constants only
)


def _views_before() -> list[str]:
    """The three views as 0026 left them."""
    endpoints = _WEBRTC._endpoints_webrtc()
    auths, aors = _DEFAULT_NODE._views(through_function=True)[1:3]
    return [endpoints, auths, aors]


def upgrade() -> None:
    op.create_table(
        "sip_device_rows",
        sa.Column("device_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("node_id", sa.BigInteger()),
        sa.Column("standby_node_id", sa.BigInteger()),
        sa.Column("placed", sa.Boolean(), nullable=False),
        sa.Column("transport", sa.String(length=8), nullable=False),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("allow", sa.Text(), nullable=False),
        sa.Column("accountcode", sa.Text(), nullable=False),
        sa.Column("callerid", sa.Text(), nullable=False),
        sa.Column("set_var", sa.Text(), nullable=False),
        sa.Column("password_digest", sa.Text(), nullable=False),
        sa.Column("max_contacts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_sip_device_rows")),
        sa.UniqueConstraint("id", name=op.f("uq_sip_device_rows_id")),
    )
    op.create_index(op.f("ix_sip_device_rows_tenant_id"), "sip_device_rows", ["tenant_id"])
    for function in FUNCTIONS:
        op.execute(function)
    for table, event, transitions, function in TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {_trigger_name(table, event)} AFTER {event} ON {table} "
            f"REFERENCING {transitions} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    op.execute("SELECT sip_device_rows_refresh(ARRAY(SELECT id FROM tenants), NULL)")
    for view in VIEWS:
        op.execute(view)


def downgrade() -> None:
    for view in _views_before():
        op.execute(view)
    for table, event, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER {_trigger_name(table, event)} ON {table}")
    for name in (
        "sip_device_rows_devices_new",
        "sip_device_rows_devices_old",
        "sip_device_rows_users",
        "sip_device_rows_tenants",
        "sip_device_rows_placements_new",
        "sip_device_rows_placements_old",
    ):
        op.execute(f"DROP FUNCTION {name}()")
    op.execute("DROP FUNCTION sip_device_rows_refresh(bigint[], bigint[])")
    op.drop_table("sip_device_rows")
