"""billing: prices, rate decks, holdings, rated calls, invoices, payments, disputes

Revision ID: 0017_billing
Revises: 0016_support
Create Date: 2026-12-04

Billing's tables (graam_pbx/billing/models.py). ``billing_holdings`` is the history of what
each tenant held (numbers, users, licence counts), written by triggers on ``phone_numbers``,
``users`` and ``tenants`` so that no code path can forget it; it starts with what is held
now. A number may now be ``ported_out``: gone to another operator, held by no one, never
sold again. The legal interest rates of 2024 and 2025 (arrêtés of the Ministry of the
Economy, published each semester) are loaded; the operator adds the next ones.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017_billing"
down_revision: str | None = "0016_support"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "billing_holdings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("item", sa.String(length=16), nullable=False),
        sa.Column("ref_id", sa.BigInteger(), nullable=True),
        sa.Column("label", sa.String(length=254), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("number_type", sa.String(length=16), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("held_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("held_until", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "item in ('number', 'user', 'licences')", name=op.f("ck_billing_holdings_item_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_holdings")),
    )
    op.create_index(
        "ix_billing_holdings_open",
        "billing_holdings",
        ["item", "ref_id"],
        unique=False,
        postgresql_where="held_until IS NULL",
    )
    op.create_index(
        "ix_billing_holdings_tenant_item_from",
        "billing_holdings",
        ["tenant_id", "item", "held_from"],
        unique=False,
    )
    op.create_table(
        "billing_plans",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
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
        sa.CheckConstraint(
            "code ~ '^[a-z0-9][a-z0-9_-]{0,63}$'", name=op.f("ck_billing_plans_code_alphabet")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_billing_plans")),
    )
    op.create_table(
        "cdr_archives",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column(
            "archived_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("month", name=op.f("pk_cdr_archives")),
    )
    op.create_table(
        "invoice_counters",
        sa.Column("series", sa.String(length=16), nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("series", name=op.f("pk_invoice_counters")),
    )
    op.create_table(
        "legal_interest_rates",
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("professional_rate", sa.Numeric(precision=6, scale=3), nullable=False),
        sa.Column("individual_rate", sa.Numeric(precision=6, scale=3), nullable=False),
        sa.CheckConstraint(
            "extract(day from starts_on) = 1 AND extract(month from starts_on) in (1, 7)",
            name=op.f("ck_legal_interest_rates_half_year_start"),
        ),
        sa.PrimaryKeyConstraint("starts_on", name=op.f("pk_legal_interest_rates")),
    )
    op.create_table(
        "rated_calls",
        sa.Column("cdr_id", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("to_number", sa.String(length=32), nullable=False),
        sa.Column("origin_country", sa.String(length=2), nullable=False),
        sa.Column("destination_country", sa.String(length=2), nullable=False),
        sa.Column("number_type", sa.String(length=16), nullable=False),
        sa.Column("billsec", sa.Numeric(precision=14, scale=6), nullable=False),
        sa.Column("billed_seconds", sa.Integer(), nullable=False),
        sa.Column("deck_id", sa.BigInteger(), nullable=True),
        sa.Column("prefix", sa.String(length=15), nullable=True),
        sa.Column("price_per_minute", sa.Numeric(precision=14, scale=6), nullable=True),
        sa.Column("connect_fee", sa.Numeric(precision=14, scale=6), nullable=True),
        sa.Column("amount", sa.Numeric(precision=14, scale=6), nullable=True),
        sa.Column(
            "rated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("invoice_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("cdr_id", name=op.f("pk_rated_calls")),
    )
    op.create_index(
        "ix_rated_calls_tenant_period", "rated_calls", ["tenant_id", "period"], unique=False
    )
    op.create_index(
        "ix_rated_calls_unrated",
        "rated_calls",
        ["period"],
        unique=False,
        postgresql_where="amount IS NULL",
    )
    op.create_table(
        "billing_accounts",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("legal_name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("siren", sa.String(length=9), nullable=True),
        sa.Column("vat_number", sa.String(length=20), nullable=True),
        sa.Column("tax_status", sa.String(length=16), nullable=False),
        sa.Column("billing_email", sa.String(length=254), nullable=False),
        sa.Column("locale", sa.String(length=2), nullable=False),
        sa.Column("subscribed_on", sa.Date(), nullable=False),
        sa.Column("grace_days", sa.Integer(), nullable=False),
        sa.Column("notice_given_on", sa.Date(), nullable=True),
        sa.Column("terminates_on", sa.Date(), nullable=True),
        sa.Column("suspended_for_payment_at", sa.DateTime(timezone=True), nullable=True),
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
        sa.CheckConstraint("locale in ('fr', 'en')", name=op.f("ck_billing_accounts_locale_known")),
        sa.CheckConstraint(
            "siren IS NULL OR siren ~ '^[0-9]{9}$'", name=op.f("ck_billing_accounts_siren_format")
        ),
        sa.CheckConstraint(
            "tax_status in ('fr', 'eu_business', 'outside_eu')",
            name=op.f("ck_billing_accounts_tax_status_known"),
        ),
        sa.CheckConstraint("grace_days >= 0", name=op.f("ck_billing_accounts_grace_not_negative")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_billing_accounts_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_billing_accounts")),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("credits_invoice_id", sa.BigInteger(), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("locale", sa.String(length=2), nullable=False),
        sa.Column("tax_status", sa.String(length=16), nullable=False),
        sa.Column("vat_rate", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("net_total", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("vat_total", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("total", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("seller", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("buyer", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("paid_amount", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=True),
        sa.Column("unrated_calls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("emailed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(kind = 'credit_note') = (credits_invoice_id IS NOT NULL)",
            name=op.f("ck_invoices_credit"),
        ),
        sa.CheckConstraint(
            "kind in ('invoice', 'credit_note')", name=op.f("ck_invoices_kind_known")
        ),
        sa.CheckConstraint(
            "tax_status in ('fr', 'eu_business', 'outside_eu')",
            name=op.f("ck_invoices_tax_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["credits_invoice_id"],
            ["invoices.id"],
            name=op.f("fk_invoices_credits_invoice_id_invoices"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_invoices_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("number", name=op.f("uq_invoices_number")),
    )
    op.create_index(op.f("ix_invoices_tenant_id"), "invoices", ["tenant_id"], unique=False)
    op.create_index(
        "uq_invoices_tenant_period",
        "invoices",
        ["tenant_id", "period_start"],
        unique=True,
        postgresql_where="kind = 'invoice'",
    )
    op.create_index(
        "uq_invoices_credits_invoice_id",
        "invoices",
        ["credits_invoice_id"],
        unique=True,
        postgresql_where="credits_invoice_id IS NOT NULL",
    )
    op.create_table(
        "dunning_steps",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("invoice_id", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("emailed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "step in ('overdue', 'suspended', 'reactivated')",
            name=op.f("ck_dunning_steps_step_known"),
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_dunning_steps_invoice_id_invoices"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dunning_steps")),
    )
    op.create_index(
        op.f("ix_dunning_steps_tenant_id"), "dunning_steps", ["tenant_id"], unique=False
    )
    op.create_index("uq_dunning_steps_once", "dunning_steps", ["invoice_id", "step"], unique=True)
    op.create_table(
        "invoice_disputes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("invoice_id", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.String(length=254), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state in ('open', 'rejected', 'accepted')",
            name=op.f("ck_invoice_disputes_state_known"),
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_invoice_disputes_invoice_id_invoices"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_disputes")),
    )
    op.create_index(
        op.f("ix_invoice_disputes_invoice_id"), "invoice_disputes", ["invoice_id"], unique=False
    )
    op.create_index(
        "uq_invoice_disputes_open",
        "invoice_disputes",
        ["invoice_id"],
        unique=True,
        postgresql_where="state = 'open'",
    )
    op.create_table(
        "invoice_documents",
        sa.Column("invoice_id", sa.BigInteger(), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_invoice_documents_invoice_id_invoices"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("invoice_id", "format", name=op.f("pk_invoice_documents")),
    )
    op.create_table(
        "invoice_lines",
        sa.Column("invoice_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=300), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=14, scale=6), nullable=True),
        sa.Column("exact_amount", sa.Numeric(precision=18, scale=6), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("number_type", sa.String(length=16), nullable=True),
        sa.Column("calls", sa.Integer(), nullable=True),
        sa.Column("billed_seconds", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "kind in ('plan', 'number', 'user', 'licence', 'calls', 'unrated', 'credit')",
            name=op.f("ck_invoice_lines_kind_known"),
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_invoice_lines_invoice_id_invoices"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("invoice_id", "position", name=op.f("pk_invoice_lines")),
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("invoice_id", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("recorded_by", sa.String(length=254), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payments_amount_positive")),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_payments_invoice_id_invoices"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
    )
    op.create_index(op.f("ix_payments_invoice_id"), "payments", ["invoice_id"], unique=False)
    op.create_index(op.f("ix_payments_tenant_id"), "payments", ["tenant_id"], unique=False)
    op.create_table(
        "port_out_requests",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("phone_number_id", sa.BigInteger(), nullable=False),
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(length=254), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "state in ('requested', 'accepted', 'completed', 'rejected', 'cancelled')",
            name=op.f("ck_port_out_requests_state_known"),
        ),
        sa.ForeignKeyConstraint(
            ["phone_number_id"],
            ["phone_numbers.id"],
            name=op.f("fk_port_out_requests_phone_number_id_phone_numbers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_port_out_requests_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_port_out_requests")),
    )
    op.create_index(
        op.f("ix_port_out_requests_tenant_id"), "port_out_requests", ["tenant_id"], unique=False
    )
    op.create_index(
        "uq_port_out_requests_pending",
        "port_out_requests",
        ["phone_number_id"],
        unique=True,
        postgresql_where="state in ('requested', 'accepted')",
    )
    op.create_table(
        "billing_prices",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("item", sa.String(length=16), nullable=False),
        sa.Column("plan_code", sa.String(length=64), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("number_type", sa.String(length=16), nullable=True),
        sa.Column("amount", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column(
            "published_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_by", sa.String(length=254), nullable=False),
        sa.Column("notice_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "(item = 'number') = (country IS NOT NULL AND number_type IS NOT NULL)",
            name=op.f("ck_billing_prices_number_has_country_and_type"),
        ),
        sa.CheckConstraint(
            "item <> 'plan' OR plan_code IS NOT NULL",
            name=op.f("ck_billing_prices_plan_price_names_plan"),
        ),
        sa.CheckConstraint(
            "item in ('plan', 'number', 'user', 'licence')",
            name=op.f("ck_billing_prices_item_known"),
        ),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_billing_prices_amount_not_negative")),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["notices.id"],
            name=op.f("fk_billing_prices_notice_id_notices"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["plan_code"],
            ["billing_plans.code"],
            name=op.f("fk_billing_prices_plan_code_billing_plans"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_prices")),
        sa.UniqueConstraint(
            "item",
            "plan_code",
            "country",
            "number_type",
            "effective_on",
            name="uq_billing_prices_item_effective",
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_table(
        "rate_decks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("activates_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "published_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_by", sa.String(length=254), nullable=False),
        sa.Column("rates_count", sa.Integer(), nullable=False),
        sa.Column("notice_id", sa.BigInteger(), nullable=True),
        sa.Column("corrected_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["notices.id"],
            name=op.f("fk_rate_decks_notice_id_notices"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_decks")),
        sa.UniqueConstraint("activates_at", name=op.f("uq_rate_decks_activates_at")),
    )
    op.create_table(
        "rates",
        sa.Column("deck_id", sa.BigInteger(), nullable=False),
        sa.Column("prefix", sa.String(length=15), nullable=False),
        sa.Column("origin_country", sa.String(length=2), nullable=False),
        sa.Column("number_type", sa.String(length=16), nullable=False),
        sa.Column("destination_country", sa.String(length=2), nullable=False),
        sa.Column("price_per_minute", sa.Numeric(precision=14, scale=6), nullable=False),
        sa.Column("connect_fee", sa.Numeric(precision=14, scale=6), nullable=False),
        sa.CheckConstraint("prefix ~ '^[0-9]{1,15}$'", name=op.f("ck_rates_prefix_digits")),
        sa.CheckConstraint("connect_fee >= 0", name=op.f("ck_rates_fee_not_negative")),
        sa.CheckConstraint("price_per_minute >= 0", name=op.f("ck_rates_price_not_negative")),
        sa.ForeignKeyConstraint(
            ["deck_id"],
            ["rate_decks.id"],
            name=op.f("fk_rates_deck_id_rate_decks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "deck_id", "prefix", "origin_country", "number_type", name=op.f("pk_rates")
        ),
    )

    op.drop_constraint(op.f("ck_phone_numbers_status_known"), "phone_numbers", type_="check")
    op.drop_constraint(op.f("ck_phone_numbers_held_iff_not_free"), "phone_numbers", type_="check")
    op.create_check_constraint(
        op.f("ck_phone_numbers_status_known"),
        "phone_numbers",
        "status in ('available', 'assigned', 'port_out', 'ported_out')",
    )
    op.create_check_constraint(
        op.f("ck_phone_numbers_held_iff_not_free"),
        "phone_numbers",
        "(status in ('available', 'ported_out')) = (tenant_id IS NULL)",
    )
    for statement in HOLDING_TRIGGERS:
        op.execute(statement)
    for statement in BACKFILL.split(";\n"):
        if statement.strip():
            op.execute(statement)
    op.execute("INSERT INTO billing_plans (code, name) VALUES ('standard', 'Standard')")
    op.execute(
        "INSERT INTO legal_interest_rates (starts_on, professional_rate, individual_rate) VALUES"
        " ('2024-01-01', 5.07, 8.01), ('2024-07-01', 4.92, 8.16),"
        " ('2025-01-01', 3.71, 7.21), ('2025-07-01', 2.76, 6.65)"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER billing_hold_licences ON tenants")
    op.execute("DROP TRIGGER billing_hold_user ON users")
    op.execute("DROP TRIGGER billing_hold_number ON phone_numbers")
    op.execute("DROP FUNCTION billing_hold_licences()")
    op.execute("DROP FUNCTION billing_hold_user()")
    op.execute("DROP FUNCTION billing_hold_number()")
    op.execute("UPDATE phone_numbers SET status = 'port_out' WHERE status = 'ported_out'")
    op.drop_constraint(op.f("ck_phone_numbers_held_iff_not_free"), "phone_numbers", type_="check")
    op.drop_constraint(op.f("ck_phone_numbers_status_known"), "phone_numbers", type_="check")
    op.create_check_constraint(
        op.f("ck_phone_numbers_status_known"),
        "phone_numbers",
        "status in ('available', 'assigned', 'port_out')",
    )
    op.create_check_constraint(
        op.f("ck_phone_numbers_held_iff_not_free"),
        "phone_numbers",
        "(status = 'available') = (tenant_id IS NULL)",
    )
    op.drop_table("rates")
    op.drop_table("rate_decks")
    op.drop_table("billing_prices")
    op.drop_index(
        "uq_port_out_requests_pending",
        table_name="port_out_requests",
        postgresql_where="state in ('requested', 'accepted')",
    )
    op.drop_index(op.f("ix_port_out_requests_tenant_id"), table_name="port_out_requests")
    op.drop_table("port_out_requests")
    op.drop_index(op.f("ix_payments_tenant_id"), table_name="payments")
    op.drop_index(op.f("ix_payments_invoice_id"), table_name="payments")
    op.drop_table("payments")
    op.drop_table("invoice_lines")
    op.drop_table("invoice_documents")
    op.drop_index(
        "uq_invoice_disputes_open", table_name="invoice_disputes", postgresql_where="state = 'open'"
    )
    op.drop_index(op.f("ix_invoice_disputes_invoice_id"), table_name="invoice_disputes")
    op.drop_table("invoice_disputes")
    op.drop_index("uq_dunning_steps_once", table_name="dunning_steps")
    op.drop_index(op.f("ix_dunning_steps_tenant_id"), table_name="dunning_steps")
    op.drop_table("dunning_steps")
    op.drop_index(
        "uq_invoices_tenant_period", table_name="invoices", postgresql_where="kind = 'invoice'"
    )
    op.drop_index(op.f("ix_invoices_tenant_id"), table_name="invoices")
    op.drop_table("invoices")
    op.drop_table("billing_accounts")
    op.drop_index(
        "ix_rated_calls_unrated", table_name="rated_calls", postgresql_where="amount IS NULL"
    )
    op.drop_index("ix_rated_calls_tenant_period", table_name="rated_calls")
    op.drop_table("rated_calls")
    op.drop_table("legal_interest_rates")
    op.drop_table("invoice_counters")
    op.drop_table("cdr_archives")
    op.drop_table("billing_plans")
    op.drop_index("ix_billing_holdings_tenant_item_from", table_name="billing_holdings")
    op.drop_index(
        "ix_billing_holdings_open",
        table_name="billing_holdings",
        postgresql_where="held_until IS NULL",
    )
    op.drop_table("billing_holdings")


# Each change of who holds a number, of a user's standing, or of a licence count closes the
# open holding and opens the new one, in the same transaction as the change.
HOLDING_TRIGGERS = (
    """
    CREATE FUNCTION billing_hold_number() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP <> 'INSERT' AND OLD.tenant_id IS NOT NULL
         AND (TG_OP = 'DELETE' OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id) THEN
        UPDATE billing_holdings SET held_until = now()
         WHERE item = 'number' AND ref_id = OLD.id AND held_until IS NULL;
      END IF;
      IF TG_OP <> 'DELETE' AND NEW.tenant_id IS NOT NULL
         AND (TG_OP = 'INSERT' OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id) THEN
        INSERT INTO billing_holdings
          (tenant_id, item, ref_id, label, country, number_type, quantity, held_from)
        VALUES (NEW.tenant_id, 'number', NEW.id, NEW.e164, NEW.country, NEW.number_type, 1,
                now());
      END IF;
      RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER billing_hold_number
    AFTER INSERT OR UPDATE OF tenant_id OR DELETE ON phone_numbers
    FOR EACH ROW EXECUTE FUNCTION billing_hold_number()
    """,
    """
    CREATE FUNCTION billing_hold_user() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      was boolean := TG_OP <> 'INSERT' AND OLD.tenant_id IS NOT NULL AND NOT OLD.disabled;
      now_held boolean := TG_OP <> 'DELETE' AND NEW.tenant_id IS NOT NULL AND NOT NEW.disabled;
    BEGIN
      IF was AND (NOT now_held OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id) THEN
        UPDATE billing_holdings SET held_until = now()
         WHERE item = 'user' AND ref_id = OLD.id AND held_until IS NULL;
      END IF;
      IF now_held AND (NOT was OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id) THEN
        INSERT INTO billing_holdings (tenant_id, item, ref_id, label, quantity, held_from)
        VALUES (NEW.tenant_id, 'user', NEW.id, NEW.email, 1, now());
      END IF;
      RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER billing_hold_user
    AFTER INSERT OR UPDATE OF tenant_id, disabled OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION billing_hold_user()
    """,
    """
    CREATE FUNCTION billing_hold_licences() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'UPDATE' AND NEW.licences IS NOT DISTINCT FROM OLD.licences THEN
        RETURN NULL;
      END IF;
      UPDATE billing_holdings SET held_until = now()
       WHERE item = 'licences' AND tenant_id = NEW.id AND held_until IS NULL;
      INSERT INTO billing_holdings (tenant_id, item, quantity, held_from)
      VALUES (NEW.id, 'licences', NEW.licences, now());
      RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER billing_hold_licences
    AFTER INSERT OR UPDATE OF licences ON tenants
    FOR EACH ROW EXECUTE FUNCTION billing_hold_licences()
    """,
)

BACKFILL = """
INSERT INTO billing_holdings (tenant_id, item, ref_id, label, country, number_type, quantity,
                              held_from)
SELECT tenant_id, 'number', id, e164, country, number_type, 1, coalesce(assigned_at, now())
  FROM phone_numbers WHERE tenant_id IS NOT NULL;
INSERT INTO billing_holdings (tenant_id, item, ref_id, label, quantity, held_from)
SELECT tenant_id, 'user', id, email, 1, created_at
  FROM users WHERE tenant_id IS NOT NULL AND NOT disabled;
INSERT INTO billing_holdings (tenant_id, item, quantity, held_from)
SELECT id, 'licences', licences, created_at FROM tenants;
"""
