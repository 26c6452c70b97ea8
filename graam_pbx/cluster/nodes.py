"""The default node, and how the control plane reaches any node over AMI.

A deployment that never heard of nodes has one Asterisk, the one its settings (or the
sandbox) name. ``ensure_local_node`` registers it as the node ``local`` the first time, so
that the node table is never empty and every tenant (without a placement) lives somewhere.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.ami import AmiConfig
from graam_pbx.cluster.models import AsteriskNode, NodeState
from graam_pbx.errors import Unavailable

LOCAL_NODE = "local"
LOCAL_SYSTEMNAME = "graam"  # the sandbox's and the shipped asterisk.conf's systemname
# Serialises the first registration across processes starting together (api and worker).
_LOCAL_NODE_LOCK = "graam.cluster.local-node"


class NodeUnavailable(Unavailable):
    """The tenant's node cannot take actions now (down, or no AMI connection to it)."""

    error_id = "node-unavailable"


async def ensure_local_node(
    session: AsyncSession,
    ami: AmiConfig,
    *,
    sip_host: str,
    sip_port: int,
    name: str = LOCAL_NODE,
    systemname: str = LOCAL_SYSTEMNAME,
) -> AsteriskNode | None:
    """The node the configured Asterisk is: registered as ``local`` when no node exists yet.

    Idempotent: once any node exists (this one, or nodes an operator made), nothing is
    written; the node reached at the configured AMI address is returned, or None when no
    node is (the configured Asterisk is then none of the nodes). The caller commits.
    """
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": _LOCAL_NODE_LOCK}
    )
    if await session.scalar(select(AsteriskNode.id).limit(1)) is not None:
        return await session.scalar(
            select(AsteriskNode)
            .where(AsteriskNode.ami_host == ami.host, AsteriskNode.ami_port == ami.port)
            .order_by(AsteriskNode.id)
            .limit(1)
        )
    node = AsteriskNode(
        name=name,
        systemname=systemname,
        ami_host=ami.host,
        ami_port=ami.port,
        ami_username=ami.username,
        ami_secret=ami.secret,
        sip_host=sip_host,
        sip_port=sip_port,
        state=NodeState.ACTIVE.value,
    )
    session.add(node)
    await session.flush()
    return node


def ami_config_of(node: AsteriskNode, template: AmiConfig) -> AmiConfig:
    """How to reach ``node`` over AMI: its address and user, the template's timings."""
    return dataclasses.replace(
        template,
        host=node.ami_host,
        port=node.ami_port,
        username=node.ami_username,
        secret=node.ami_secret,
    )
