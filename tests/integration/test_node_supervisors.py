"""One AMI supervisor per node, against two real Asterisk sandboxes.

Node ``a`` is the session's sandbox (systemname ``graam``); node ``b`` is a second sandbox
this module starts over the same cached root, on its own loopback address (SIP on
127.0.0.121), with its own AMI port and systemname. Each tenant's actions must reach its own
node (``CoreSettings`` answers with the node's systemname), events from both nodes arrive
on the one bus tagged with their node, a tenant moved follows its placement, a node marked
down refuses actions, and a node removed has its connection closed (Asterisk's own list of
AMI sessions says so).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami import AmiSupervisor, EventBus, Message
from graam_pbx.ami.bus import NODE_HEADER, RESYNC_EVENT
from graam_pbx.cluster.models import AsteriskNode, NodeState, TenantPlacement
from graam_pbx.cluster.nodes import NodeUnavailable
from graam_pbx.cluster.supervisors import NodeBus, NodeSupervisors, node_of_event
from graam_pbx.db import create_engine, session_factory
from graam_pbx.sandbox.asterisk import AsteriskSandbox
from graam_pbx.tenants.models import Tenant
from tests.conftest import Asterisk
from tests.second_node import second_node
from tests.waiting import until

Sessions = async_sessionmaker[AsyncSession]
NODE_B_ADDRESS = "127.0.0.121"
NODE_B_SYSTEMNAME = "nodeb"
CONNECT_TIMEOUT = 30.0


@pytest.fixture(scope="module")
async def second_asterisk(servers_dir: Path) -> AsyncIterator[AsteriskSandbox]:
    state_dir = servers_dir / f"asterisk-b-{uuid.uuid4().hex[:6]}"
    async with second_node(state_dir, NODE_B_ADDRESS, NODE_B_SYSTEMNAME) as (sandbox, _):
        yield sandbox


@pytest.fixture(scope="module")
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url, pool_size=2)
    yield session_factory(engine)
    await engine.dispose()


class Collected:
    """Every event the shared bus delivers, for the test to look through."""

    def __init__(self) -> None:
        self.events: list[Message] = []

    def handle(self, message: Message) -> None:
        self.events.append(message)

    def seen(self, event: str, node: str, **headers: str) -> bool:
        return any(
            message.event == event
            and node_of_event(message) == node
            and all(message.get(key) == value for key, value in headers.items())
            for message in self.events
        )


async def _node(sessions: Sessions, **values: object) -> int:
    async with sessions() as session, session.begin():
        node = AsteriskNode(**values)
        session.add(node)
        await session.flush()
        return node.id


async def _local_node(
    sessions: Sessions,
    asterisk: Asterisk,
    *,
    name: str,
    systemname: str,
    ami_secret: str | None = None,
) -> int:
    """A node for the session's Asterisk (its AMI; ``ami_secret`` given: that one instead)."""
    template = asterisk.ami_config()
    return await _node(
        sessions,
        name=name,
        systemname=systemname,
        ami_host=template.host,
        ami_port=template.port,
        ami_username=template.username,
        ami_secret=template.secret if ami_secret is None else ami_secret,
        sip_host="127.0.0.1",
        sip_port=asterisk.sip_port,
        state=NodeState.ACTIVE.value,
    )


async def _tenant_on(sessions: Sessions, node_id: int) -> int:
    async with sessions() as session, session.begin():
        slug = f"ns{uuid.uuid4().hex[:10]}"
        tenant = Tenant(slug=slug, name=slug, country="FR", timezone="Europe/Paris")
        session.add(tenant)
        await session.flush()
        session.add(TenantPlacement(tenant_id=tenant.id, node_id=node_id))
        return tenant.id


async def _ami_sessions(sandbox: AsteriskSandbox, username: str) -> int:
    """How many AMI sessions of ``username`` Asterisk itself lists."""
    listing = await sandbox.cli("manager show connected")
    return sum(1 for line in listing.splitlines() if line.split()[:1] == [username])


async def _systemname(supervisors: NodeSupervisors, tenant_id: int) -> str:
    supervisor = await supervisors.for_tenant(tenant_id)
    settings = await supervisor.action("CoreSettings")
    return settings["SystemName"]


async def test_each_tenants_actions_and_events_go_through_its_own_node(
    asterisk: Asterisk, second_asterisk: AsteriskSandbox, sessions: Sessions
) -> None:
    template = asterisk.ami_config()
    b_info = second_asterisk.config
    node_a = await _local_node(sessions, asterisk, name="a", systemname="graam")
    node_b = await _node(
        sessions,
        name="b",
        systemname=NODE_B_SYSTEMNAME,
        ami_host="127.0.0.1",
        ami_port=b_info.ami_port,
        ami_username=b_info.ami_username,
        ami_secret=second_asterisk.secret(),
        sip_host=NODE_B_ADDRESS,
        sip_port=b_info.sip_port,
        state=NodeState.ACTIVE.value,
    )
    tenant_a = await _tenant_on(sessions, node_a)
    tenant_b = await _tenant_on(sessions, node_b)

    bus = EventBus()
    collected = Collected()
    bus.subscribe("cluster-test", "*", collected.handle)
    await bus.start()
    supervisors = NodeSupervisors(sessions, bus, template, refresh_interval=None)
    await supervisors.start()
    try:
        assert set(supervisors.supervisors) == {"a", "b"}
        for name in ("a", "b"):
            supervisor = supervisors.get(name)
            assert supervisor is not None
            await supervisor.wait_connected(CONNECT_TIMEOUT)

        # Actions: each tenant's reach its own node, told apart by their systemnames.
        assert await _systemname(supervisors, tenant_a) == "graam"
        assert await _systemname(supervisors, tenant_b) == NODE_B_SYSTEMNAME

        # The agent worker's passes: each tenant asked about on its own node's connection,
        # a node with none of them left out; a full pass gives every node its tenants.
        on_a, on_b = supervisors.get("a"), supervisors.get("b")
        assert await supervisors.partition({tenant_a, tenant_b}) == [
            (on_a, {tenant_a}),
            (on_b, {tenant_b}),
        ]
        assert await supervisors.partition({tenant_b, 2**62}) == [(on_b, {tenant_b})]
        everyone = {part: tenants or set() for part, tenants in await supervisors.partition(None)}
        assert tenant_a in everyone[on_a] and tenant_b in everyone[on_b]
        assert tenant_a not in everyone[on_b] and tenant_b not in everyone[on_a]

        # Events: both nodes' resyncs, and an event each node raises, tagged with the node.
        await until(
            lambda: _true(collected.seen(RESYNC_EVENT, "a") and collected.seen(RESYNC_EVENT, "b")),
            "resync of both nodes",
        )
        marks = {
            tenant_a: f"mark-a-{uuid.uuid4().hex[:6]}",
            tenant_b: f"mark-b-{uuid.uuid4().hex[:6]}",
        }
        for tenant_id, mark in marks.items():
            supervisor = await supervisors.for_tenant(tenant_id)
            await supervisor.action("UserEvent", {"UserEvent": mark})
        await until(
            lambda: _true(
                collected.seen("UserEvent", "a", UserEvent=marks[tenant_a])
                and collected.seen("UserEvent", "b", UserEvent=marks[tenant_b])
            ),
            "user events tagged with their nodes",
        )
        assert not collected.seen("UserEvent", "b", UserEvent=marks[tenant_a])
        assert not collected.seen("UserEvent", "a", UserEvent=marks[tenant_b])
        assert all(message.get(NODE_HEADER) in ("a", "b") for message in collected.events)

        # A tenant moved follows its placement at once.
        async with sessions() as session, session.begin():
            await session.execute(
                update(TenantPlacement)
                .where(TenantPlacement.tenant_id == tenant_b)
                .values(node_id=node_a)
            )
        assert await _systemname(supervisors, tenant_b) == "graam"
        assert await supervisors.partition({tenant_a, tenant_b}) == [(on_a, {tenant_a, tenant_b})]

        # A node removed: its supervisor goes, and Asterisk sees its AMI session end.
        assert await _ami_sessions(second_asterisk, b_info.ami_username) == 1
        removed = supervisors.get("b")
        assert removed is not None
        async with sessions() as session, session.begin():
            await session.execute(delete(AsteriskNode).where(AsteriskNode.id == node_b))
        await supervisors.refresh()
        assert set(supervisors.supervisors) == {"a"}
        assert not removed.state.connected

        async def b_closed() -> bool:
            return await _ami_sessions(second_asterisk, b_info.ami_username) == 0

        await until(b_closed, "end of node b's AMI session")

        # A node marked down: its tenants' actions are refused, clearly.
        async with sessions() as session, session.begin():
            await session.execute(
                update(AsteriskNode)
                .where(AsteriskNode.id == node_a)
                .values(state=NodeState.DOWN.value)
            )
        await supervisors.refresh()
        assert supervisors.supervisors == {}
        with pytest.raises(NodeUnavailable) as refused:
            await supervisors.for_tenant(tenant_a)
        assert refused.value.status_code == 503
        assert refused.value.details["node"] == "a" and "down" in refused.value.message

        # Back to active: a new connection, and the tenant's actions flow again.
        async with sessions() as session, session.begin():
            await session.execute(
                update(AsteriskNode)
                .where(AsteriskNode.id == node_a)
                .values(state=NodeState.ACTIVE.value)
            )
        await supervisors.refresh()
        again = supervisors.get("a")
        assert again is not None
        await again.wait_connected(CONNECT_TIMEOUT)
        assert await _systemname(supervisors, tenant_a) == "graam"
    finally:
        await supervisors.stop()
        await bus.stop()


async def test_a_changed_ami_login_restarts_the_nodes_supervisor(
    asterisk: Asterisk, sessions: Sessions
) -> None:
    template = asterisk.ami_config()
    node_id = await _local_node(
        sessions, asterisk, name="c", systemname="graam_c", ami_secret="not-the-secret"
    )
    bus = EventBus()
    await bus.start()
    supervisors = NodeSupervisors(sessions, bus, template, refresh_interval=0.2)
    await supervisors.start()
    try:
        wrong = supervisors.get("c")
        assert wrong is not None

        async def login_refused() -> bool:
            return wrong.state.last_error is not None and not wrong.state.connected

        await until(login_refused, "a refused login with the wrong secret")
        async with sessions() as session, session.begin():
            await session.execute(
                update(AsteriskNode)
                .where(AsteriskNode.id == node_id)
                .values(ami_secret=template.secret)
            )
        supervisors.request()

        async def replaced() -> bool:
            current = supervisors.get("c")
            return current is not None and current is not wrong

        await until(replaced, "a new supervisor for node c")
        current = supervisors.get("c")
        assert current is not None
        await current.wait_connected(CONNECT_TIMEOUT)
        assert not wrong.state.connected
    finally:
        await supervisors.stop()
        await bus.stop()
        async with sessions() as session, session.begin():
            await session.execute(delete(AsteriskNode).where(AsteriskNode.id == node_id))


async def test_an_adopted_supervisor_serves_its_node_without_a_second_connection(
    asterisk: Asterisk, sessions: Sessions
) -> None:
    template = asterisk.ami_config()
    node_id = await _local_node(sessions, asterisk, name="d", systemname="graam_d")
    tenant_id = await _tenant_on(sessions, node_id)
    bus = EventBus()
    collected = Collected()
    bus.subscribe("adopted-test", [RESYNC_EVENT], collected.handle)
    await bus.start()
    own = AmiSupervisor(template, NodeBus(bus, "d"))
    supervisors = NodeSupervisors(sessions, bus, template, refresh_interval=None)
    supervisors.adopt("d", own)
    await own.start()
    await supervisors.start()
    try:
        assert supervisors.get("d") is own
        assert await supervisors.for_tenant(tenant_id) is own
        assert "d" not in {running.name for running in supervisors._running.values()}
        await own.wait_connected(CONNECT_TIMEOUT)
        await until(lambda: _true(collected.seen(RESYNC_EVENT, "d")), "the adopted node's resync")
        assert await _systemname(supervisors, tenant_id) == "graam"
    finally:
        await supervisors.stop()
        assert own.state.connected  # its owner's to stop
        await own.stop()
        await bus.stop()
        async with sessions() as session, session.begin():
            await session.execute(delete(TenantPlacement).where(TenantPlacement.node_id == node_id))
            await session.execute(delete(AsteriskNode).where(AsteriskNode.id == node_id))


async def _true(value: bool) -> bool:
    await asyncio.sleep(0)
    return value
