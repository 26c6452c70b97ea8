"""The Asterisk sandbox: Debian sid's asterisk package in a debootstrap chroot.

The root filesystem is made once and cached; each sandbox instance mounts it read-only under
an overlay in a private mount namespace, so several instances (``make run`` and a test
session) share one cache without sharing state, and every mount vanishes with the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import logging
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from graam_pbx.ami import AmiClient, AmiError, Message, open_tcp
from graam_pbx.files import write_atomically
from graam_pbx.sandbox.errors import SandboxError

log = logging.getLogger(__name__)

BASE_CONF_DIR = Path(__file__).resolve().parent.parent.parent / "asterisk_conf"
GENERATED_SUBDIR = "graam"
SOUNDS_IN_ROOT = "var/lib/asterisk/graam-sounds"  # render.SOUNDS_PATH inside the chroot
DEBIAN_SUITE = "sid"
WRITTEN = "; written by graam-pbx at every start of this sandbox\n"
WEBSOCKET_PATH = "/ws"  # res_http_websocket's path of PJSIP's WebSocket transport
# Debian packages of the cached root: Asterisk, and the hold music of the `default` class
# (musiconhold.conf) in GSM, the format Debian's asterisk package recommends.
ROOT_PACKAGES = ("asterisk", "asterisk-moh-opsound-gsm")


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
    # Asterisk's HTTP server on sip_bind: browser phones' WebSocket (/ws). None: off.
    http_port: int | None = None
    sip_media_address: str | None = None  # where RTP binds and what SDP announces; sip_bind
    systemname: str = "graam"  # asterisk.conf's systemname: it prefixes uniqueids (CDR keys)
    # Behind the SIP edge (docs/sip-edge.md): phones' endpoints keep their registered
    # contacts (rewrite_contact = no), as every request comes from the edge's address.
    behind_edge: bool = False
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
        self.state_dir = state
        self._state = state
        self._process: asyncio.subprocess.Process | None = None

    # ---- provisioning -------------------------------------------------------------------

    async def provision(self) -> None:
        """Install Debian sid's asterisk into the cached root once (about a minute); add
        the packages a root made by an older version lacks."""
        rootfs = self.config.rootfs
        installed = (rootfs / "usr/sbin/asterisk").exists()
        if installed and not await asyncio.to_thread(missing_packages, rootfs):
            return
        _require_root()
        if installed:
            await _add_packages(rootfs)
            return
        if shutil.which("debootstrap") is None:
            raise SandboxError(
                "Asterisk sandbox needs debootstrap: run `apt-get install debootstrap` "
                "or set GRAAM_AMI_HOST to use an existing Asterisk"
            )
        async with _root_lock(rootfs):
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
                    f"--include={','.join(ROOT_PACKAGES)}",
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
        # The instance holds secrets (the AMI secret, generated SIP digests, voicemail PINs,
        # carrier passwords, the FastAGI keys) and voicemail and logs: no other user may even
        # look in. Asterisk runs as root inside the chroot (its own ``asterisk`` user's ids
        # mean other groups on the host), so owner-only modes are enough for it.
        for directory in (self._state, self.etc_dir, generated):
            directory.chmod(0o700)
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
            target.chmod(0o600)
        # Owner-only from its first byte, before the secret is in it.
        write_atomically(
            self.etc_dir / "manager_graam.conf",
            f"port = {self.config.ami_port}\n\n"
            f"[{self.config.ami_username}]\n"
            f"secret = {self.secret()}\n"
            "deny = 0.0.0.0/0.0.0.0\n"
            "permit = 127.0.0.1/255.255.255.255\n"
            "read = all\n"
            "write = all\n"
            "writetimeout = 1000\n".encode(),
        )
        (self.etc_dir / "pjsip_transports.conf").write_text(self._transports())
        (self.etc_dir / "http.conf").write_text(self._http())
        self._write_systemname()

    def _write_systemname(self) -> None:
        """Each node's own systemname: several nodes feeding one database never share a
        uniqueid, so their CDR keys never collide."""
        name = self.config.systemname
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}", name):
            raise SandboxError(f"systemname {name!r}: letters, digits, '-' and '_' only")
        path = self.etc_dir / "asterisk.conf"
        text = re.sub(r"(?m)^systemname = .*$", f"systemname = {name}", path.read_text())
        path.write_text(text)

    def _media_address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """Where RTP binds and what SDP announces: the media address, else the SIP address."""
        bind = _ip(self.config.sip_bind, "GRAAM_SIP_BIND")
        media = _ip(
            self.config.sip_media_address or self.config.sip_bind, "GRAAM_SIP_MEDIA_ADDRESS"
        )
        if media.is_unspecified:
            raise SandboxError(
                f"GRAAM_SIP_BIND is {bind}: set GRAAM_SIP_MEDIA_ADDRESS to the address phones "
                "and carriers send RTP to"
            )
        return media

    def _transports(self) -> str:
        """pjsip_transports.conf: the SIP transport and the media address of every trunk.

        Both are explicit IP addresses, so Asterisk never looks for "our IP" (a name lookup of
        the host's own name, then of A.ROOT-SERVERS.NET) when it sets up a call's RTP. Phones
        get the same address from Postgres (``_environment``).
        """
        bind = _ip(self.config.sip_bind, "GRAAM_SIP_BIND")
        media = self._media_address()
        host = f"[{bind}]" if bind.version == 6 else str(bind)
        endpoint = f"media_address = {media}\nbind_rtp_to_media_address = yes\n"
        return (
            f"{WRITTEN}"
            "[transport-udp]\n"
            "type = transport\n"
            "protocol = udp\n"
            f"bind = {host}:{self.config.sip_port}\n\n"
            "[transport-ws]\n"
            "type = transport\n"
            "protocol = ws\n"
            f"bind = {host}\n\n"
            f"[graam-trunk](!)\n{endpoint}"
        )

    def recordings_spool(self) -> Path:
        """Where MixMonitor's recordings land (graam_pbx/recordings/spool.py), as this host
        sees the sandbox's /var/spool/asterisk/monitor/graam."""
        return self.spool_dir / "monitor" / "graam"

    def websocket_url(self) -> str | None:
        """Where browser phones reach this sandbox's SIP WebSocket; None: HTTP is off."""
        port = self.config.http_port
        if port is None:
            return None
        bind = _ip(self.config.sip_bind, "GRAAM_SIP_BIND")
        host = f"[{bind}]" if bind.version == 6 else str(bind)
        return f"ws://{host}:{port}{WEBSOCKET_PATH}"

    def _http(self) -> str:
        """http.conf: the HTTP server of browser phones' WebSocket, on the SIP address."""
        port = self.config.http_port
        if port is None:
            return f"{WRITTEN}[general]\nenabled = no\n"
        bind = _ip(self.config.sip_bind, "GRAAM_SIP_BIND")
        return f"{WRITTEN}[general]\nenabled = yes\nbindaddr = {bind}\nbindport = {port}\n"

    def _environment(self) -> dict[str, str]:
        """Asterisk's environment: ours, and what makes phones' endpoints this node's own.

        Phones' endpoints are rows of the view ps_endpoints; the view takes the node (its
        systemname: the node sees its tenants' devices only), its media address and whether
        it is behind the SIP edge from its connection's settings graam.node,
        graam.media_address and graam.behind_edge, which libpq sends from PGOPTIONS at each
        connect of res_config_pgsql (docs/realtime-sip.md).
        """
        options = (
            f"-c graam.node={self.config.systemname} -c graam.media_address={self._media_address()}"
        )
        if self.config.behind_edge:
            options += " -c graam.behind_edge=on"
        return {**os.environ, "PGOPTIONS": options}

    def _write_name_service(self) -> None:
        """/etc/hosts and /etc/resolv.conf of this instance, in its overlay's upper layer.

        The cached root has no hosts file (debootstrap's minbase writes none), and the host's
        resolv.conf of the day it was made. Without a hosts file, every lookup of the machine's
        own name went to that DNS server and waited for its answer or its time-out, holding a
        SIP thread. Here the machine's name and
        ``localhost`` are loopback, and a name beyond these asks 127.0.0.1 once, for a second
        at most: the sandbox talks to loopback only.
        """
        etc = self._state / "upper" / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        host = socket.gethostname()
        names = ["localhost", host, host.split(".", 1)[0]] if _HOST_NAME.fullmatch(host) else []
        header = "# written by graam-pbx at every start of this sandbox\n"
        for name in ("hosts", "resolv.conf"):
            (etc / name).unlink(missing_ok=True)  # a symbolic link would lead elsewhere
        (etc / "hosts").write_text(
            f"{header}127.0.0.1\t{' '.join(dict.fromkeys(['localhost', *names]))}\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n"
        )
        (etc / "resolv.conf").write_text(
            f"{header}nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
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
        self._write_name_service()
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
                env=self._environment(),
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


@contextlib.asynccontextmanager
async def _root_lock(rootfs: Path) -> AsyncIterator[None]:
    """The cache's lock: another process (a second test session) may be installing into
    the same root."""
    rootfs.parent.mkdir(parents=True, exist_ok=True)
    with (rootfs.parent / f".{rootfs.name}.lock").open("w") as lock:
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        yield


def missing_packages(rootfs: Path) -> list[str]:
    """The ROOT_PACKAGES that the root's dpkg does not list as installed."""
    try:
        status = (rootfs / "var/lib/dpkg/status").read_text(errors="replace")
    except OSError:
        return list(ROOT_PACKAGES)
    installed = set()
    for stanza in status.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Status") == "install ok installed" and "Package" in fields:
            installed.add(fields["Package"])
    return [name for name in ROOT_PACKAGES if name not in installed]


async def _add_packages(rootfs: Path) -> None:
    """Install the missing ROOT_PACKAGES into an existing root, under the cache's lock.

    Instances running over the root see the new files appear (overlay's lower layer only
    gains files); nothing they use changes.
    """
    async with _root_lock(rootfs):
        missing = await asyncio.to_thread(missing_packages, rootfs)
        if not missing:
            return
        log.info("asterisk sandbox: adding %s to %s", " ".join(missing), rootfs)
        install_log = rootfs.parent / "apt.log"
        environment = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "DEBIAN_FRONTEND": "noninteractive",
            "LC_ALL": "C",
        }
        with install_log.open("wb") as out:
            # Like debootstrap, which made the root, apt ignores the Release file's expiry
            # (signatures are still checked): a mirror lagging the clock must not block it.
            apt = ("apt-get", "-o", "Acquire::Check-Valid-Until=false")
            for step, arguments in (
                ("update", ()),
                ("install", ("-y", "--no-install-recommends", *missing)),
            ):
                proc = await asyncio.create_subprocess_exec(
                    "chroot",
                    str(rootfs),
                    *apt,
                    step,
                    *arguments,
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                    stdin=asyncio.subprocess.DEVNULL,
                    env=environment,
                )
                code = await proc.wait()
                if code != 0:
                    raise SandboxError(
                        f"adding {' '.join(missing)} to the Asterisk sandbox root failed "
                        f"(apt-get {step} exit {code}); "
                        f"see {install_log}: "
                        f"{_tail(install_log, 5)}"
                    )
        still_missing = await asyncio.to_thread(missing_packages, rootfs)
        if still_missing:
            raise SandboxError(
                f"{' '.join(still_missing)} still missing from {rootfs} after "
                f"apt-get install; see {install_log}"
            )


_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?")


def _ip(value: str, setting: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise SandboxError(f"{setting} must be an IP address, not {value!r}") from None


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
