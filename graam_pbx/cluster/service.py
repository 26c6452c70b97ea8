"""The operator's work on nodes and placements: every change checked, audited, never committed
here (the request's transaction commits it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.agents import sessions as agent_sessions
from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Principal
from graam_pbx.cluster.models import AsteriskNode, NodeState, TenantPlacement
from graam_pbx.cluster.placement import (
    Placement,
    default_node,
    pin_default_tenants,
    placement_of,
    tenants_of_node,
)
from graam_pbx.cluster.schemas import NodeCreate, NodeUpdate, PlacementUpdate
from graam_pbx.db import ensure_version, flush_or_conflict, keyset_page
from graam_pbx.errors import Conflict, Invalid, NotFound
from graam_pbx.tenants.models import Tenant

# The moves an operator may make. A node that was down comes back active: coming back as
# draining would leave it with tenants and no way in for new ones it was never meant to lose.
TRANSITIONS: dict[NodeState, frozenset[NodeState]] = {
    NodeState.ACTIVE: frozenset({NodeState.DRAINING, NodeState.DOWN}),
    NodeState.DRAINING: frozenset({NodeState.ACTIVE, NodeState.DOWN}),
    NodeState.DOWN: frozenset({NodeState.ACTIVE}),
}
CHANGED = "set"
LISTED_TENANTS = 20  # tenants named in a refusal; the details also give how many there are


# ---- nodes ----------------------------------------------------------------------------------


async def list_nodes(
    session: AsyncSession, *, after_id: int | None, limit: int
) -> tuple[list[AsteriskNode], int | None]:
    return await keyset_page(session, select(AsteriskNode), AsteriskNode.id, after_id, limit)


async def get_node(session: AsyncSession, node_id: int, *, lock: bool = False) -> AsteriskNode:
    """One node, or NotFound; ``lock`` holds its row until the transaction ends."""
    statement = select(AsteriskNode).where(AsteriskNode.id == node_id)
    if lock:
        statement = statement.with_for_update()
    node = await session.scalar(statement)
    if node is None:
        raise NotFound(f"no node {node_id}")
    return node


async def create_node(
    session: AsyncSession, principal: Principal, data: NodeCreate
) -> AsteriskNode:
    """A new node. A new active node takes no tenant by itself: placements move them."""
    default_before = await default_node(session)
    node = AsteriskNode(
        name=data.name,
        systemname=data.systemname,
        ami_host=data.ami_host,
        ami_port=data.ami_port,
        ami_username=data.ami_username,
        ami_secret=data.ami_secret.get_secret_value(),
        sip_host=data.sip_host,
        sip_port=data.sip_port,
        phone_websocket=data.phone_websocket,
        state=data.state.value,
    )
    session.add(node)
    await flush_or_conflict(session, taken=_node_unique(node))
    await _keep_default_tenants(session, default_before)
    await audit.record(session, principal, "create", "node", node.id, _node_changes(data))
    return node


async def update_node(
    session: AsyncSession,
    principal: Principal,
    node_id: int,
    data: NodeUpdate,
    expected: int | None,
) -> AsteriskNode:
    """Change a node; a change of state must be one of ``TRANSITIONS`` (else 409)."""
    node = await get_node(session, node_id, lock=True)
    ensure_version(node, expected)
    current = NodeState(node.state)
    if data.state is not None and data.state not in (current, *TRANSITIONS[current]):
        raise Conflict(
            f"node {node.name} is {current}: it may become "
            f"{' or '.join(sorted(TRANSITIONS[current]))}, not {data.state}",
            field="body.state",
            reason=f"a {current} node cannot become {data.state}",
        )
    default_before = await default_node(session)
    for field, value in data.model_dump(exclude_unset=True, exclude={"ami_secret"}).items():
        setattr(node, field, value.value if isinstance(value, NodeState) else value)
    if data.ami_secret is not None:
        node.ami_secret = data.ami_secret.get_secret_value()
    await flush_or_conflict(session, taken=_node_unique(node))
    pinned = await _keep_default_tenants(session, default_before)
    changes = _node_changes(data)
    if pinned:
        changes["pinned_tenants"] = pinned
    await audit.record(session, principal, "update", "node", node.id, changes)
    return node


async def delete_node(session: AsyncSession, principal: Principal, node_id: int) -> None:
    """Remove a node no tenant lives on and no tenant has as its standby (else 409)."""
    node = await get_node(session, node_id, lock=True)
    living = await tenants_of_node(session, node.id)
    if living:
        raise Conflict(
            f"node {node.name} still has {len(living)} tenant(s): move them first",
            field="path.node_id",
            reason="tenants live on this node",
            tenants=living[:LISTED_TENANTS],
            tenant_count=len(living),
        )
    standing_by = list(
        (
            await session.scalars(
                select(TenantPlacement.tenant_id)
                .where(TenantPlacement.standby_node_id == node.id)
                .order_by(TenantPlacement.tenant_id)
            )
        ).all()
    )
    if standing_by:
        raise Conflict(
            f"node {node.name} is the standby of {len(standing_by)} tenant(s)",
            field="path.node_id",
            reason="this node is the standby of tenants",
            tenants=standing_by[:LISTED_TENANTS],
            tenant_count=len(standing_by),
        )
    name = node.name
    await session.delete(node)
    await flush_or_conflict(session, otherwise=f"node {name} was just given a tenant")
    await audit.record(session, principal, "delete", "node", node_id, {"name": name})


async def _keep_default_tenants(session: AsyncSession, default_before: AsteriskNode | None) -> int:
    """Pin the tenants without a placement to the former default node if it changed: a node
    changing state moves no tenant (see placement.py)."""
    if default_before is None:
        return 0
    default_after = await default_node(session)
    if default_after is not None and default_after.id == default_before.id:
        return 0
    return await pin_default_tenants(session, default_before.id)


def _node_unique(node: AsteriskNode) -> dict[str, tuple[str, object]]:
    return {
        "uq_asterisk_nodes_name": ("name", node.name),
        "uq_asterisk_nodes_systemname": ("systemname", node.systemname),
    }


def _node_changes(data: NodeCreate | NodeUpdate) -> dict[str, Any]:
    partial = isinstance(data, NodeUpdate)
    changes = data.model_dump(mode="json", exclude_unset=partial, exclude={"ami_secret"})
    if "ami_secret" in data.model_fields_set:
        changes["ami_secret"] = CHANGED  # the audit says it changed, never to what
    return changes


# ---- placements -----------------------------------------------------------------------------


async def get_placement(session: AsyncSession, tenant_id: int) -> Placement:
    """Where an existing tenant lives (NotFound for a tenant that does not exist)."""
    await _existing_tenant(session, tenant_id)
    return await placement_of(session, tenant_id)


async def set_placement(
    session: AsyncSession, principal: Principal, tenant_id: int, data: PlacementUpdate
) -> Placement:
    """Place (or move) a tenant on a node, with its standby.

    A tenant only moves to an active node, and only gets an active standby (409 naming the
    field otherwise); keeping its node or standby as they are is always allowed. The moved
    tenant's configuration, phones and sessions follow it (see docs/nodes.md).
    """
    await _existing_tenant(session, tenant_id)
    row = await session.get(TenantPlacement, tenant_id, with_for_update=True)
    current_node = row.node_id if row is not None else None
    current_standby = row.standby_node_id if row is not None else None
    if row is None:
        default = await default_node(session)
        current_node = default.id if default is not None else None
    node = await _node_named(session, data.node, "body.node")
    standby = (
        await _node_named(session, data.standby, "body.standby")
        if data.standby is not None
        else None
    )
    if standby is not None and standby.id == node.id:
        raise Invalid("body.standby", "must be another node than the tenant's node")
    if node.id != current_node:
        _require_active(node, "body.node", "a tenant moves only to an active node")
    if standby is not None and standby.id != current_standby:
        _require_active(standby, "body.standby", "a standby must be an active node")
    changes: dict[str, Any] = {}
    if node.id != current_node:
        changes["node"] = node.name
    if (standby.id if standby else None) != current_standby:
        changes["standby"] = standby.name if standby else None
    if row is None:
        row = TenantPlacement(
            tenant_id=tenant_id,
            node_id=node.id,
            standby_node_id=standby.id if standby else None,
        )
        session.add(row)
        changes.setdefault("node", node.name)
    else:
        row.node_id = node.id
        row.standby_node_id = standby.id if standby else None
    await flush_or_conflict(session, otherwise="the placement changed meanwhile; try again")
    await session.refresh(row, ["placed_at"])
    if node.id != current_node:
        # Its agents' sessions follow at the commit: the agent worker adds their queue
        # members on the new node and removes them from the old one (the placement row
        # itself is a configuration change: its files follow the same way).
        session.info.setdefault(agent_sessions.PENDING_KEY, set()).add(tenant_id)
    if changes:
        action = "move" if "node" in changes and current_node != node.id else "update"
        await audit.record(
            session, principal, action, "placement", tenant_id, changes, tenant_id=tenant_id
        )
    return Placement(tenant_id, node, standby, row)


async def _existing_tenant(session: AsyncSession, tenant_id: int) -> None:
    if await session.get(Tenant, tenant_id) is None:
        raise NotFound(f"no tenant {tenant_id}")


async def _node_named(session: AsyncSession, name: str, field: str) -> AsteriskNode:
    # Shared lock: the node cannot change state until this placement commits, and a state
    # change committed first is what this read sees.
    node = await session.scalar(
        select(AsteriskNode).where(AsteriskNode.name == name).with_for_update(read=True)
    )
    if node is None:
        raise Invalid(field, f"no node named {name!r}")
    return node


def _require_active(node: AsteriskNode, field: str, reason: str) -> None:
    if node.state != NodeState.ACTIVE.value:
        raise Conflict(f"node {node.name} is {node.state}: {reason}", field=field, reason=reason)
