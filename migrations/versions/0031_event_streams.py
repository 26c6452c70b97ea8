"""event streams: a tenant's connected streams keep its events stored, and wake on each

Revision ID: 0031_event_streams
Revises: 0030_click_to_call
Create Date: 2026-12-06 04:00:00+00:00

``event_streams``: one row per tenant whose events are streamed (``GET /api/v1/events/stream``),
a lease the API processes serving its streams renew while one is connected (``expires_at``);
``since``: when the tenant's streaming began (the lease unbroken since). While the lease runs,
the tenant's events are stored whatever its endpoints subscribe to, exactly as for an enabled
endpoint subscribed to every type: the triggers' check (and the control plane's recorders')
honours it. When nobody subscribes and nobody streams, the triggers still leave after one look
at two small tables (the CDR insert path).

``webhook_fan_out`` now notifies ``graam_webhooks`` whenever a statement stored events, not
only when it made deliveries: the streams wake on it.

A new API area, ``events``: existing API keys are not scoped to it.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0031_event_streams"
down_revision: str | None = "0030_click_to_call"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Whether a tenant's events are streamed now; whether anyone's are.
STREAMED = (
    "EXISTS (SELECT 1 FROM event_streams s WHERE s.tenant_id = {tenant} AND s.expires_at > now())"
)
NONE_STREAMED = "NOT EXISTS (SELECT 1 FROM event_streams WHERE expires_at > now())"
# The tenant and type each of 0029's functions checks, and whether it first leaves early when
# no endpoint of any tenant subscribes (the statement-level ones).
CHECKED = (
    ("c.tenant_id", "'call.ended'", True),
    ("i.tenant_id", "'agent.state_changed'", True),
    ("NEW.tenant_id", "'campaign.finished'", False),
)
NOTIFY_WHEN = ("IF FOUND THEN", "IF EXISTS (SELECT 1 FROM new_events) THEN")


def _revision(name: str) -> ModuleType:
    """An earlier revision of this folder, whose functions this one extends."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"graam_revision_{name}", path)
    assert spec is not None and spec.loader is not None  # noqa: S101 - a file of this folder
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _replaced(functions: Sequence[str]) -> list[str]:
    """0029's functions, as replacements of themselves."""
    return [f.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1) for f in functions]


def _streaming_functions(webhooks: ModuleType) -> list[str]:
    """0029's functions with the streams' lease honoured and every stored event notified."""
    changes = [NOTIFY_WHEN]
    for tenant, kind, leaves_early in CHECKED:
        subscribed = webhooks.SUBSCRIBED.format(tenant=tenant, type=kind)
        changes.append((subscribed, f"({subscribed} OR {STREAMED.format(tenant=tenant)})"))
        if leaves_early:
            unsubscribed = webhooks.ANY_SUBSCRIBED.format(type=kind)
            changes.append((unsubscribed, f"{unsubscribed} AND {NONE_STREAMED}"))
    functions = _replaced(webhooks.FUNCTIONS)
    for old, new in changes:
        found = sum(function.count(old) for function in functions)
        assert found == 1, f"not found once in 0029's functions: {old}"  # noqa: S101
        functions = [function.replace(old, new) for function in functions]
    return functions


def upgrade() -> None:
    op.create_table(
        "event_streams",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "since", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_event_streams_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_event_streams")),
    )
    for function in _streaming_functions(_revision("0029_webhooks")):
        op.execute(function)


def downgrade() -> None:
    for function in _replaced(_revision("0029_webhooks").FUNCTIONS):
        op.execute(function)
    op.drop_table("event_streams")
