"""One AMI supervisor per Asterisk node, all publishing on the process's one event bus.

The existing ``AmiSupervisor`` runs once per node, unchanged. Each publishes through a
``NodeBus``, which adds a ``GraamNode: <node name>`` header to every event (resyncs
included) before handing it to the shared bus: subscribers keep their one subscription and
read the node from the event when they need it (a resync says which node's state to
re-read; a CDR already names its node through its uniqueid's systemname). One bus per node
was the other way; it would have made every domain subscribe N times and follow nodes
coming and going.

``refresh()`` makes the running supervisors match the node table: a new node gets one, a
node whose name or AMI address or login changed gets a new one, a removed node or one
marked down loses its own (the connection is logged off and closed). ``for_tenant`` routes
an action to the supervisor of the tenant's node. ``adopt`` lets the process's existing
supervisor serve as one node's (the default node's), so that no Asterisk gets two
connections from one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami import AmiConfig, AmiSupervisor, EventBus, Message, TransportFactory, open_tcp
from graam_pbx.ami.bus import NODE_HEADER, EventHandler, Subscription
from graam_pbx.cluster.models import AsteriskNode, NodeState
from graam_pbx.cluster.nodes import NodeUnavailable, ami_config_of
from graam_pbx.cluster.placement import homes_of_tenants, node_of_tenant

logger = logging.getLogger(__name__)

REFRESH_INTERVAL = 5.0  # seconds between reads of the node table (changes by other processes)

# Told after every refresh (and at stop, with no node left): what follows the supervisors.
RefreshHook = Callable[[], Awaitable[None]]


def node_of_event(message: Message) -> str | None:
    """The name of the node an event came from (None: not through NodeSupervisors)."""
    return message.get(NODE_HEADER)


def tagged(message: Message, node: str) -> Message:
    """``message`` with the ``GraamNode`` header last, kept as text when it came as text
    (its consumers parse events lazily, straight from the text)."""
    if message.block is not None:
        return Message(f"{message.block}\r\n{NODE_HEADER}: {node}")
    return Message([*message.fields, (NODE_HEADER, node)])


class NodeBus(EventBus):
    """What one node's supervisor publishes on: the shared bus, each event tagged.

    Subscribing goes to the shared bus too, so this is an ``EventBus`` wherever one is
    expected; starting and stopping the shared bus stays its owner's business.
    """

    def __init__(self, shared: EventBus, node: str) -> None:
        super().__init__(only=shared.only)
        self.shared = shared
        self.node = node

    def publish(self, message: Message) -> None:
        if message.event is None:
            return
        self.shared.publish(tagged(message, self.node))

    def subscribe(
        self,
        name: str,
        events: Collection[str] | Literal["*"],
        handler: EventHandler,
        *,
        maxsize: int = 10_000,
    ) -> Subscription:
        return self.shared.subscribe(name, events, handler, maxsize=maxsize)

    async def unsubscribe(self, subscription: Subscription) -> None:
        await self.shared.unsubscribe(subscription)

    async def start(self) -> None:
        """Nothing: the shared bus is started by its owner."""

    async def stop(self) -> None:
        """Nothing: the shared bus is stopped by its owner."""


@dataclass(frozen=True)
class _Running:
    """A node's supervisor and what it was started with (a change restarts it)."""

    name: str
    config: AmiConfig
    supervisor: AmiSupervisor


class NodeSupervisors:
    """The AMI supervisors of every node not marked down, kept in step with the node table."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        template: AmiConfig,
        *,
        refresh_interval: float | None = REFRESH_INTERVAL,
        transport_factory: TransportFactory = open_tcp,
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self._template = template
        self._interval = refresh_interval
        self._transport_factory = transport_factory
        self._running: dict[int, _Running] = {}
        self._adopted: dict[str, AmiSupervisor] = {}
        self._live: dict[int, str] = {}  # nodes not down at the last refresh: id -> name
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._hooks: list[RefreshHook] = []

    @property
    def supervisors(self) -> Mapping[str, AmiSupervisor]:
        """The supervisors of the nodes not down, by node name."""
        found = {running.name: running.supervisor for running in self._running.values()}
        for name in self._live.values():
            if name in self._adopted:
                found[name] = self._adopted[name]
        return found

    def adopt(self, node: str, supervisor: AmiSupervisor) -> None:
        """Use ``supervisor`` as the node ``node``'s instead of starting one; its owner starts
        and stops it. The process's one AMI connection of before nodes becomes the default
        node's this way, with no second connection to the same Asterisk: made with
        ``NodeBus(bus, node)``, its events are tagged like the others'. Call before start."""
        self._adopted[node] = supervisor

    def on_refresh(self, hook: RefreshHook) -> None:
        """Call ``hook`` after every refresh, and at stop before the supervisors stop (with
        ``supervisors`` then empty but for the adopted ones): per-node work (each node's
        configuration applier) follows the supervisors."""
        self._hooks.append(hook)

    async def _tell(self) -> None:
        for hook in self._hooks:
            try:
                await hook()
            except Exception:
                logger.exception("node supervisors refresh hook failed")

    def get(self, node: str) -> AmiSupervisor | None:
        """The running supervisor of the node named ``node``."""
        return self.supervisors.get(node)

    async def start(self) -> None:
        await self.refresh()
        if self._interval is not None and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._run(self._interval), name="node-supervisors")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        async with self._lock:
            running, self._running = self._running, {}
        await self._tell()
        await asyncio.gather(*(entry.supervisor.stop() for entry in running.values()))

    def request(self) -> None:
        """Re-read the node table soon (after a committed change of nodes or placements)."""
        self._wake.set()

    async def refresh(self) -> None:
        """Start, restart and stop supervisors so that each node not down has exactly one."""
        # Read under the lock: an older read never overrides a newer one.
        async with self._lock:
            async with self._sessions() as session:
                nodes = list((await session.scalars(select(AsteriskNode))).all())
            live = {node.id: node.name for node in nodes if node.state != NodeState.DOWN.value}
            wanted = {
                node.id: (node.name, ami_config_of(node, self._template))
                for node in nodes
                if node.id in live and node.name not in self._adopted
            }
            self._live = live
            stale = [
                node_id
                for node_id, running in self._running.items()
                if wanted.get(node_id) != (running.name, running.config)
            ]
            for node_id in stale:
                running = self._running.pop(node_id)
                logger.info("node supervisor stopped node=%s", running.name)
                await running.supervisor.stop()
            for node_id, (name, config) in wanted.items():
                if node_id in self._running:
                    continue
                supervisor = AmiSupervisor(
                    config,
                    NodeBus(self._bus, name),
                    transport_factory=self._transport_factory,
                    node=name,
                )
                await supervisor.start()
                self._running[node_id] = _Running(name, config, supervisor)
                logger.info(
                    "node supervisor started node=%s host=%s port=%d",
                    name,
                    config.host,
                    config.port,
                )
        await self._tell()

    async def for_tenant(self, tenant_id: int) -> AmiSupervisor:
        """The supervisor of the tenant's node; NodeUnavailable (503) when that node is down
        or this process holds no connection to it."""
        async with self._sessions() as session:
            node = await node_of_tenant(session, tenant_id)
            node_id, name, state = node.id, node.name, node.state
        if state == NodeState.DOWN.value:
            raise NodeUnavailable(
                f"tenant {tenant_id} lives on node {name}, which is down", node=name
            )
        adopted = self._adopted.get(name)
        if adopted is not None:
            return adopted
        running = self._running.get(node_id)
        if running is None:
            await self.refresh()  # a node added since the last read
            running = self._running.get(node_id)
        if running is None:
            raise NodeUnavailable(f"no AMI supervisor for node {name}", node=name)
        return running.supervisor

    async def partition(
        self, tenant_ids: set[int] | None
    ) -> list[tuple[AmiSupervisor, set[int] | None]]:
        """``tenant_ids`` (None: every tenant) split by their nodes' supervisors.

        With one live node, the whole set (None included) goes to it unchanged: a deployment
        of one Asterisk reconciles as it did before nodes. With several, each node not down
        gets its own tenants (a full pass: every node, even one with none, so that members
        of tenants moved away are removed from it). A tenant whose node has no supervisor
        (down) is left out: its queues ring nowhere until it is moved or the node is back.
        """
        async with self._sessions() as session:
            nodes = list(
                (
                    await session.scalars(
                        select(AsteriskNode)
                        .where(AsteriskNode.state != NodeState.DOWN.value)
                        .order_by(AsteriskNode.id)
                    )
                ).all()
            )
            supervisors = self.supervisors
            reachable = [
                (node, supervisors[node.name]) for node in nodes if node.name in supervisors
            ]
            if len(nodes) == 1 and reachable:
                return [(reachable[0][1], tenant_ids)]
            # Only the tenants asked about: a pass after a few logins reads a few rows, not
            # every tenant of every node.
            homes = await homes_of_tenants(session, tenant_ids)
        parts: list[tuple[AmiSupervisor, set[int] | None]] = []
        for node, supervisor in reachable:
            tenants = {tenant for tenant, home in homes.items() if home == node.id}
            if tenant_ids is not None and not tenants:
                continue
            parts.append((supervisor, tenants))
        return parts

    async def _run(self, interval: float) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.refresh()
            except Exception:
                logger.exception("node supervisors refresh failed")
