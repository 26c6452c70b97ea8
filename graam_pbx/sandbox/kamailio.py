"""The SIP edge sandbox: Debian's Kamailio running the project's kamailio.cfg.

The shipped configuration (``kamailio_conf/kamailio.cfg``) is copied as is into a state
directory, beside a local file that defines this instance's values (its address, the
database URL with its password, the control socket), so the file an operator installs is the
file the tests run. Kamailio runs in the foreground (``-DD -E``), logging to the state
directory, its runtime files there too: several edges on one machine share nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from graam_pbx.files import write_atomically
from graam_pbx.sandbox.errors import SandboxError
from graam_pbx.sandbox.processes import end_process
from graam_pbx.sip_edge import EdgeControl, EdgeRpcError

CONF_DIR = Path(__file__).resolve().parent.parent.parent / "kamailio_conf"
MAIN_CONF = "kamailio.cfg"
LOCAL_CONF = "graam-edge-local.cfg"  # the name kamailio.cfg includes
# Characters that would end a #!substdef value or a quoted cfg string.
_UNSAFE = frozenset('!"\\\n\r')


@dataclass(frozen=True)
class KamailioConfig:
    """Where the edge lives, what it listens on and which database it routes from."""

    state_dir: Path
    database_url: str  # the control plane's database (postgresql://, any driver suffix)
    sip_address: str = "127.0.0.1"
    sip_port: int = 5060
    pike_density: int = 30  # requests per source per 2 s before the source is banned
    ban_seconds: int = 300  # how long a flooding or guessing source is ignored
    auth_failures: int = 20  # failed authentications of one source before it is banned
    auth_window: int = 600  # seconds without a failure after which that count restarts
    conf_dir: Path = CONF_DIR
    binary: str = "kamailio"


def kamailio_db_url(database_url: str) -> str:
    """The control plane's database URL as Kamailio's db_postgres wants it.

    ``postgres://user:password@host:port/database``: no driver suffix, no query string, and
    an explicit port (db_postgres has no default worth relying on).
    """
    parts = urlsplit(database_url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgres", "postgresql"):
        raise SandboxError(f"the SIP edge needs a PostgreSQL URL, not {scheme or 'nothing'}://")
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    host, database = parts.hostname, parts.path.lstrip("/")
    if not (user and host and database):
        raise SandboxError("the SIP edge's database URL needs a user, a host and a database")
    credentials = f"{user}:{password}" if password else user
    host_part = f"[{host}]" if ":" in host else host
    url = f"postgres://{credentials}@{host_part}:{parts.port or 5432}/{database}"
    if _UNSAFE & set(url) or "@" in credentials:
        raise SandboxError("the SIP edge's database URL holds a character Kamailio cannot take")
    return url


def local_conf(config: KamailioConfig, rpc_socket: Path) -> str:
    """graam-edge-local.cfg: this instance's values, as the shipped kamailio.cfg expects them."""
    try:
        address = ipaddress.ip_address(config.sip_address)
    except ValueError:
        raise SandboxError(
            f"the SIP edge listens on an IP address, not {config.sip_address!r}"
        ) from None
    if address.version != 4:
        raise SandboxError("the SIP edge sandbox listens on an IPv4 address")
    if not 0 < config.sip_port < 65536:
        raise SandboxError(f"SIP port {config.sip_port} out of range")
    if min(config.pike_density, config.ban_seconds, config.auth_failures, config.auth_window) < 1:
        raise SandboxError("pike density, ban time, failures and their window must be positive")
    socket_path = str(rpc_socket)
    if _UNSAFE & set(socket_path):
        raise SandboxError(f"control socket path {socket_path!r} holds a quote or '!'")
    values = {
        "EDGE_SIP_ADDR": str(address),
        "EDGE_SIP_PORT": str(config.sip_port),
        "EDGE_DB_URL": kamailio_db_url(config.database_url),
        "EDGE_RPC_SOCKET": socket_path,
        "EDGE_PIKE_DENSITY": str(config.pike_density),
        "EDGE_BAN_SECONDS": str(config.ban_seconds),
        "EDGE_AUTH_FAILURES": str(config.auth_failures),
        "EDGE_AUTH_WINDOW": str(config.auth_window),
    }
    lines = [f'#!substdef "!{name}!{value}!g"' for name, value in values.items()]
    return "# written by graam-pbx at every start of this edge\n" + "\n".join(lines) + "\n"


class KamailioSandbox:
    """One Kamailio process running the shipped edge configuration."""

    def __init__(self, config: KamailioConfig) -> None:
        self.config = config
        self.state_dir = config.state_dir.resolve()
        self.run_dir = self.state_dir / "run"
        self.rpc_socket = self.run_dir / "rpc.sock"
        self.log_file = self.state_dir / "kamailio.log"
        self._process: asyncio.subprocess.Process | None = None
        self.control = EdgeControl(self.rpc_socket)  # what the control plane uses too

    @property
    def sip_uri(self) -> str:
        return f"sip:{self.config.sip_address}:{self.config.sip_port}"

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    def write_config(self) -> Path:
        """The shipped kamailio.cfg and this instance's local values; the main file's path."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)  # the local file holds the database password
        main = self.state_dir / MAIN_CONF
        shutil.copyfile(self.config.conf_dir / MAIN_CONF, main)
        write_atomically(
            self.state_dir / LOCAL_CONF, local_conf(self.config, self.rpc_socket).encode()
        )
        return main

    def argv(self, main: Path) -> list[str]:
        return [
            self.config.binary,
            "-DD",  # foreground, no fork of a daemon: this object owns the process
            "-E",  # log to stderr, which is the state directory's log file
            "-f",
            str(main),
            "-Y",
            str(self.run_dir),
        ]

    async def check(self) -> str:
        """Kamailio's own check of the configuration (``-c``); its output when it passes."""
        main = self.write_config()
        proc = await asyncio.create_subprocess_exec(
            *self.argv(main)[:1],
            "-c",
            "-f",
            str(main),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        text = out.decode("utf-8", "replace")
        if proc.returncode != 0:
            raise SandboxError(f"kamailio refused its configuration: {_tail_text(text, 8)}")
        return text

    async def start(self, *, timeout: float = 20.0) -> None:  # noqa: ASYNC109
        """Start Kamailio and wait until it answers an OPTIONS on its SIP address."""
        if shutil.which(self.config.binary) is None:
            raise SandboxError(
                "the SIP edge needs kamailio: run `make system-deps` (Debian's kamailio and "
                "kamailio-postgres-modules)"
            )
        if self.pid is not None:
            return
        main = self.write_config()
        self.rpc_socket.unlink(missing_ok=True)
        with self.log_file.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                *self.argv(main),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own group: stop() ends every Kamailio process
            )
        try:
            await self._wait_ready(timeout)
        except BaseException:
            await self.stop()
            raise

    async def stop(self, *, grace: float = 10.0) -> bool:
        """Stop Kamailio (its whole process group); True when it was running."""
        process = self._process
        if process is None or process.returncode is not None:
            self._process = None
            return False
        await end_process(process, grace=grace, group=True)
        self._process = None
        return True

    async def rpc(self, method: str, *params: str | int) -> Any:
        """One JSON-RPC command over the edge's datagram socket; its ``result``."""
        try:
            return await self.control.call(method, *params)
        except EdgeRpcError as err:
            raise SandboxError(str(err)) from err

    async def _wait_ready(self, timeout: float) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process = self._process
            if process is None or process.returncode is not None:
                code = None if process is None else process.returncode
                raise SandboxError(
                    f"kamailio exited with {code} while starting: {_tail(self.log_file, 6)}"
                )
            answered = await asyncio.to_thread(
                sip_options, self.config.sip_address, self.config.sip_port, 0.3
            )
            if answered is not None and answered.startswith("SIP/2.0 200"):
                return
        raise SandboxError(
            f"kamailio did not answer on {self.sip_uri} within {timeout:.0f} s; "
            f"see {self.log_file}: {_tail(self.log_file, 4)}"
        )


def sip_options(host: str, port: int, timeout: float, *, source: str = "127.0.0.1") -> str | None:
    """Send one OPTIONS to ``host:port`` from ``source``; the first line of the answer, or
    None when none came within ``timeout``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        local_port = sock.getsockname()[1]
        branch = f"z9hG4bK{os.urandom(6).hex()}"
        message = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {source}:{local_port};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{source}>;tag={os.urandom(4).hex()}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {os.urandom(8).hex()}@{source}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.settimeout(timeout)
        sock.sendto(message.encode(), (host, port))
        try:
            data = sock.recv(65535)
        except TimeoutError:
            return None
        return data.decode("utf-8", "replace").split("\r\n", 1)[0]


def _tail_text(text: str, lines: int) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def _tail(path: Path, lines: int) -> str:
    try:
        return _tail_text(path.read_text(errors="replace"), lines)
    except OSError:
        return ""
