"""The login bench's control plane as production runs it: one worker process and N API
processes, each serving HTTP as ``graam-pbx run --role`` does (graam_pbx.cli.serve).

``python -m bench.login_storm --serve CONFIG.json`` is one such process. Its configuration
(with the AMI secret and the signing key) travels in a file only its owner reads, never on a
command line. ``RoleProcess`` starts one and waits until its ``/readyz`` says ``ready`` (for
a worker: the active one, holding the lease).

Each process's engine is graam_pbx.db.create_engine's, unchanged: its pool pings a
connection at checkout only when it sat idle for ``IDLE_BEFORE_PING`` (5 s), so under a
storm no request pays a ping.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.cpu import process_cpu_seconds
from graam_pbx.ami import AmiConfig
from graam_pbx.app import Endpoints, create_app
from graam_pbx.cli import serve
from graam_pbx.logs import configure_logging
from graam_pbx.sandbox.processes import end_process
from graam_pbx.settings import ProcessRole, Settings

REPO = Path(__file__).resolve().parents[1]


@dataclass
class ProcessConfig:
    role: str  # api or worker
    database_url: str
    ami: dict[str, Any]  # AmiConfig's fields
    api_host: str
    api_port: int
    agi_port: int
    state_dir: str
    secret_key: str  # every process signs and checks the same access tokens
    config_dir: str | None = None  # the worker writes Asterisk's configuration here
    sounds_dir: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # other settings, by name


def settings_for(config: ProcessConfig) -> Settings:
    state = Path(config.state_dir)
    return Settings(
        role=ProcessRole(config.role),
        api_host=config.api_host,
        api_port=config.api_port,
        agi_port=config.agi_port,
        data_dir=state,
        cdr_dir=state / "cdr",
        queue_calls_dir=state / "queue-calls",
        secret_key=config.secret_key,
        demo_seed=False,
        billing_interval=86_400,
        worker_lease_interval=1.0,
        log_level="WARNING",
        **config.overrides,
    )


async def _run(config: ProcessConfig) -> int:
    settings = settings_for(config)
    configure_logging(settings.log_level, settings.log_format)  # as graam-pbx run does
    endpoints = Endpoints(
        database_url=config.database_url,
        ami=AmiConfig(**config.ami),
        config_dir=Path(config.config_dir) if config.config_dir else None,
        sounds_dir=Path(config.sounds_dir) if config.sounds_dir else None,
    )
    return await serve(create_app(settings, endpoints), settings)


class RoleProcess:
    """One worker or API process of the bench, started and stopped by it."""

    def __init__(self, workdir: Path, config: ProcessConfig) -> None:
        self.workdir = workdir
        self.config = config
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://{self.config.api_host}:{self.config.api_port}"

    @property
    def pid(self) -> int:
        assert self._process is not None, "start() first"
        return self._process.pid

    async def start(self, timeout: float = 90) -> None:  # noqa: ASYNC109
        """Start the process; return once its /readyz says ready."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "process.json"
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(self.config), out)
        with (self.workdir / "process.log").open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.login_storm",
                "--serve",
                str(config_path),
                cwd=REPO,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env={k: v for k, v in os.environ.items() if not k.startswith("GRAAM_")},
            )
        try:
            async with asyncio.timeout(timeout), httpx.AsyncClient(base_url=self.url) as client:
                # Another process: no event to wait on but its answer.
                while not await self._ready(client):  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
        except TimeoutError:
            await self.stop()
            raise RuntimeError(f"{self.config.role} process not ready:\n{self.log()}") from None

    async def _ready(self, client: httpx.AsyncClient) -> bool:
        if self._process is not None and self._process.returncode is not None:
            raise RuntimeError(f"{self.config.role} process ended:\n{self.log()}")
        try:
            response = await client.get("/readyz")
        except httpx.TransportError:
            return False
        return response.status_code == 200 and response.json().get("status") == "ready"

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not ended within 20 s."""
        if self._process is not None:
            await end_process(self._process, grace=20)

    def cpu_seconds(self) -> float:
        """CPU time the process has used so far (user and system), from /proc."""
        return process_cpu_seconds(self.pid)

    def log(self) -> str:
        try:
            return (self.workdir / "process.log").read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""


def serve_process(config_path: str) -> None:
    """The process itself (``python -m bench.login_storm --serve CONFIG.json``)."""
    with Path(config_path).open() as source:
        config = ProcessConfig(**json.load(source))
    Path(config.state_dir).mkdir(parents=True, exist_ok=True)
    sys.exit(asyncio.run(_run(config)))
