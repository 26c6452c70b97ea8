"""realtime SIP: the PJSIP endpoints, auths and AORs Asterisk reads from Postgres (res_config_pgsql), and the contacts it writes

Revision ID: 0019_realtime_sip
Revises: 0018_campaigns
Create Date: 2026-12-04 16:00:00+00:00

The three views are the only source of the devices' PJSIP objects (docs/realtime-sip.md):
every column is a pjsip.conf option of the same name, computed from ``agent_devices`` (the
caller name from ``users``), so no code path can change a device and forget them. A lookup
by id is a lookup of ``agent_devices.sip_username``, through its unique index.

Values pass res_config_pgsql, which splits every column at ';' (several ``set_var``) and
decodes ``^XX``: the caller ID's own '^' and ';' are encoded, the name's quotes, angle
brackets, backslashes and control characters dropped, as the file renderer did; a codec
outside its alphabet (a row written behind the API's back) is left out.

``ps_contacts`` is Asterisk's own table (it inserts, updates and deletes registrations):
the columns of Asterisk 22's contact object (booleans as Asterisk writes them: "yes", "no",
"false"...). Its ids are ``<aor>^3B@<hash>`` (';' encoded) and Asterisk reads an AOR's
contacts by that prefix: the id is in the "C" collation so that the primary key's index
serves it. A device's contacts go with it. ``ps_aors`` has an always empty ``contact``: PJSIP
asks for the AORs with static contacts (none: phones register).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_realtime_sip"
down_revision: str | None = "0018_campaigns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The devices Asterisk knows: those of every tenant not terminated (as the file renderer).
_DEVICES = """
    FROM agent_devices d
    JOIN tenants t ON t.id = d.tenant_id AND t.status <> 'terminated'
"""

# The node's media address comes from the connection's own setting graam.media_address
# (set per Asterisk: PGOPTIONS in its environment, or ALTER ROLE ... SET for its role).
_MEDIA = "nullif(current_setting('graam.media_address', true), '')"
# Behind the SIP edge (graam.behind_edge = on, set the same way) every request comes from the
# edge's address: a node rewriting contacts to the source would lose where the phone is, so
# phones' contacts are kept as they registered them, their Path leading back through the
# edge (docs/sip-edge.md). Elsewhere contacts are rewritten to the source (NAT).
# Any other value than on/true/yes/1 (or none) means not behind an edge: never an error
# that would fail every phone's lookup.
_REWRITE_CONTACT = (
    "CASE WHEN lower(coalesce(current_setting('graam.behind_edge', true), ''))"
    " IN ('on', 'true', 'yes', '1') THEN 'no' ELSE 'yes' END"
)

ENDPOINTS = f"""
CREATE VIEW ps_endpoints AS
SELECT
    d.sip_username AS id,
    CASE WHEN d.transport <> 'udp' THEN 'transport-' || d.transport END AS transport,
    d.sip_username AS aors,
    d.sip_username AS auth,
    't' || d.tenant_id || '-internal' AS context,
    '!all,' || array_to_string(
        ARRAY(SELECT c FROM unnest(d.codecs) AS c WHERE c ~ '^[a-z0-9_]{{1,16}}$'), ','
    ) AS allow,
    't' || d.tenant_id AS accountcode,
    't' || d.tenant_id AS tenantid,
    replace(replace(
        '"' || left(btrim(regexp_replace(
            coalesce(u.display_name, d.extension),
            '["<>\\\\\\u0001-\\u001f\\u007f-\\u009f\\u2028\\u2029]', '', 'g'
        )), 80) || '" <' || d.extension || '>',
    '^', '^5E'), ';', '^3B') AS callerid,
    '__GRAAM_TENANT=' || d.tenant_id || ';__GRAAM_DEVICE=' || d.id
        || ';__GRAAM_AGENT=' || d.user_id AS set_var,
    'no' AS direct_media,
    'yes' AS rtp_symmetric,
    'yes' AS force_rport,
    {_REWRITE_CONTACT} AS rewrite_contact,
    'rfc4733' AS dtmf_mode,
    {_MEDIA} AS media_address,
    CASE WHEN {_MEDIA} IS NOT NULL THEN 'yes' END AS bind_rtp_to_media_address
{_DEVICES}
LEFT JOIN users u ON u.id = d.user_id AND u.role = 'agent' AND NOT u.disabled
"""  # noqa: S608 - constants of this module only

AUTHS = f"""
CREATE VIEW ps_auths AS
SELECT
    d.sip_username AS id,
    'digest' AS auth_type,
    d.sip_username AS username,
    'graam' AS realm,
    'md5:' || d.password_ha1 AS password_digest
{_DEVICES}
"""

AORS = f"""
CREATE VIEW ps_aors AS
SELECT
    d.sip_username AS id,
    NULL::text AS contact,
    d.max_contacts,
    'yes' AS remove_existing,
    60 AS qualify_frequency,
    'yes' AS support_path
{_DEVICES}
"""


def upgrade() -> None:
    op.execute(ENDPOINTS)
    op.execute(AUTHS)
    op.execute(AORS)
    op.create_table(
        "ps_contacts",
        sa.Column("id", sa.String(length=255, collation="C"), nullable=False),
        sa.Column("uri", sa.String(length=511)),
        sa.Column("expiration_time", sa.BigInteger()),
        sa.Column("qualify_frequency", sa.Integer()),
        sa.Column("outbound_proxy", sa.String(length=255)),
        sa.Column("path", sa.Text()),
        sa.Column("user_agent", sa.String(length=255)),
        sa.Column("qualify_timeout", sa.Float()),
        sa.Column("reg_server", sa.String(length=255)),
        sa.Column("authenticate_qualify", sa.String(length=8)),
        sa.Column("via_addr", sa.String(length=40)),
        sa.Column("via_port", sa.Integer()),
        sa.Column("call_id", sa.String(length=255)),
        sa.Column("endpoint", sa.String(length=128)),
        sa.Column("prune_on_boot", sa.String(length=8)),
        sa.Column("qualify_2xx_only", sa.String(length=8)),
        sa.ForeignKeyConstraint(
            ["endpoint"],
            ["agent_devices.sip_username"],
            name=op.f("fk_ps_contacts_endpoint_agent_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ps_contacts")),
    )
    op.create_index(op.f("ix_ps_contacts_endpoint"), "ps_contacts", ["endpoint"])
    op.create_index(op.f("ix_ps_contacts_expiration_time"), "ps_contacts", ["expiration_time"])


def downgrade() -> None:
    op.drop_table("ps_contacts")
    op.execute("DROP VIEW ps_aors")
    op.execute("DROP VIEW ps_auths")
    op.execute("DROP VIEW ps_endpoints")
