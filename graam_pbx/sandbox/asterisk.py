"""The Asterisk sandbox: Debian sid's asterisk package in a debootstrap chroot.

The root filesystem is made once and cached; each sandbox instance mounts it read-only under
an overlay in a private mount namespace, so several instances (``make run`` and a test
session) share one cache without sharing state, and every mount vanishes with the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
import shlex
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from graam_pbx.ami import AmiClient, AmiError, Message, open_tcp
from graam_pbx.sandbox.errors import SandboxError

log = logging.getLogger(__name__)

BASE_CONF_DIR = Path(__file__).resolve().parent.parent.parent / "asterisk_conf"
GENERATED_SUBDIR = "graam"
SOUNDS_IN_ROOT = "var/lib/asterisk/graam-sounds"  # render.SOUNDS_PATH inside the chroot
DEBIAN_SUITE = "sid"


@dataclass(frozen=True)
class AsteriskSandboxConfig:
    """Where the sandbox lives and what it listens on."""

    rootfs: Path
    state_dir: Path
    ami_port: int
    ami_username: str
    ami_secret: str | None = None  # generated and kept under state_dir when None
    sip_bind: str = "127.0.0.1"
    sip_port: int = 5060
    base_conf_dir: Path = BASE_CONF_DIR


@dataclass(frozen=True)
class SandboxInfo:
    """What a running sandbox offers the control plane."""

    pid: int
    ami_host: str
    ami_port: int
    ami_username: str
    ami_secret: str
    config_dir: Path  # where generated configuration goes (etc/graam)
    sounds_dir: Path  # tenants' prompts; Asterisk sees it as /var/lib/asterisk/graam-sounds
    version: str


class AsteriskSandbox:
    """One Asterisk instance over the cached root filesystem."""

    def __init__(self, config: AsteriskSandboxConfig) -> None:
        self.config = config
        state = config.state_dir.resolve()
        self.etc_dir = state / "etc"
        self.spool_dir = state / "spool"
        self.log_dir = state / "log"
        self.sounds_dir = state / "sounds"
        self.pid_file = state / "asterisk.pid"
        self.console_log = state / "console.log"
        self._state = state
        self._process: asyncio.subprocess.Process | None = None

    # ---- provisioning -------------------------------------------------------------------

    async def provision(self) -> None:
        """Install Debian sid's asterisk into the cached root once (about a minute)."""
        rootfs = self.config.rootfs
        if (rootfs / "usr/sbin/asterisk").exists():
            return
        _require_root()
        if shutil.which("debootstrap") is None:
            raise SandboxError(
                "Asterisk sandbox needs debootstrap: run `apt-get install debootstrap` "
                "or set GRAAM_AMI_HOST to use an existing Asterisk"
            )
        rootfs.parent.mkdir(parents=True, exist_ok=True)
        lock_path = rootfs.parent / f".{rootfs.name}.lock"
        with lock_path.open("w") as lock:
            # Another process (a second test session) may be installing the same cache.
            await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
            if (rootfs / "usr/sbin/asterisk").exists():
                return
            partial = rootfs.with_name(f"{rootfs.name}.partial")
            if partial.exists():
                await asyncio.to_thread(shutil.rmtree, partial)
            log.info(
                "asterisk sandbox: installing Debian %s asterisk into %s", DEBIAN_SUITE, rootfs
            )
            install_log = rootfs.parent / "debootstrap.log"
            with install_log.open("wb") as out:
                proc = await asyncio.create_subprocess_exec(
                    "debootstrap",
                    "--variant=minbase",
                    "--include=asterisk",
                    DEBIAN_SUITE,
                    str(partial),
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                    stdin=asyncio.subprocess.DEVNULL,
                )
                code = await proc.wait()
            if code != 0 or not (partial / "usr/sbin/asterisk").exists():
                tail = _tail(install_log, 5)
                raise SandboxError(
                    f"debootstrap of Debian {DEBIAN_SUITE} failed (exit {code}); "
                    f"see {install_log}: {tail}"
                )
            partial.rename(rootfs)

    # ---- lifecycle ----------------------------------------------------------------------

    def running_pid(self) -> int | None:
        """The pid of this instance's Asterisk when it runs, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if b"asterisk" in cmdline else None

    def secret(self) -> str:
        """The AMI secret: configured, or generated once and kept with the instance."""
        if self.config.ami_secret:
            return self.config.ami_secret
        path = self._state / "ami_secret"
        if path.exists():
            return path.read_text().strip()
        self._state.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(24)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(value + "\n")
        return value

    async def start(self, *, boot_timeout: float = 60.0) -> SandboxInfo:
        """Start Asterisk (or adopt the one already running) and wait for FullyBooted."""
        _require_root()
        await self.provision()
        pid = self.running_pid()
        if pid is None:
            self._write_config()
            pid = await self._spawn()
        version = await self._wait_booted(boot_timeout)
        return SandboxInfo(
            pid=pid,
            ami_host="127.0.0.1",
            ami_port=self.config.ami_port,
            ami_username=self.config.ami_username,
            ami_secret=self.secret(),
            config_dir=self.etc_dir / GENERATED_SUBDIR,
            sounds_dir=self.sounds_dir,
            version=version,
        )

    async def stop(self, *, grace: float = 15.0) -> bool:
        """Stop Asterisk by its pid; True when one was running."""
        pid = self.running_pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _alive(pid):
            if self._process is not None and self._process.pid == pid:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.2):
                        await self._process.wait()
            else:
                await asyncio.sleep(0.05)
        if _alive(pid):
            log.warning("asterisk sandbox: pid %s ignored SIGTERM, killing it", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if self._process is not None and self._process.pid == pid:
                await self._process.wait()
        self._process = None
        self.pid_file.unlink(missing_ok=True)
        return True

    async def cli(self, command: str) -> str:
        """Run one Asterisk CLI command inside the sandbox's namespace (``asterisk -rx``)."""
        pid = self.running_pid()
        if pid is None:
            raise SandboxError("Asterisk sandbox is not running: run `graam-pbx asterisk up`")
        proc = await asyncio.create_subprocess_exec(
            *self.console_argv(pid, command),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        return out.decode("utf-8", "replace")

    def console_argv(self, pid: int, command: str | None = None) -> list[str]:
        """argv that enters the sandbox's mount namespace and runs ``asterisk -r``."""
        argv = ["nsenter", "-t", str(pid), "-m", "chroot", str(self._root_mount), "asterisk"]
        return [*argv, "-rx", command] if command is not None else [*argv, "-r"]

    # ---- internals ----------------------------------------------------------------------

    @property
    def _root_mount(self) -> Path:
        return self._state / "root"

    def _write_config(self) -> None:
        for path in (
            self.etc_dir,
            self.spool_dir,
            self.log_dir,
            self.sounds_dir,
            self._root_mount,
            self._state / "upper",
            self._state / "work",
        ):
            path.mkdir(parents=True, exist_ok=True)
        generated = self.etc_dir / GENERATED_SUBDIR
        generated.mkdir(exist_ok=True)
        base = self.config.base_conf_dir
        for source in sorted(self.config.base_conf_dir.rglob("*")):
            if source.is_dir() or "templates" in source.relative_to(base).parts:
                continue  # templates are the renderer's, not Asterisk's
            target = self.etc_dir / source.relative_to(base)
            # Generated files that the control plane already wrote survive a restart.
            if target.parent == generated and target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        (self.etc_dir / "manager_graam.conf").write_text(
            f"port = {self.config.ami_port}\n\n"
            f"[{self.config.ami_username}]\n"
            f"secret = {self.secret()}\n"
            "deny = 0.0.0.0/0.0.0.0\n"
            "permit = 127.0.0.1/255.255.255.255\n"
            "read = all\n"
            "write = all\n"
            "writetimeout = 1000\n"
        )
        (self.etc_dir / "manager_graam.conf").chmod(0o600)
        (self.etc_dir / "pjsip_transports.conf").write_text(
            "[transport-udp]\n"
            "type = transport\n"
            "protocol = udp\n"
            f"bind = {self.config.sip_bind}:{self.config.sip_port}\n"
        )

    async def _spawn(self) -> int:
        rootfs = self.config.rootfs.resolve()
        root = self._root_mount
        q = shlex.quote
        script = "\n".join(
            [
                "set -e",
                f"mount -t overlay overlay -o lowerdir={q(str(rootfs))},"
                f"upperdir={q(str(self._state / 'upper'))},workdir={q(str(self._state / 'work'))} "
                f"{q(str(root))}",
                f"mount --bind {q(str(self.etc_dir))} {q(str(root / 'etc/asterisk'))}",
                f"mount --bind {q(str(self.spool_dir))} {q(str(root / 'var/spool/asterisk'))}",
                f"mount --bind {q(str(self.log_dir))} {q(str(root / 'var/log/asterisk'))}",
                f"mkdir -p {q(str(root / SOUNDS_IN_ROOT))}",
                f"mount --bind {q(str(self.sounds_dir))} {q(str(root / SOUNDS_IN_ROOT))}",
                f"mount -t proc proc {q(str(root / 'proc'))}",
                f"mount --rbind /dev {q(str(root / 'dev'))}",
                f"exec chroot {q(str(root))} /usr/sbin/asterisk -f -n",
            ]
        )
        # A stale overlay work dir from a killed instance makes the mount fail.
        shutil.rmtree(self._state / "work", ignore_errors=True)
        (self._state / "work").mkdir()
        console = self.console_log.open("ab")
        try:
            self._process = await asyncio.create_subprocess_exec(
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=console,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the control plane, which stops us in order
            )
        finally:
            console.close()
        self.pid_file.write_text(f"{self._process.pid}\n")
        return self._process.pid

    async def _wait_booted(self, boot_timeout: float) -> str:
        deadline = time.monotonic() + boot_timeout
        last_error = "no answer"
        while time.monotonic() < deadline:
            if self._process is not None and self._process.returncode is not None:
                raise SandboxError(
                    f"Asterisk sandbox exited with {self._process.returncode} while booting: "
                    f"{_tail(self.console_log, 3)}"
                )
            try:
                return await self._login_and_wait(max(0.5, deadline - time.monotonic()))
            except (OSError, AmiError, TimeoutError) as err:
                last_error = str(err) or type(err).__name__
                await asyncio.sleep(0.1)
        raise SandboxError(
            f"Asterisk sandbox did not boot within {boot_timeout:.0f} s ({last_error}); "
            f"see {self.console_log}"
        )

    async def _login_and_wait(self, budget: float) -> str:
        booted = asyncio.Event()

        def on_event(message: Message) -> None:
            if message.name == "FullyBooted":
                booted.set()

        transport = await open_tcp("127.0.0.1", self.config.ami_port, timeout=1.0)
        client = await AmiClient.connect(
            transport,
            self.config.ami_username,
            self.secret(),
            on_event=on_event,
            action_timeout=5.0,
            login_timeout=2.0,
        )
        try:
            async with asyncio.timeout(budget):
                await booted.wait()
            version = (await client.command("core show version")).strip()
            return version.split(" built by ", 1)[0]
        finally:
            await client.close()


def _require_root() -> None:
    if os.geteuid() != 0:
        raise SandboxError(
            "Asterisk sandbox needs root: run as root or set GRAAM_AMI_HOST to use an existing "
            "Asterisk"
        )


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return status.rsplit(")", 1)[-1].split()[0] != "Z"


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])
