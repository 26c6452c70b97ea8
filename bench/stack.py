"""What the benches that drive a real Asterisk start alike: a sandbox of their own and the
AMI settings that reach it."""

from __future__ import annotations

import socket
from pathlib import Path

from graam_pbx.ami.supervisor import AmiConfig
from graam_pbx.sandbox.asterisk import AsteriskSandbox, AsteriskSandboxConfig, SandboxInfo
from graam_pbx.sandbox.ports import free_port
from graam_pbx.settings import Settings


def asterisk_sandbox(
    state_dir: Path, sip_port: int | None = None, http_port: int | None = None
) -> AsteriskSandbox:
    """An Asterisk of the bench's own under ``state_dir``, on free loopback ports (its HTTP
    server, browser phones' WebSocket, on ``http_port``; none by default)."""
    return AsteriskSandbox(
        AsteriskSandboxConfig(
            rootfs=Settings().asterisk_rootfs,
            state_dir=state_dir,
            ami_port=free_port(),
            ami_username="bench",
            sip_port=sip_port if sip_port is not None else free_port(socket.SOCK_DGRAM),
            http_port=http_port,
        )
    )


def ami_config(
    info: SandboxInfo,
    *,
    ping_interval: float = 5,
    ping_timeout: float = 10,
    action_timeout: float = 30,
) -> AmiConfig:
    """The started sandbox's AMI, reconnected at once if it drops."""
    return AmiConfig(
        host="127.0.0.1",
        port=info.ami_port,
        username=info.ami_username,
        secret=info.ami_secret,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        action_timeout=action_timeout,
        connect_timeout=10,
        backoff_max=1,
    )
