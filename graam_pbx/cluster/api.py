"""The operator's API of Asterisk nodes and tenants' placements.

Operators only: tenants' users get 403 (a tenant does not choose its Asterisk). After a
change commits, this process's node supervisors (when it runs them) re-read the node table
at once; other processes do within their refresh interval. A change of the node list (a node
added, removed or readdressed) also makes the SIP edge, when one is configured, reload its
dispatcher (docs/sip-edge.md).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Request, Response

from graam_pbx.cluster import service
from graam_pbx.cluster.placement import Placement, default_node, tenant_counts
from graam_pbx.cluster.schemas import (
    NodeCreate,
    NodeOut,
    NodeUpdate,
    PlacedNode,
    PlacementOut,
    PlacementUpdate,
)
from graam_pbx.deps import DbSession, Operator
from graam_pbx.rest import (
    IfMatch,
    Page,
    PageParams,
    error_responses,
    expected_version,
    id_path,
    page_of,
    set_etag,
)
from graam_pbx.sip_edge import EdgeControl, EdgeRpcError

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1")
NODES_TAG = "asterisk nodes"
PLACEMENT_TAG = "tenants"
NodeId = Annotated[int, id_path("The node's id")]
TenantId = Annotated[int, id_path("The tenant's id")]


def _refresh_supervisors(request: Request, background: BackgroundTasks) -> None:
    # After the commit (a response's background runs once the transaction has ended).
    supervisors = getattr(request.app.state, "nodes", None)
    if supervisors is not None:
        background.add_task(supervisors.request)


def _reload_edge(request: Request, background: BackgroundTasks) -> None:
    # After the commit, as above: the edge reads kamailio_dispatcher, the committed rows.
    edge = EdgeControl.from_settings(request.app.state.runtime.settings)
    if edge is not None:
        background.add_task(_send_reload, edge)


async def _send_reload(edge: EdgeControl) -> None:
    """The change is committed whatever the edge says: a failure is logged, and the edge
    reads the node list at its next start or reload."""
    try:
        await edge.reload_dispatcher()
    except EdgeRpcError as err:
        log.warning("sip edge: dispatcher not reloaded: %s", err)


async def _node_out(session: DbSession, node_id: int) -> NodeOut:
    node = await service.get_node(session, node_id)
    default = await default_node(session)
    counts = await tenant_counts(session)
    return NodeOut.of(
        node, default=default is not None and default.id == node.id, tenants=counts.get(node.id, 0)
    )


@router.post(
    "/nodes",
    tags=[NODES_TAG],
    status_code=201,
    response_model=NodeOut,
    responses=error_responses(401, 403, 409, 422),
    summary="Register an Asterisk node",
)
async def create_node(
    body: NodeCreate,
    principal: Operator,
    session: DbSession,
    request: Request,
    response: Response,
    background: BackgroundTasks,
) -> NodeOut:
    node = await service.create_node(session, principal, body)
    set_etag(response, node.id, node.version)
    _refresh_supervisors(request, background)
    _reload_edge(request, background)
    return await _node_out(session, node.id)


@router.get(
    "/nodes",
    tags=[NODES_TAG],
    response_model=Page[NodeOut],
    responses=error_responses(401, 403, 422),
    summary="The Asterisk nodes",
)
async def list_nodes(principal: Operator, session: DbSession, page: PageParams) -> Page[NodeOut]:
    nodes, after = await service.list_nodes(session, after_id=page.after_id, limit=page.limit)
    default = await default_node(session)
    counts = await tenant_counts(session)
    items = [
        NodeOut.of(
            node,
            default=default is not None and default.id == node.id,
            tenants=counts.get(node.id, 0),
        )
        for node in nodes
    ]
    return page_of(items, after)


@router.get(
    "/nodes/{node_id}",
    tags=[NODES_TAG],
    response_model=NodeOut,
    responses=error_responses(401, 403, 404, 422),
    summary="One Asterisk node",
)
async def get_node(
    node_id: NodeId, principal: Operator, session: DbSession, response: Response
) -> NodeOut:
    out = await _node_out(session, node_id)
    set_etag(response, out.id, out.version)
    return out


@router.patch(
    "/nodes/{node_id}",
    tags=[NODES_TAG],
    response_model=NodeOut,
    responses=error_responses(401, 403, 404, 409, 412, 422),
    summary="Change a node: its addresses, its AMI login, or its state (drain, down, active)",
)
async def update_node(
    node_id: NodeId,
    body: NodeUpdate,
    principal: Operator,
    session: DbSession,
    request: Request,
    response: Response,
    background: BackgroundTasks,
    if_match: IfMatch = None,
) -> NodeOut:
    node = await service.update_node(
        session, principal, node_id, body, expected_version(if_match, node_id)
    )
    set_etag(response, node.id, node.version)
    _refresh_supervisors(request, background)
    if body.sip_host is not None or body.sip_port is not None:
        _reload_edge(request, background)
    return await _node_out(session, node.id)


@router.delete(
    "/nodes/{node_id}",
    tags=[NODES_TAG],
    status_code=204,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Remove a node no tenant lives on nor stands by on",
)
async def delete_node(
    node_id: NodeId,
    principal: Operator,
    session: DbSession,
    request: Request,
    background: BackgroundTasks,
) -> Response:
    await service.delete_node(session, principal, node_id)
    _refresh_supervisors(request, background)
    _reload_edge(request, background)
    return Response(status_code=204, background=background)


def _placement_out(placement: Placement) -> PlacementOut:
    row = placement.row
    return PlacementOut(
        tenant_id=placement.tenant_id,
        node=PlacedNode.of(placement.node),
        standby=PlacedNode.of(placement.standby) if placement.standby is not None else None,
        placed=row is not None,
        placed_at=row.placed_at if row is not None else None,
    )


@router.get(
    "/tenants/{tenant_id}/placement",
    tags=[PLACEMENT_TAG],
    response_model=PlacementOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Where a tenant lives: its node and standby",
)
async def get_placement(
    tenant_id: TenantId, principal: Operator, session: DbSession
) -> PlacementOut:
    return _placement_out(await service.get_placement(session, tenant_id))


@router.put(
    "/tenants/{tenant_id}/placement",
    tags=[PLACEMENT_TAG],
    response_model=PlacementOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Place or move a tenant on a node (an active one), with its standby",
)
async def set_placement(
    tenant_id: TenantId,
    body: PlacementUpdate,
    principal: Operator,
    session: DbSession,
    request: Request,
    background: BackgroundTasks,
) -> PlacementOut:
    placement = await service.set_placement(session, principal, tenant_id, body)
    _refresh_supervisors(request, background)
    return _placement_out(placement)
