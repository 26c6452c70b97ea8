"""A busy Asterisk is not a dead one: the real Asterisk keeps our connection through a long
action (a reload, an Originate), although the Ping behind it waits for seconds."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from graam_pbx.ami import AmiSupervisor, AmiTransport, FrameDecoder, open_tcp
from tests.ami_connection import connected_ami
from tests.conftest import Asterisk

CONTEXT = "graam-test-busy"
HOLD_SECONDS = 2  # how long Asterisk is kept busy: many times the ping timeout below
PING_TIMEOUT = 0.2


class TappedTransport:
    """A real TCP transport that notes, in order, every action written and every answer read."""

    def __init__(self, inner: AmiTransport) -> None:
        self._inner = inner
        self._sent = FrameDecoder()  # what we write: actions (no greeting on this side)
        self._read = FrameDecoder()
        self.log: list[tuple[str, str, str]] = []  # ("sent", action, id) / ("answered", "", id)
        self.changed = asyncio.Event()

    async def read(self) -> bytes:
        data = await self._inner.read()
        for message in self._read.feed(data):
            if message.is_response and message.action_id:
                self.log.append(("answered", "", message.action_id))
                self.changed.set()
        return data

    def write(self, data: bytes) -> None:
        for message in self._sent.feed(data):
            self.log.append(("sent", message.get("Action", ""), message.get("ActionID", "")))
            self.changed.set()
        self._inner.write(data)

    async def drain(self) -> None:
        await self._inner.drain()

    def close(self) -> None:
        self._inner.close()

    async def wait_closed(self) -> None:
        await self._inner.wait_closed()

    def sent(self, action: str) -> list[str]:
        return [
            action_id for kind, name, action_id in self.log if kind == "sent" and name == action
        ]

    def position(self, kind: str, action_id: str) -> int:
        return self.log.index(next(e for e in self.log if e[0] == kind and e[2] == action_id))


@pytest.fixture
async def tapped_ami(
    asterisk: Asterisk,
) -> AsyncIterator[tuple[AmiSupervisor, list[TappedTransport]]]:
    transports: list[TappedTransport] = []

    async def factory(host: str, port: int, timeout: float) -> AmiTransport:
        transport = TappedTransport(await open_tcp(host, port, timeout))
        transports.append(transport)
        return transport

    config = dataclasses.replace(
        asterisk.ami_config(), ping_interval=0.1, ping_timeout=PING_TIMEOUT, action_timeout=10.0
    )
    async with connected_ami(config, timeout=20, transport_factory=factory) as (supervisor, _):
        yield supervisor, transports


async def test_a_ping_behind_a_long_action_keeps_the_connection(
    tapped_ami: tuple[AmiSupervisor, list[TappedTransport]],
) -> None:
    supervisor, transports = tapped_ami
    await supervisor.command(f"dialplan add extension s,1,Wait({HOLD_SECONDS}) into {CONTEXT}")
    await supervisor.command(f"dialplan add extension s,2,Answer() into {CONTEXT}")
    [transport] = transports
    client = await supervisor.client()
    reconnects = supervisor.state.reconnects
    reconnects_metric = REGISTRY.get_sample_value("graam_ami_reconnects_total")
    try:
        # A synchronous Originate holds this AMI session until the call answers, as a
        # `module reload res_pjsip.so` waiting on DNS does: Asterisk answers nothing else on
        # the connection meanwhile, our Pings included.
        answer = await supervisor.action(
            "Originate",
            {
                "Channel": f"Local/s@{CONTEXT}",
                "Application": "Hangup",
                "Async": "false",
                "Timeout": str((HOLD_SECONDS + 5) * 1000),
            },
            timeout=HOLD_SECONDS + 8,
        )
        assert answer.get("Response") == "Success"
        [originate] = transport.sent("Originate")
        answered = transport.position("answered", originate)
        # Pings went out while the Originate ran, and each was answered only after it.
        waiting = [
            ping
            for ping in transport.sent("Ping")
            if transport.position("sent", originate) < transport.position("sent", ping) < answered
        ]
        assert waiting
        async with asyncio.timeout(5):
            while not all(
                any(e == ("answered", "", ping) for e in transport.log) for ping in waiting
            ):
                transport.changed.clear()
                await transport.changed.wait()
        assert all(transport.position("answered", ping) > answered for ping in waiting)
        # The same connection throughout: no reconnect, no resync.
        assert transports == [transport]
        assert await supervisor.client() is client and not client.closed
        assert supervisor.state.reconnects == reconnects
        assert REGISTRY.get_sample_value("graam_ami_reconnects_total") == reconnects_metric
        # And the connection still notices silence once Asterisk is free again.
        assert (await supervisor.action("Ping")).get("Ping") == "Pong"
    finally:
        await supervisor.command(f"dialplan remove context {CONTEXT}")
