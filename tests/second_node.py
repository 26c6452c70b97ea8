"""A second real Asterisk for the tests of several nodes: started on its own loopback address,
stopped whatever the test meets.

The session's Asterisk is node ``local``; a test that needs another node starts one here and
registers it (through the API, or by hand) under the systemname it gives.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from graam_pbx.sandbox import SandboxError
from graam_pbx.sandbox.asterisk import (
    BASE_CONF_DIR,
    AsteriskSandbox,
    AsteriskSandboxConfig,
    SandboxInfo,
)
from graam_pbx.sandbox.ports import free_port
from graam_pbx.settings import Settings
from tests.e2e.sipp import free_udp_port


@contextlib.asynccontextmanager
async def second_node(
    state_dir: Path,
    address: str,
    systemname: str,
    *,
    base_conf_dir: Path = BASE_CONF_DIR,
) -> AsyncIterator[tuple[AsteriskSandbox, SandboxInfo]]:
    """An Asterisk sandbox with SIP on ``address`` (127.0.0.0/8) and a free port, its AMI on
    a free port, named ``systemname`` (it prefixes its uniqueids, hence its CDR keys)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((address, 0))  # loopback is 127.0.0.0/8: fails loudly if not
    sip_port = free_udp_port(address)
    sandbox = AsteriskSandbox(
        AsteriskSandboxConfig(
            rootfs=Settings().asterisk_rootfs,
            state_dir=state_dir,
            ami_port=free_port(),
            ami_username=f"graam-{systemname}",
            sip_bind=address,
            sip_port=sip_port,
            systemname=systemname,
            base_conf_dir=base_conf_dir,
        )
    )
    try:
        try:
            info = await sandbox.start()
        except SandboxError as err:
            pytest.fail(f"second Asterisk sandbox unavailable: {err}")
        yield sandbox, info
    finally:
        await sandbox.stop()
