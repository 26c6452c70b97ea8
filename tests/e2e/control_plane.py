"""A control plane in a process of its own, for the tests that kill it (``kill -9``) and start
it again: ``create_app`` with the test session's Asterisk (AMI) and the test's database, and no
config applier (the session's app writes the configuration).

``python -m tests.e2e.control_plane CONFIG.json`` runs it until SIGTERM and prints ``ready``
once AMI is connected and every component started; ``ControlPlane`` starts it, waits for that
line, and kills or stops it.

With a ``role`` (``api`` or ``worker``) the process serves HTTP on ``api_host``:``api_port``
as ``graam-pbx run --role`` does (graam_pbx.cli.serve: a worker fenced out of its lease ends
with status 75), and says ``ready`` once it listens: a worker may then be the active one or a
standby (its ``/readyz`` says which).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from graam_pbx.ami import AmiConfig
from graam_pbx.app import Endpoints, Runtime, create_app
from graam_pbx.cli import serve
from graam_pbx.sandbox.ports import free_port
from graam_pbx.sandbox.processes import end_process
from graam_pbx.settings import ProcessRole, Settings
from tests.e2e.campaign_world import judge_every_dialer_at_legal_hours

READY = "ready"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class ControlPlaneConfig:
    database_url: str
    ami: dict[str, Any]  # AmiConfig's fields
    state_dir: str  # its CDR journal and queue-call checkpoint
    # The dialer's law judges calls by campaign_world.legal_clock (the tests run at any hour).
    legal_hours: bool = False
    role: str = ProcessRole.ALL.value
    api_host: str = "127.0.0.1"
    api_port: int = 0  # a role's HTTP port (0: none for role all)
    worker_lease_interval: float = 1.0
    cdr_csv_log: str | None = None  # Asterisk's CSV log of CDRs: backfilled after any absence
    queue_log: str | None = None  # Asterisk's queue_log: queue calls backfilled likewise


class ControlPlane:
    """The control plane's process, started and ended by the test."""

    def __init__(self, workdir: Path, config: ControlPlaneConfig) -> None:
        self.workdir = workdir
        self.config = config
        self.config_path = workdir / "control-plane.json"
        self.log_path = workdir / "control-plane.log"
        self._process: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self._process is not None, "start() first"
        return self._process.pid

    @property
    def url(self) -> str:
        """Where a role's process serves HTTP."""
        return f"http://{self.config.api_host}:{self.config.api_port}"

    async def start(self, timeout: float = 60) -> None:
        """Start the process and return once it says it is ready."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        # The AMI secret travels in a file only its owner reads, never on a command line.
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(self.config), out)
        self.starts += 1
        log = self.log_path.open("ab")
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.e2e.control_plane",
                str(self.config_path),
                cwd=REPO,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env={k: v for k, v in os.environ.items() if not k.startswith("GRAAM_")},
            )
        finally:
            log.close()
        assert self._process.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                line = await self._process.stdout.readline()
        except TimeoutError:
            await self.kill()
            raise AssertionError(f"control plane not ready:\n{self.log()}") from None
        if line.decode().strip() != READY:
            await self.kill()
            raise AssertionError(f"control plane did not start ({line!r}):\n{self.log()}")

    async def kill(self) -> None:
        """``kill -9``: the process ends at once, whatever it was doing."""
        if self._process is None or self._process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._process.pid, signal.SIGKILL)
        await self._process.wait()

    async def stop(self) -> None:
        """End it cleanly (SIGTERM), or kill it when it does not end within 20 s."""
        if self._process is not None:
            await end_process(self._process, grace=20)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except FileNotFoundError:
            return ""


def settings_for(config: ControlPlaneConfig) -> Settings:
    state = Path(config.state_dir)
    return Settings(
        agi_port=free_port(),
        cdr_dir=state / "cdr",
        queue_calls_dir=state / "queue-calls",
        data_dir=state,
        billing_interval=86_400,
        demo_seed=False,
        role=ProcessRole(config.role),
        api_host=config.api_host,
        api_port=config.api_port or 8000,
        worker_lease_interval=config.worker_lease_interval,
    )


def free_tcp_port(host: str) -> int:
    """A TCP port free on ``host`` now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


async def run(config: ControlPlaneConfig) -> None:
    settings = settings_for(config)
    endpoints = Endpoints(
        database_url=config.database_url,
        ami=AmiConfig(**config.ami),
        cdr_csv_log=Path(config.cdr_csv_log) if config.cdr_csv_log else None,
        queue_log=Path(config.queue_log) if config.queue_log else None,
    )
    if config.legal_hours:
        judge_every_dialer_at_legal_hours(pytest.MonkeyPatch())
    app = create_app(settings, endpoints)
    if settings.role is not ProcessRole.ALL:
        sys.exit(await serve_role(app, settings))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        await runtime.ami.wait_connected(timeout=30)
        print(READY, flush=True)
        await stopping.wait()


async def serve_role(app: FastAPI, settings: Settings) -> int:
    """Serve as ``graam-pbx run --role`` does; say ``ready`` once the port answers."""
    serving = asyncio.create_task(serve(app, settings))
    while not serving.done():
        try:
            _, writer = await asyncio.open_connection(settings.api_host, settings.api_port)
        except OSError:
            await asyncio.wait([serving], timeout=0.05)  # not listening yet: look again
            continue
        writer.close()
        print(READY, flush=True)
        break
    return await serving


def main() -> None:
    with Path(sys.argv[1]).open() as source:
        config = ControlPlaneConfig(**json.load(source))
    Path(config.state_dir).mkdir(parents=True, exist_ok=True)
    asyncio.run(run(config))


def state_dir() -> str:
    return tempfile.mkdtemp(prefix="graam-control-plane-")


if __name__ == "__main__":
    main()
