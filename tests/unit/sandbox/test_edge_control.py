"""The control plane's client of the SIP edge's JSON-RPC socket, against a stand-in server
that answers as Kamailio does (one datagram back to the sender's socket)."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from graam_pbx.sandbox.asterisk import BASE_CONF_DIR, AsteriskSandbox, AsteriskSandboxConfig
from graam_pbx.settings import Settings
from graam_pbx.sip_edge import RELOAD_BUSY, EdgeControl, EdgeRpcError


class StandIn:
    """Answers each request with the next of ``answers`` (a reload refused, then done...)."""

    def __init__(self, path: Path, answers: list[dict[str, object]]) -> None:
        self.path = path
        self.answers = answers
        self.methods: list[str] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(5)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        for answer in self.answers:
            try:
                data, sender = self._sock.recvfrom(65535)
            except OSError:
                return
            request = json.loads(data)
            self.methods.append(request["method"])
            self._sock.sendto(
                json.dumps({"jsonrpc": "2.0", "id": request["id"], **answer}).encode(), sender
            )

    def close(self) -> None:
        self._sock.close()
        self._thread.join(5)


@pytest.fixture
def run_dir() -> Iterator[Path]:
    # Short: a Unix socket's path has room for about 100 bytes.
    path = Path(tempfile.mkdtemp(prefix="edge-rpc-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


BUSY: dict[str, object] = {"error": {"code": 500, "message": RELOAD_BUSY}}
DONE: dict[str, object] = {"result": None}


async def test_a_refused_reload_is_sent_again_until_done(run_dir: Path) -> None:
    server = StandIn(run_dir / "rpc.sock", [BUSY, BUSY, DONE])
    try:
        await EdgeControl(run_dir / "rpc.sock").reload_dispatcher(delay=0)
    finally:
        server.close()
    assert server.methods == ["dispatcher.reload"] * 3
    assert sorted(p.name for p in run_dir.iterdir()) == ["rpc.sock"]  # reply sockets gone


async def test_a_reload_refused_every_time_is_an_error(run_dir: Path) -> None:
    server = StandIn(run_dir / "rpc.sock", [BUSY, BUSY])
    try:
        with pytest.raises(EdgeRpcError, match=RELOAD_BUSY):
            await EdgeControl(run_dir / "rpc.sock").reload_dispatcher(attempts=2, delay=0)
    finally:
        server.close()
    assert server.methods == ["dispatcher.reload"] * 2


async def test_other_errors_are_not_retried(run_dir: Path) -> None:
    server = StandIn(run_dir / "rpc.sock", [{"error": {"code": 500, "message": "no such"}}])
    try:
        with pytest.raises(EdgeRpcError, match="no such"):
            await EdgeControl(run_dir / "rpc.sock").reload_dispatcher(delay=0)
    finally:
        server.close()
    assert server.methods == ["dispatcher.reload"]


async def test_an_edge_not_running_is_an_error(run_dir: Path) -> None:
    with pytest.raises(EdgeRpcError, match="control socket"):
        await EdgeControl(run_dir / "rpc.sock", timeout=1).call("core.version")


def test_the_edge_is_told_only_when_configured(tmp_path: Path) -> None:
    assert EdgeControl.from_settings(Settings()) is None
    edge = EdgeControl.from_settings(Settings(sip_edge_rpc_socket=tmp_path / "rpc.sock"))
    assert edge is not None and edge.socket_path == tmp_path / "rpc.sock"


def test_a_node_names_itself_and_says_whether_it_is_behind_the_edge_to_the_sip_views(
    tmp_path: Path,
) -> None:
    def options(**extra: object) -> str:
        sandbox = AsteriskSandbox(
            AsteriskSandboxConfig(
                rootfs=tmp_path / "root",
                state_dir=tmp_path / "state",
                ami_port=5038,
                ami_username="graam",
                **extra,  # type: ignore[arg-type]
            )
        )
        return sandbox._environment()["PGOPTIONS"]

    assert options() == "-c graam.node=graam -c graam.media_address=127.0.0.1"
    assert options(behind_edge=True, systemname="nodeb") == (
        "-c graam.node=nodeb -c graam.media_address=127.0.0.1 -c graam.behind_edge=on"
    )


def test_every_node_answers_the_edges_probes_without_a_challenge() -> None:
    """The base pjsip.conf knows the probes' user graam-edge: no auth, no calls."""
    text = (BASE_CONF_DIR / "pjsip.conf").read_text()
    section = text.split("[graam-edge]\n", 1)[1].split("\n\n", 1)[0]
    lines = set(section.splitlines())
    assert {"type = endpoint", "context = graam-refuse", "identify_by = username"} <= lines
    assert not any(line.startswith(("auth", "aors")) for line in lines)
