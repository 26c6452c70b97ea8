"""Where the control plane sees the Asterisk logs of the nodes other than the configured one.

The CDR writer and the queue-call writer backfill from Asterisk's own logs (``graam-cdr.csv``,
``queue_log``) what happened while they were not listening. The configured Asterisk's logs
are ``GRAAM_CDR_CSV_LOG`` and ``GRAAM_QUEUE_LOG``; every other node's are in
``<GRAAM_NODES_FILES_DIR>/<node>/log`` (that node's ``/var/log/asterisk``, mounted there),
beside the ``config`` and ``sounds`` the node appliers write (graam_pbx/asterisk/nodes.py).
Each node's log gets a checkpoint of its own, under ``nodes/<node>/`` of the writer's state
directory.

The writers learn the nodes from the node supervisors (those not down), and which node an
event came from from its ``GraamNode`` header (graam_pbx/cluster/supervisors.py). A node
whose log directory is missing is skipped, with one warning per node (and one line when it
appears): its logs are the operator's to mount.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from graam_pbx.ami import AmiSupervisor, Message
from graam_pbx.ami.bus import NODE_HEADER

log = logging.getLogger(__name__)

LOG_SUBDIR = "log"  # <nodes files dir>/<node>/log: the node's /var/log/asterisk
NODES_SUBDIR = "nodes"  # <writer's state dir>/nodes/<node>/: that node's checkpoints
SYSTEM_NAME_TIMEOUT = 5.0


class NodeLogs:
    """The other nodes' log directories, their checkpoints' directories, their system names.

    ``supervisors`` gives the AMI supervisor of each node not down, by name (the node
    supervisors' ``supervisors``, the configured node's included: it is left out here).
    """

    def __init__(
        self,
        files_dir: Path,
        local: str | None,
        supervisors: Callable[[], Mapping[str, AmiSupervisor]],
    ) -> None:
        self.files_dir = files_dir
        self.local = local
        self._supervisors = supervisors
        self._missing: set[str] = set()  # nodes warned about: their directory is missing

    def others(self) -> list[str]:
        """The nodes not down other than the configured one, by name."""
        return sorted(name for name in self._supervisors() if name != self.local)

    def is_local(self, message: Message) -> bool:
        """Whether ``message`` came from the configured Asterisk: tagged with its node, or
        untagged (its connection tags nothing when it is none of the nodes)."""
        node = message.get(NODE_HEADER)
        return node is None or node == self.local

    def log_dir(self, node: str) -> Path:
        """Where the node named ``node``'s ``/var/log/asterisk`` is seen."""
        return self.files_dir / node / LOG_SUBDIR

    def present(self, node: str) -> bool:
        """Whether the node's log directory is there; warned once while it is not. Blocking
        (a stat): called in a thread."""
        directory = self.log_dir(node)
        if directory.is_dir():
            if node in self._missing:
                self._missing.discard(node)
                log.info("node log directory found node=%s path=%s", node, directory)
            return True
        if node not in self._missing:
            self._missing.add(node)
            log.warning(
                "node log directory missing: this node's CDRs and queue calls are not "
                "backfilled (mount its /var/log/asterisk there) node=%s path=%s",
                node,
                directory,
            )
        return False

    async def system_name(self, node: str) -> str | None:
        """The node's Asterisk ``systemname`` (its CSV rows do not carry it); None when this
        process is not connected to it (its next connection's resync asks again). Raises
        ``AmiError`` when a connected node does not answer."""
        supervisor = self._supervisors().get(node)
        if supervisor is None or not supervisor.state.connected:
            return None
        answer = await supervisor.action("CoreSettings", timeout=SYSTEM_NAME_TIMEOUT)
        return answer.get("SystemName", "")


def checkpoint_dir(state_dir: Path, node: str) -> Path:
    """Where a writer keeps the checkpoints of the node named ``node``'s logs."""
    return state_dir / NODES_SUBDIR / node
