"""Each Asterisk node gets only its tenants' files, from an applier of its own.

The configured Asterisk's applier (the process's own, writing to ``GRAAM_ASTERISK_CONFIG_DIR``
and ``GRAAM_ASTERISK_SOUNDS_DIR``) writes what its node holds. With
``GRAAM_NODES_FILES_DIR`` set, every other node not down gets an applier too: it writes that
node's tenants to ``<dir>/<node>/config`` and their prompts to ``<dir>/<node>/sounds`` (each
mounted where that node's Asterisk reads them) and reloads through that node's AMI
supervisor. A node holds the tenants living on it and those it stands by for (the SIP edge
sends them there while their node is down), so a standby can take their calls with no
pass of its own. A tenant moved to another node is written there and removed from the node
it left in the same passes: every applier hears every change and keeps what its node holds.

The appliers follow the node supervisors (``NodeSupervisors.on_refresh``): a node added gets
an applier (whose first pass is a full one), a node marked down or removed loses it, a
node whose AMI connection was replaced gets a new one on the new connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol

from graam_pbx.ami import AmiSupervisor
from graam_pbx.asterisk.applier import ConfigApplier

log = logging.getLogger(__name__)

CONFIG_SUBDIR = "config"
SOUNDS_SUBDIR = "sounds"

# (node name, its AMI supervisor, its configuration directory, its sounds directory)
ApplierFactory = Callable[[str, AmiSupervisor, Path, Path], ConfigApplier]


class Supervisors(Protocol):
    """The node supervisors as the appliers follow them (graam_pbx/cluster/supervisors.py's
    ``NodeSupervisors``)."""

    @property
    def supervisors(self) -> Mapping[str, AmiSupervisor]: ...

    def on_refresh(self, hook: Callable[[], Awaitable[None]]) -> None: ...


def node_files(files_dir: Path, node: str) -> tuple[Path, Path]:
    """Where the node named ``node``'s configuration and prompts are written."""
    return files_dir / node / CONFIG_SUBDIR, files_dir / node / SOUNDS_SUBDIR


class NodeAppliers:
    """The configured Asterisk's applier and one per other node (see the module's text)."""

    def __init__(
        self,
        local: ConfigApplier,
        *,
        nodes: Supervisors | None = None,
        local_node: str | None = None,
        files_dir: Path | None = None,
        make: ApplierFactory | None = None,
    ) -> None:
        self.local = local
        self._nodes = nodes
        self._local_node = local_node
        self._files_dir = files_dir
        self._make = make
        self._others: dict[str, ConfigApplier] = {}
        self._lock = asyncio.Lock()
        self._running = False

    @property
    def appliers(self) -> list[ConfigApplier]:
        """Every applier, the configured Asterisk's first."""
        return [self.local, *self._others.values()]

    def of_node(self, node: str) -> ConfigApplier | None:
        """The applier writing the node named ``node``'s files."""
        if node == self._local_node:
            return self.local
        return self._others.get(node)

    async def prepare(self) -> None:
        await self.local.prepare()

    async def start(self) -> None:
        await self.local.start()
        self._running = True
        if self._nodes is not None and self._files_dir is not None and self._make is not None:
            # Called after each refresh of the supervisors (their start's included).
            self._nodes.on_refresh(self.refresh)

    async def stop(self) -> None:
        async with self._lock:
            self._running = False
            others, self._others = self._others, {}
        await asyncio.gather(*(applier.stop() for applier in others.values()))
        await self.local.stop()

    def request(self, tenant_ids: Iterable[int] | None) -> None:
        """Ask every node's applier for these tenants (None: everything); each writes or
        removes them as its node holds them or not."""
        ids = None if tenant_ids is None else set(tenant_ids)
        for applier in self.appliers:
            applier.request(ids)

    def expire_devices(self, ids: frozenset[str] | None) -> None:
        """Have every node forget its copies of these devices (None: of every device)."""
        for applier in self.appliers:
            applier.expire_devices(ids)

    async def settled(self) -> None:
        """Until every node's applier has applied every request made so far."""
        for applier in self.appliers:
            await applier.settled()

    async def refresh(self) -> None:
        """One applier per node with a connected supervisor, other than the configured one."""
        nodes, files_dir, make = self._nodes, self._files_dir, self._make
        if nodes is None or files_dir is None or make is None:
            return
        async with self._lock:
            if not self._running:
                return
            wanted = {
                name: supervisor
                for name, supervisor in nodes.supervisors.items()
                if name != self._local_node
            }
            for name in list(self._others):
                if wanted.get(name) is not self._others[name].ami:
                    applier = self._others.pop(name)
                    log.info("node applier stopped node=%s", name)
                    await applier.stop()
            for name, supervisor in wanted.items():
                # A node gets its applier once its AMI first answers (the next refresh after
                # that): a node never reached gets no files and no failing passes.
                if name in self._others or not supervisor.state.connected:
                    continue
                config_dir, sounds_dir = node_files(files_dir, name)
                await asyncio.to_thread(_make_dirs, config_dir, sounds_dir)
                applier = make(name, supervisor, config_dir, sounds_dir)
                await applier.start()
                self._others[name] = applier
                log.info("node applier started node=%s config_dir=%s", name, config_dir)


def _make_dirs(*directories: Path) -> None:
    for directory in directories:
        directory.mkdir(parents=True, exist_ok=True)
