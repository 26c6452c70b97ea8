"""Where each tenant lives: its placement, else the default node.

The default node is the active node with the lowest id. So that no tenant ever moves
without an operator asking, the tenants living on the default node only by default are
pinned to it (given a placement of their own) whenever the default node would change: when
it is drained, marked down, or a lower node comes back to active.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.cluster.models import AsteriskNode, NodeState, TenantPlacement
from graam_pbx.errors import Conflict
from graam_pbx.tenants import service as tenants_service
from graam_pbx.tenants.models import Tenant

# The id of the default node, as the database decides it (one rule for every reader).
DEFAULT_NODE_ID = select(func.graam_default_node()).scalar_subquery()
# The node a tenant lives on: its placement's, else the default node (null: neither), over
# ``tenants`` outer-joined to ``tenant_placements`` (``_with_homes``).
_home_node_id: ColumnElement[int] = func.coalesce(TenantPlacement.node_id, DEFAULT_NODE_ID)


class NoActiveNode(Conflict):
    """No node can take the tenant: none is active."""

    error_id = "no-active-node"


class TenantOnOtherNode(Conflict):
    """An action for a tenant arrived through a node the tenant does not live on."""

    error_id = "tenant-on-other-node"


@dataclass(frozen=True)
class Placement:
    """Where a tenant lives, and whether by a placement of its own or by default."""

    tenant_id: int
    node: AsteriskNode
    standby: AsteriskNode | None
    row: TenantPlacement | None


async def default_node(session: AsyncSession) -> AsteriskNode | None:
    """The active node with the lowest id: home of the tenants without a placement. The rule
    is the database's ``graam_default_node()`` (migration 0024), which the SIP views, the
    edge's routes and ``agent_login`` ask too."""
    return await session.scalar(select(AsteriskNode).where(AsteriskNode.id == DEFAULT_NODE_ID))


async def placement_of(session: AsyncSession, tenant_id: int) -> Placement:
    """Where ``tenant_id`` lives (NoActiveNode when it has no placement and no node is active)."""
    row = await session.get(TenantPlacement, tenant_id)
    if row is not None:
        # A foreign key with ON DELETE RESTRICT: the node exists.
        node = await session.get_one(AsteriskNode, row.node_id)
        standby = (
            await session.get(AsteriskNode, row.standby_node_id)
            if row.standby_node_id is not None
            else None
        )
        return Placement(tenant_id, node, standby, row)
    default = await default_node(session)
    if default is None:
        raise NoActiveNode(f"tenant {tenant_id} has no placement and no node is active")
    return Placement(tenant_id, default, None, None)


async def node_of_tenant(session: AsyncSession, tenant_id: int) -> AsteriskNode:
    """The node ``tenant_id`` lives on."""
    return (await placement_of(session, tenant_id)).node


def _with_homes(*columns: Any) -> Select[Any]:
    """``columns`` over every tenant joined to its placement, if any (for _home_node_id)."""
    return (
        select(*columns)
        .select_from(Tenant)
        .outerjoin(TenantPlacement, TenantPlacement.tenant_id == Tenant.id)
    )


async def tenants_of_node(session: AsyncSession, node_id: int) -> list[int]:
    """The tenants living on ``node_id``: placed there, and, on the default node, every
    tenant without a placement."""
    living = _with_homes(Tenant.id).where(_home_node_id == node_id).order_by(Tenant.id)
    return list((await session.scalars(living)).all())


async def homes_of_tenants(
    session: AsyncSession, tenant_ids: Collection[int] | None
) -> dict[int, int]:
    """The node each of these tenants (None: every tenant) lives on, by tenant id: its
    placement's, else the default node's. A tenant without either (no placement, no active
    node) is absent, as is an id that names no tenant. One statement, whatever the count."""
    statement = _with_homes(Tenant.id, _home_node_id)
    if tenant_ids is not None:
        statement = statement.where(Tenant.id.in_(list(tenant_ids)))
    rows = await session.execute(statement)
    return {int(tenant): int(node) for tenant, node in rows.all() if node is not None}


async def tenant_counts(session: AsyncSession) -> dict[int, int]:
    """Tenants living on each node, by node id (a node with none is absent)."""
    rows = await session.execute(
        _with_homes(_home_node_id, func.count())
        .where(_home_node_id.is_not(None))
        .group_by(_home_node_id)
    )
    return {int(node_id): int(count) for node_id, count in rows.all()}


async def pin_default_tenants(session: AsyncSession, node_id: int) -> int:
    """Give every tenant without a placement one on ``node_id`` (the default node that is
    about to stop being it); how many were pinned."""
    result = await session.execute(
        insert(TenantPlacement)
        .from_select(
            ["tenant_id", "node_id"],
            select(Tenant.id, literal(node_id, BigInteger())).where(
                ~select(TenantPlacement.tenant_id)
                .where(TenantPlacement.tenant_id == Tenant.id)
                .exists()
            ),
        )
        .returning(TenantPlacement.tenant_id)
    )
    return len(result.all())


async def choose_node(session: AsyncSession) -> AsteriskNode:
    """The active node with the fewest tenants (the lowest id among equals): where a new
    tenant goes. Draining and down nodes take none."""
    active = list(
        (
            await session.scalars(
                select(AsteriskNode)
                .where(AsteriskNode.state == NodeState.ACTIVE.value)
                .order_by(AsteriskNode.id)
            )
        ).all()
    )
    if not active:
        raise NoActiveNode("no active node can take a new tenant")
    counts = await tenant_counts(session)
    return min(active, key=lambda node: (counts.get(node.id, 0), node.id))


async def place_new_tenant(session: AsyncSession, tenant_id: int) -> TenantPlacement:
    """Place a tenant just created on the least-loaded active node (the caller commits)."""
    node = await choose_node(session)
    row = TenantPlacement(tenant_id=tenant_id, node_id=node.id)
    session.add(row)
    await session.flush()
    return row


async def place_created_tenant(session: AsyncSession, tenant_id: int) -> None:
    """Where a tenant just created goes (a hook of the tenants' domain, in its transaction).

    With several nodes, on the least-loaded active node (``place_new_tenant``). With one
    node, or none active, it gets no placement: it lives on the default node, like every
    tenant without one, and is pinned there if the default ever changes.
    """
    nodes = await session.scalar(select(func.count()).select_from(AsteriskNode))
    if not nodes or nodes < 2:
        return
    try:
        await place_new_tenant(session, tenant_id)
    except NoActiveNode:
        return


async def require_tenant_on_node(
    session: AsyncSession, tenant_id: int, node_id: int, *, field: str = "node"
) -> AsteriskNode:
    """The tenant's node, if it is ``node_id``; else TenantOnOtherNode (409).

    A tenant's queues and agents share one Asterisk (``app_queue`` state lives in one
    process): a queue member added, or an agent logged in, through another node would be
    a member of a queue nobody calls.
    """
    node = await node_of_tenant(session, tenant_id)
    if node.id != node_id:
        raise TenantOnOtherNode(
            f"tenant {tenant_id} lives on node {node.name}, not on node {node_id}",
            field=field,
            reason="the tenant lives on another node",
            tenant_node=node.name,
        )
    return node


# Every tenant created in a process that loads the cluster layer (the app does) is placed.
if place_created_tenant not in tenants_service.ON_CREATE:
    tenants_service.ON_CREATE.append(place_created_tenant)
