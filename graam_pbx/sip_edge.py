"""The control plane's word to the SIP edge: JSON-RPC over Kamailio's datagram socket.

The edge's dispatcher holds the node list (``kamailio_dispatcher``) in memory: after a node
is added, removed or readdressed, ``dispatcher.reload`` makes it read the list again
(docs/sip-edge.md). This module is low (settings only) so that the cluster layer, which
changes nodes, and the sandbox, which runs an edge, share one client.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graam_pbx.settings import Settings

RPC_TIMEOUT = 5.0  # seconds for Kamailio to answer one command
RELOAD_BUSY = "Ongoing reload"  # the dispatcher refuses a reload within reload_delta (1 s)
RELOAD_ATTEMPTS = 10
RELOAD_RETRY_DELAY = 0.25  # seconds between attempts of a refused reload


class EdgeRpcError(Exception):
    """The edge could not be reached, or answered a command with an error."""


@dataclass
class EdgeControl:
    """The JSON-RPC client of one edge, by the path of its datagram socket."""

    socket_path: Path
    timeout: float = RPC_TIMEOUT
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeControl | None:
        """The configured edge's client; None when no edge is configured."""
        path = settings.sip_edge_rpc_socket
        return cls(path) if path is not None else None

    async def call(self, method: str, *params: str | int) -> Any:
        """One command; its ``result``."""
        request = {
            "jsonrpc": "2.0",
            "method": method,
            "params": list(params),
            "id": next(self._ids),
        }
        answer = await asyncio.to_thread(
            datagram_call, self.socket_path, json.dumps(request).encode(), self.timeout
        )
        try:
            reply = json.loads(answer)
        except ValueError as err:
            raise EdgeRpcError(f"kamailio rpc {method}: an answer that is not JSON") from err
        if "error" in reply:
            raise EdgeRpcError(f"kamailio rpc {method}: {reply['error']}")
        return reply.get("result")

    async def reload_dispatcher(
        self, *, attempts: int = RELOAD_ATTEMPTS, delay: float = RELOAD_RETRY_DELAY
    ) -> None:
        """``dispatcher.reload``, sent again while the edge says a reload is too recent."""
        for attempt in range(1, attempts + 1):
            try:
                await self.call("dispatcher.reload")
            except EdgeRpcError as err:
                if RELOAD_BUSY not in str(err) or attempt == attempts:
                    raise
                await asyncio.sleep(delay)
            else:
                return


def datagram_call(server: Path, request: bytes, timeout: float) -> bytes:
    """Send one datagram to a Unix socket and wait for its answer on a socket of our own
    (bound beside the server's: Kamailio answers to the sender's address)."""
    reply_path = server.with_name(f"client-{os.getpid()}-{os.urandom(4).hex()}.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(str(reply_path))
            sock.settimeout(timeout)
            sock.sendto(request, str(server))
            return sock.recv(1 << 20)
        except OSError as err:
            raise EdgeRpcError(f"kamailio's control socket {server}: {err}") from err
        finally:
            reply_path.unlink(missing_ok=True)
