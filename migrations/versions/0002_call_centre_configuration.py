"""call centre configuration

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 03:04:22.139670+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("tenant_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_user_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_role", sa.String(length=16), nullable=True),
        sa.Column("actor_label", sa.String(length=254), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_object", "audit_log", ["object_type", "object_id"], unique=False)
    op.create_index("ix_audit_log_tenant_at", "audit_log", ["tenant_id", "at"], unique=False)
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("tenant_slug", sa.String(length=63), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    op.create_index(
        "ix_login_attempts_address_at", "login_attempts", ["address", "at"], unique=False
    )
    op.create_index("ix_login_attempts_email_at", "login_attempts", ["email", "at"], unique=False)
    op.create_table(
        "trunks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("transport", sa.String(length=8), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("username", sa.String(length=80), nullable=True),
        sa.Column("password", sa.String(length=128), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "transport in ('udp', 'tcp', 'tls')", name=op.f("ck_trunks_transport_known")
        ),
        sa.CheckConstraint("port between 1 and 65535", name=op.f("ck_trunks_port_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trunks")),
        sa.UniqueConstraint("name", name=op.f("uq_trunks_name")),
    )
    op.create_table(
        "phone_numbers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("number_type", sa.String(length=16), nullable=False),
        sa.Column("monthly_price", sa.Numeric(precision=12, scale=4), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "(status = 'available') = (tenant_id IS NULL)",
            name=op.f("ck_phone_numbers_held_iff_not_free"),
        ),
        sa.CheckConstraint(
            "e164 ~ '^\\+[1-9][0-9]{6,14}$'", name=op.f("ck_phone_numbers_e164_format")
        ),
        sa.CheckConstraint(
            "number_type in ('geographic', 'mobile', 'toll_free', 'national')",
            name=op.f("ck_phone_numbers_type_known"),
        ),
        sa.CheckConstraint(
            "status in ('available', 'assigned', 'port_out')",
            name=op.f("ck_phone_numbers_status_known"),
        ),
        sa.CheckConstraint("monthly_price >= 0", name=op.f("ck_phone_numbers_price_not_negative")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_phone_numbers_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phone_numbers")),
        sa.UniqueConstraint("e164", name=op.f("uq_phone_numbers_e164")),
    )
    op.create_index(
        "ix_phone_numbers_available",
        "phone_numbers",
        ["country", "number_type", "status"],
        unique=False,
    )
    op.create_index(
        op.f("ix_phone_numbers_tenant_id"), "phone_numbers", ["tenant_id"], unique=False
    )
    op.create_table(
        "prompts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("audio", sa.LargeBinary(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_prompts_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompts")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_prompts_tenant_id_name")),
    )
    op.create_index(op.f("ix_prompts_tenant_id"), "prompts", ["tenant_id"], unique=False)
    op.create_table(
        "queues",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("strategy", sa.String(length=16), nullable=False),
        sa.Column("ring_timeout", sa.Integer(), nullable=False),
        sa.Column("retry", sa.Integer(), nullable=False),
        sa.Column("wrapup_time", sa.Integer(), nullable=False),
        sa.Column("max_wait", sa.Integer(), nullable=True),
        sa.Column("fallback_type", sa.String(length=16), nullable=True),
        sa.Column("fallback_id", sa.BigInteger(), nullable=True),
        sa.Column("music_on_hold", sa.String(length=64), nullable=False),
        sa.Column("announce_position", sa.Boolean(), nullable=False),
        sa.Column("announce_holdtime", sa.Boolean(), nullable=False),
        sa.Column("announce_frequency", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "fallback_type IS NULL OR fallback_type in ('agent', 'extension', 'queue', 'ivr', 'voicemail', 'announcement', 'hangup')",
            name=op.f("ck_queues_fallback_known"),
        ),
        sa.CheckConstraint(
            "strategy in ('ringall', 'leastrecent', 'fewestcalls', 'random', 'rrmemory', 'linear', 'wrandom')",
            name=op.f("ck_queues_strategy_known"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_queues_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queues")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_queues_tenant_id_name")),
    )
    op.create_index(op.f("ix_queues_tenant_id"), "queues", ["tenant_id"], unique=False)
    op.create_table(
        "schedules",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("weekly", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("holidays", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_schedules_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_schedules_tenant_id_name")),
    )
    op.create_index(op.f("ix_schedules_tenant_id"), "schedules", ["tenant_id"], unique=False)
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "(role = 'operator') = (tenant_id IS NULL)",
            name=op.f("ck_users_operator_has_no_tenant"),
        ),
        sa.CheckConstraint(
            "role in ('operator', 'admin', 'supervisor', 'agent')", name=op.f("ck_users_role_known")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_users_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_index(op.f("ix_users_tenant_id"), "users", ["tenant_id"], unique=False)
    op.create_index(
        "uq_users_operator_email",
        "users",
        ["email"],
        unique=True,
        postgresql_where=sa.text("tenant_id IS NULL"),
    )
    op.create_index(
        "uq_users_tenant_email",
        "users",
        ["tenant_id", "email"],
        unique=True,
        postgresql_where=sa.text("tenant_id IS NOT NULL"),
    )
    op.create_table(
        "agent_devices",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("sip_username", sa.String(length=128), nullable=False),
        sa.Column("password_ha1", sa.String(length=32), nullable=False),
        sa.Column("extension", sa.String(length=8), nullable=False),
        sa.Column("codecs", sa.ARRAY(sa.String(length=16)), nullable=False),
        sa.Column("transport", sa.String(length=8), nullable=False),
        sa.Column("max_contacts", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "transport in ('udp', 'tcp', 'tls')", name=op.f("ck_agent_devices_transport_known")
        ),
        sa.CheckConstraint(
            "max_contacts between 1 and 10", name=op.f("ck_agent_devices_max_contacts_range")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_agent_devices_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_agent_devices_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_devices")),
        sa.UniqueConstraint("sip_username", name=op.f("uq_agent_devices_sip_username")),
        sa.UniqueConstraint(
            "tenant_id", "extension", name=op.f("uq_agent_devices_tenant_id_extension")
        ),
    )
    op.create_index(
        op.f("ix_agent_devices_tenant_id"), "agent_devices", ["tenant_id"], unique=False
    )
    op.create_index(op.f("ix_agent_devices_user_id"), "agent_devices", ["user_id"], unique=False)
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_api_keys_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_keys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_index(op.f("ix_api_keys_tenant_id"), "api_keys", ["tenant_id"], unique=False)
    op.create_index(op.f("ix_api_keys_user_id"), "api_keys", ["user_id"], unique=False)
    op.create_table(
        "inbound_routes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("number_id", sa.BigInteger(), nullable=False),
        sa.Column("schedule_id", sa.BigInteger(), nullable=True),
        sa.Column("open_dest_type", sa.String(length=16), nullable=False),
        sa.Column("open_dest_id", sa.BigInteger(), nullable=True),
        sa.Column("closed_dest_type", sa.String(length=16), nullable=True),
        sa.Column("closed_dest_id", sa.BigInteger(), nullable=True),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "closed_dest_type IS NULL OR closed_dest_type in ('agent', 'extension', 'queue', 'ivr', 'voicemail', 'announcement', 'hangup')",
            name=op.f("ck_inbound_routes_closed_dest_known"),
        ),
        sa.CheckConstraint(
            "open_dest_type in ('agent', 'extension', 'queue', 'ivr', 'voicemail', 'announcement', 'hangup')",
            name=op.f("ck_inbound_routes_open_dest_known"),
        ),
        sa.ForeignKeyConstraint(
            ["number_id"],
            ["phone_numbers.id"],
            name=op.f("fk_inbound_routes_number_id_phone_numbers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_inbound_routes_schedule_id_schedules"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_inbound_routes_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_routes")),
        sa.UniqueConstraint("number_id", name=op.f("uq_inbound_routes_number_id")),
    )
    op.create_index(
        op.f("ix_inbound_routes_tenant_id"), "inbound_routes", ["tenant_id"], unique=False
    )
    op.create_table(
        "ivr_menus",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("greeting_prompt_id", sa.BigInteger(), nullable=True),
        sa.Column("timeout_s", sa.Integer(), nullable=False),
        sa.Column("repeat_count", sa.Integer(), nullable=False),
        sa.Column("timeout_dest_type", sa.String(length=16), nullable=False),
        sa.Column("timeout_dest_id", sa.BigInteger(), nullable=True),
        sa.Column("invalid_dest_type", sa.String(length=16), nullable=False),
        sa.Column("invalid_dest_id", sa.BigInteger(), nullable=True),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "invalid_dest_type in ('agent', 'extension', 'queue', 'ivr', 'voicemail', 'announcement', 'hangup')",
            name=op.f("ck_ivr_menus_invalid_dest_known"),
        ),
        sa.CheckConstraint(
            "timeout_dest_type in ('agent', 'extension', 'queue', 'ivr', 'voicemail', 'announcement', 'hangup')",
            name=op.f("ck_ivr_menus_timeout_dest_known"),
        ),
        sa.CheckConstraint("repeat_count between 0 and 10", name=op.f("ck_ivr_menus_repeat_range")),
        sa.ForeignKeyConstraint(
            ["greeting_prompt_id"],
            ["prompts.id"],
            name=op.f("fk_ivr_menus_greeting_prompt_id_prompts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_ivr_menus_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ivr_menus")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_ivr_menus_tenant_id_name")),
    )
    op.create_index(op.f("ix_ivr_menus_tenant_id"), "ivr_menus", ["tenant_id"], unique=False)
    op.create_table(
        "outbound_routes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("trunk_id", sa.BigInteger(), nullable=False),
        sa.Column("caller_id_number_id", sa.BigInteger(), nullable=False),
        sa.Column("allowed_countries", sa.ARRAY(sa.String(length=2)), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["caller_id_number_id"],
            ["phone_numbers.id"],
            name=op.f("fk_outbound_routes_caller_id_number_id_phone_numbers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_outbound_routes_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["trunk_id"],
            ["trunks.id"],
            name=op.f("fk_outbound_routes_trunk_id_trunks"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_routes")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_outbound_routes_tenant_id_name")),
    )
    op.create_index(
        op.f("ix_outbound_routes_tenant_id"), "outbound_routes", ["tenant_id"], unique=False
    )
    op.create_table(
        "queue_members",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("queue_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("penalty", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("penalty >= 0", name=op.f("ck_queue_members_penalty_not_negative")),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queues.id"],
            name=op.f("fk_queue_members_queue_id_queues"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_queue_members_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_queue_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_members")),
        sa.UniqueConstraint("queue_id", "user_id", name=op.f("uq_queue_members_queue_id_user_id")),
    )
    op.create_index(op.f("ix_queue_members_queue_id"), "queue_members", ["queue_id"], unique=False)
    op.create_index(
        op.f("ix_queue_members_tenant_id"), "queue_members", ["tenant_id"], unique=False
    )
    op.create_index(op.f("ix_queue_members_user_id"), "queue_members", ["user_id"], unique=False)
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_refresh_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_tokens_token_hash")),
    )
    op.create_index(op.f("ix_refresh_tokens_user_id"), "refresh_tokens", ["user_id"], unique=False)
    op.create_table(
        "voicemail_boxes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("number", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("pin", sa.String(length=12), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("greeting_prompt_id", sa.BigInteger(), nullable=True),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["greeting_prompt_id"],
            ["prompts.id"],
            name=op.f("fk_voicemail_boxes_greeting_prompt_id_prompts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_voicemail_boxes_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voicemail_boxes")),
        sa.UniqueConstraint(
            "tenant_id", "number", name=op.f("uq_voicemail_boxes_tenant_id_number")
        ),
    )
    op.create_index(
        op.f("ix_voicemail_boxes_tenant_id"), "voicemail_boxes", ["tenant_id"], unique=False
    )
    op.create_table(
        "ivr_options",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("menu_id", sa.BigInteger(), nullable=False),
        sa.Column("digit", sa.String(length=1), nullable=False),
        sa.Column("dest_type", sa.String(length=16), nullable=False),
        sa.Column("dest_id", sa.BigInteger(), nullable=True),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "dest_type in ('agent', 'extension', 'queue', 'ivr', 'voicemail', 'announcement', 'hangup')",
            name=op.f("ck_ivr_options_dest_known"),
        ),
        sa.CheckConstraint("digit ~ '^[0-9*#]$'", name=op.f("ck_ivr_options_digit_alphabet")),
        sa.ForeignKeyConstraint(
            ["menu_id"],
            ["ivr_menus.id"],
            name=op.f("fk_ivr_options_menu_id_ivr_menus"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_ivr_options_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ivr_options")),
        sa.UniqueConstraint("menu_id", "digit", name=op.f("uq_ivr_options_menu_id_digit")),
    )
    op.create_index(op.f("ix_ivr_options_menu_id"), "ivr_options", ["menu_id"], unique=False)
    op.create_index(op.f("ix_ivr_options_tenant_id"), "ivr_options", ["tenant_id"], unique=False)
    op.add_column("tenants", sa.Column("ends_on", sa.Date(), nullable=True))
    op.add_column("tenants", sa.Column("version", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:

    op.drop_column("tenants", "version")
    op.drop_column("tenants", "ends_on")
    op.drop_index(op.f("ix_ivr_options_tenant_id"), table_name="ivr_options")
    op.drop_index(op.f("ix_ivr_options_menu_id"), table_name="ivr_options")
    op.drop_table("ivr_options")
    op.drop_index(op.f("ix_voicemail_boxes_tenant_id"), table_name="voicemail_boxes")
    op.drop_table("voicemail_boxes")
    op.drop_index(op.f("ix_refresh_tokens_user_id"), table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    op.drop_index(op.f("ix_queue_members_user_id"), table_name="queue_members")
    op.drop_index(op.f("ix_queue_members_tenant_id"), table_name="queue_members")
    op.drop_index(op.f("ix_queue_members_queue_id"), table_name="queue_members")
    op.drop_table("queue_members")
    op.drop_index(op.f("ix_outbound_routes_tenant_id"), table_name="outbound_routes")
    op.drop_table("outbound_routes")
    op.drop_index(op.f("ix_ivr_menus_tenant_id"), table_name="ivr_menus")
    op.drop_table("ivr_menus")
    op.drop_index(op.f("ix_inbound_routes_tenant_id"), table_name="inbound_routes")
    op.drop_table("inbound_routes")
    op.drop_index(op.f("ix_api_keys_user_id"), table_name="api_keys")
    op.drop_index(op.f("ix_api_keys_tenant_id"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index(op.f("ix_agent_devices_user_id"), table_name="agent_devices")
    op.drop_index(op.f("ix_agent_devices_tenant_id"), table_name="agent_devices")
    op.drop_table("agent_devices")
    op.drop_index(
        "uq_users_tenant_email",
        table_name="users",
        postgresql_where=sa.text("tenant_id IS NOT NULL"),
    )
    op.drop_index(
        "uq_users_operator_email", table_name="users", postgresql_where=sa.text("tenant_id IS NULL")
    )
    op.drop_index(op.f("ix_users_tenant_id"), table_name="users")
    op.drop_table("users")
    op.drop_index(op.f("ix_schedules_tenant_id"), table_name="schedules")
    op.drop_table("schedules")
    op.drop_index(op.f("ix_queues_tenant_id"), table_name="queues")
    op.drop_table("queues")
    op.drop_index(op.f("ix_prompts_tenant_id"), table_name="prompts")
    op.drop_table("prompts")
    op.drop_index(op.f("ix_phone_numbers_tenant_id"), table_name="phone_numbers")
    op.drop_index("ix_phone_numbers_available", table_name="phone_numbers")
    op.drop_table("phone_numbers")
    op.drop_table("trunks")
    op.drop_index("ix_login_attempts_email_at", table_name="login_attempts")
    op.drop_index("ix_login_attempts_address_at", table_name="login_attempts")
    op.drop_table("login_attempts")
    op.drop_index("ix_audit_log_tenant_at", table_name="audit_log")
    op.drop_index("ix_audit_log_object", table_name="audit_log")
    op.drop_table("audit_log")
