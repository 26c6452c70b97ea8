"""node views: each Asterisk node reads from the realtime SIP views only the devices of the tenants it holds

Revision ID: 0022_node_views
Revises: 0021_kamailio
Create Date: 2026-12-04 19:30:00+00:00

An Asterisk node learns every endpoint and AOR its views list (PJSIP synchronizes them all at
its start and for each AOR new to it, with costs that grow with the square of their number:
docs/realtime-sip.md). A node needs only the devices of the tenants it holds: those living on
it and those it stands by for, exactly the tenants whose files it gets. So the views list
those when the connection names its node with the setting ``graam.node`` (the node's
``systemname``, sent by libpq from PGOPTIONS like ``graam.media_address``).

A tenant lives on its placement's node, or, without one, on the default node (the active node
with the lowest id: graam_pbx/cluster/placement.py). A connection that names no node, or a
node the table does not have, sees every device, as before nodes: one Asterisk with no node
setting keeps working, and a misnamed node fails open rather than refusing every phone.

The node and the default node are uncorrelated subqueries (computed once per statement);
there is no CTE, so a lookup of one id still reaches agent_devices' unique index.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0022_node_views"
down_revision: str | None = "0021_kamailio"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _realtime_sip() -> ModuleType:
    """The 0019 revision, whose view texts this one narrows (and restores on downgrade)."""
    path = Path(__file__).with_name("0019_realtime_sip.py")
    spec = importlib.util.spec_from_file_location("graam_revision_0019_realtime_sip", path)
    assert spec is not None and spec.loader is not None  # noqa: S101 - a file of this folder
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_HERE = (
    "(SELECT n.id FROM asterisk_nodes n WHERE n.systemname = current_setting('graam.node', true))"
)
_DEFAULT = "(SELECT n.id FROM asterisk_nodes n WHERE n.state = 'active' ORDER BY n.id LIMIT 1)"

_JOINS = """
    FROM agent_devices d
    JOIN tenants t ON t.id = d.tenant_id AND t.status <> 'terminated'
    LEFT JOIN tenant_placements p ON p.tenant_id = d.tenant_id
"""

_HELD = f"""WHERE {_HERE} IS NULL
   OR {_HERE} IN (p.node_id, p.standby_node_id)
   OR (p.tenant_id IS NULL AND {_HERE} = {_DEFAULT})
"""


def _views(narrowed: bool) -> list[str]:
    prior = _realtime_sip()
    texts = [prior.ENDPOINTS, prior.AUTHS, prior.AORS]
    views = [text.replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1) for text in texts]
    if not narrowed:
        return views
    return [view.replace(prior._DEVICES, _JOINS).rstrip() + "\n" + _HELD for view in views]


def upgrade() -> None:
    for view in _views(narrowed=True):
        op.execute(view)


def downgrade() -> None:
    for view in _views(narrowed=False):
        op.execute(view)
