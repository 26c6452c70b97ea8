"""the web console: web sessions, a user's language, a tenant's licence ceiling

Revision ID: 0013_console
Revises: 0012_agent_state_enter
Create Date: 2026-12-03

A console login is a row of ``web_sessions``: the browser holds its random token in an
HttpOnly cookie, only the token's SHA-256 is stored, and logging out revokes the row (a JWT in
a cookie could not be taken back). It carries the user's ``token_epoch`` like every other
credential, so a password reset or a role change ends it at once.

``users.locale`` is the console language a user chose (NULL: the browser's Accept-Language).
``tenants.licence_ceiling`` is the most licences a tenant's admin may hold, set by the
operator (NULL: no ceiling of the operator's, only the schema's 100,000).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_console"
down_revision: str | None = "0012_agent_state_enter"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("locale", sa.String(length=5), nullable=True))
    op.create_check_constraint(op.f("ck_users_locale_known"), "users", "locale in ('en', 'fr')")
    op.add_column("tenants", sa.Column("licence_ceiling", sa.Integer(), nullable=True))
    op.create_check_constraint(
        op.f("ck_tenants_licence_ceiling_not_negative"), "tenants", "licence_ceiling >= 0"
    )
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_epoch", sa.Integer(), nullable=False),
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
            name=op.f("fk_web_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    op.create_index(op.f("ix_web_sessions_user_id"), "web_sessions", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_web_sessions_user_id"), table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_constraint(op.f("ck_tenants_licence_ceiling_not_negative"), "tenants")
    op.drop_column("tenants", "licence_ceiling")
    op.drop_constraint(op.f("ck_users_locale_known"), "users")
    op.drop_column("users", "locale")
