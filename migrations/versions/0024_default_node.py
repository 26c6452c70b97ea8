"""default node: one function says which node a tenant without a placement lives on

Revision ID: 0024_default_node
Revises: 0023_agent_login
Create Date: 2026-12-04 23:30:00+00:00

A tenant lives on its placement's node or, without one, on the default node: the active node
with the lowest id (graam_pbx/cluster/placement.py says why and when tenants are pinned). That
rule was written out wherever a node is chosen: the placement code, the snapshot's nodes, the
login's node check (0023's ``agent_login``), the SIP edge's routes (0021) and each node's SIP
views (0022). It is now ``graam_default_node()``, and each of those asks it.

The function runs with its owner's rights (``SECURITY DEFINER``, a fixed search_path): the
roles of Asterisk and of the SIP edge read views only, never ``asterisk_nodes`` (it holds the
AMI secrets). Every view calls it as an uncorrelated scalar subquery, computed once per
statement; a lookup by id still reaches its unique index.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0024_default_node"
down_revision: str | None = "0023_agent_login"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
create function graam_default_node() returns bigint
language sql stable security definer
set search_path = pg_catalog, public
as $$ select min(id) from public.asterisk_nodes where state = 'active' $$
"""
COMMENT = """
comment on function graam_default_node() is
'The node a tenant without a placement lives on: the active node with the lowest id '
'(graam_pbx/cluster/placement.py)'
"""
DEFAULT = "(select graam_default_node())"


def _revision(name: str) -> ModuleType:
    """An earlier revision of this folder, whose view texts this one rewrites (and restores)."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"graam_revision_{name}", path)
    assert spec is not None and spec.loader is not None  # noqa: S101 - a file of this folder
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _views(through_function: bool) -> list[str]:
    """What names the default node: the views of 0021 and 0022 and 0023's ``agent_login``,
    as those revisions made them, or asking the function."""
    edge, nodes, login = (
        _revision(name) for name in ("0021_kamailio", "0022_node_views", "0023_agent_login")
    )
    replaced = [
        text.replace("create view", "create or replace view", 1)
        for text in (edge.ROUTES_VIEW, edge.DEFAULT_NODE_VIEW)
    ]
    function = login.FUNCTION.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    made = [*nodes._views(narrowed=True), *replaced, function]
    if not through_function:
        return made
    asking = [
        *(view.replace(nodes._DEFAULT, DEFAULT) for view in nodes._views(narrowed=True)),
        replaced[0].replace(edge.DEFAULT_NODE, DEFAULT),
        "create or replace view kamailio_default_node as\n"
        "select graam_default_node()::integer as node_set",
        function.replace(login.DEFAULT_NODE, DEFAULT),
    ]
    for text, before in zip(asking, made, strict=True):
        assert text != before, f"the default node's rule not found in: {before[:80]}"  # noqa: S101
    return asking


def upgrade() -> None:
    op.execute(FUNCTION)
    op.execute(COMMENT)
    for text in _views(through_function=True):
        op.execute(text)


def downgrade() -> None:
    for text in _views(through_function=False):
        op.execute(text)
    op.execute("drop function graam_default_node()")
