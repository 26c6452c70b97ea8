"""agent sessions logged in from the web console: source 'web'

Revision ID: 0014_agent_web_source
Revises: 0013_console
Create Date: 2026-12-03

An agent logging in from the console's "My day" page is recorded with ``source = 'web'``
(beside ``api`` and ``phone``), so reports tell the three apart. Going down, such sessions
become ``api`` ones: the console calls the same service as the API.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014_agent_web_source"
down_revision: str | None = "0013_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("ck_agent_sessions_source_known"), "agent_sessions")
    op.create_check_constraint(
        op.f("ck_agent_sessions_source_known"),
        "agent_sessions",
        "source in ('api', 'phone', 'web')",
    )


def downgrade() -> None:
    op.execute("UPDATE agent_sessions SET source = 'api' WHERE source = 'web'")
    op.drop_constraint(op.f("ck_agent_sessions_source_known"), "agent_sessions")
    op.create_check_constraint(
        op.f("ck_agent_sessions_source_known"), "agent_sessions", "source in ('api', 'phone')"
    )
