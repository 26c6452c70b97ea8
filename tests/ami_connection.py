"""A test's own AMI connection (its own bus), beside the one the control plane holds."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from graam_pbx.ami import AmiConfig, AmiSupervisor, EventBus


@contextlib.asynccontextmanager
async def connected_ami(
    config: AmiConfig, *, timeout: float, **options: Any
) -> AsyncIterator[tuple[AmiSupervisor, EventBus]]:
    """An AMI supervisor (``options`` as ``AmiSupervisor`` takes them) connected within
    ``timeout`` seconds, and its bus; both stopped on the way out."""
    bus = EventBus()
    await bus.start()
    ami = AmiSupervisor(config, bus, **options)
    await ami.start()
    try:
        await ami.wait_connected(timeout=timeout)
        yield ami, bus
    finally:
        await ami.stop()
        await bus.stop()
