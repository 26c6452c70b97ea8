from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest
from pydantic import SecretStr

from graam_pbx.ami import actions
from graam_pbx.ami.bus import RESYNC_EVENT, EventBus
from graam_pbx.ami.errors import AmiDisconnected, AmiNotConnected, AmiTimeout
from graam_pbx.ami.protocol import Message
from graam_pbx.ami.supervisor import AmiConfig, AmiSupervisor
from graam_pbx.settings import Settings

from .scripted import (
    AMI_SECRET,
    AMI_USER,
    FakeAsterisk,
    ScriptedTransport,
    TransportFactory,
    hang_up,
    metric,
    response,
)

CONFIG = AmiConfig(
    host="pbx.test",
    port=5038,
    username=AMI_USER,
    secret=AMI_SECRET,
    ping_interval=0.05,
    ping_timeout=0.5,
    action_timeout=0.5,
    connect_timeout=0.2,
    backoff_max=0.05,
    backoff_initial=0.01,
)


class Resyncs:
    """Records the resync signals a supervisor publishes on its bus."""

    def __init__(self) -> None:
        self.restarted: list[bool] = []
        self._changed = asyncio.Event()

    async def __call__(self, message: Message) -> None:
        self.restarted.append(message["Restarted"] == "yes")
        self._changed.set()

    async def wait_for(self, count: int, within: float = 3.0) -> list[bool]:
        async with asyncio.timeout(within):
            while len(self.restarted) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.restarted


@asynccontextmanager
async def supervised(
    factory: TransportFactory, config: AmiConfig = CONFIG
) -> AsyncIterator[tuple[AmiSupervisor, Resyncs]]:
    bus = EventBus()
    resyncs = Resyncs()
    bus.subscribe("resync", [RESYNC_EVENT], resyncs)
    await bus.start()
    supervisor = AmiSupervisor(config, bus, transport_factory=factory)
    await supervisor.start()
    try:
        yield supervisor, resyncs
    finally:
        await supervisor.stop()
        await bus.stop()


async def test_first_connection_publishes_a_restarted_resync() -> None:
    factory = TransportFactory(FakeAsterisk(uptime=100))
    async with supervised(factory) as (supervisor, resyncs):
        await supervisor.wait_connected(2)
        assert await resyncs.wait_for(1) == [True]

        state = supervisor.state
        assert state.connected
        assert state.since is not None and state.since.tzinfo is not None
        assert state.asterisk_startup is not None
        assert metric("graam_ami_connected", node="local") == 1
        pong = await supervisor.action("Ping")
        assert pong["Ping"] == "Pong"

    assert metric("graam_ami_connected", node="local") == 0
    assert not supervisor.state.connected


async def test_resync_says_whether_asterisk_restarted() -> None:
    booted = time.monotonic() - 100
    same_asterisk = FakeAsterisk(started_at=booted)
    factory = TransportFactory(same_asterisk, same_asterisk, FakeAsterisk(uptime=5))
    async with supervised(factory) as (_, resyncs):
        first = await factory.wait_opened(1)
        await resyncs.wait_for(1)
        first.hang_up()

        second = await factory.wait_opened(2)
        await resyncs.wait_for(2)
        second.hang_up()

        await factory.wait_opened(3)
        assert await resyncs.wait_for(3) == [True, False, True]


async def test_unanswered_ping_drops_and_reconnects() -> None:
    factory = TransportFactory(FakeAsterisk(answer_ping=False), FakeAsterisk())
    config = replace(CONFIG, ping_interval=0.05, ping_timeout=0.1)
    before = metric("graam_ami_reconnects_total")
    async with supervised(factory, config) as (supervisor, resyncs):
        first = await factory.wait_opened(1)
        await first.wait_for_action("Ping")

        await factory.wait_opened(2)
        await resyncs.wait_for(2)

        assert first.closed
        assert first.sent("Logoff") == []
        assert supervisor.state.reconnects >= 1
    assert metric("graam_ami_reconnects_total") >= before + 1


async def test_in_flight_action_is_never_sent_again_after_reconnect() -> None:
    factory = TransportFactory(FakeAsterisk(replies={"Originate": hang_up}), FakeAsterisk())
    async with supervised(factory) as (supervisor, resyncs):
        await supervisor.wait_connected(2)

        with pytest.raises(AmiDisconnected):
            await actions.originate(
                supervisor, "PJSIP/100", channel_id="call-7", context="c", exten="1"
            )

        second = await factory.wait_opened(2)
        await resyncs.wait_for(2)
        await second.wait_for_action("Ping")

    first = factory.transports[0]
    assert len(first.sent("Originate")) == 1
    assert second.sent("Originate") == []


async def test_missing_fully_booted_counts_as_a_failed_attempt() -> None:
    factory = TransportFactory(FakeAsterisk(send_fully_booted=False), FakeAsterisk())
    async with supervised(factory) as (supervisor, resyncs):
        first = await factory.wait_opened(1)
        await factory.wait_opened(2)
        assert await resyncs.wait_for(1) == [True]

        assert first.closed
        assert supervisor.state.connected


async def test_refused_login_is_retried() -> None:
    factory = TransportFactory(FakeAsterisk(accept_login=False), FakeAsterisk())
    async with supervised(factory) as (supervisor, resyncs):
        await resyncs.wait_for(1)

        assert len(factory.transports) == 2
        assert supervisor.state.reconnects == 1


async def test_not_connected_raises_and_sends_nothing() -> None:
    factory = TransportFactory(FakeAsterisk(accept_login=False))
    async with supervised(factory) as (supervisor, _):
        await factory.wait_opened(1)

        with pytest.raises(AmiNotConnected):
            supervisor.client_or_raise()
        with pytest.raises(AmiNotConnected):
            await supervisor.action("Ping")
        with pytest.raises(AmiNotConnected):
            await supervisor.wait_connected(0.05)
        assert supervisor.state.last_error is not None


async def test_stop_logs_off_and_closes() -> None:
    factory = TransportFactory(FakeAsterisk())
    async with supervised(factory) as (supervisor, _):
        client = await supervisor.client(timeout=2)
        transport: ScriptedTransport = factory.transports[0]

    assert client.closed
    assert transport.sent("Logoff")
    assert transport.closed
    assert supervisor.state.asterisk_version == "22.1.0"


def test_config_from_settings() -> None:
    from_env, from_sandbox = AMI_SECRET, AMI_SECRET + "-sandbox"
    settings = Settings(ami_host=None, ami_secret=SecretStr(from_env), ami_ping_interval=7.0)

    config = AmiConfig.from_settings(settings)

    assert config.host == "127.0.0.1"
    assert config.secret == from_env
    assert config.ping_interval == 7.0
    assert from_env not in repr(config)
    assert AmiConfig.from_settings(settings, secret=from_sandbox).secret == from_sandbox
    with pytest.raises(ValueError, match="secret"):
        AmiConfig.from_settings(Settings(ami_secret=None))


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    config = replace(CONFIG, backoff_initial=0.2, backoff_max=5.0)
    supervisor = AmiSupervisor(config, EventBus())

    first = [supervisor._backoff(0) for _ in range(50)]
    later = [supervisor._backoff(20) for _ in range(50)]

    assert all(0.1 <= delay <= 0.2 for delay in first)
    assert all(2.5 <= delay <= 5.0 for delay in later)


class SerialAsterisk(FakeAsterisk):
    """Runs a connection's actions one after the other, as Asterisk does: while a held
    ``Command`` (a long reload) runs, later actions wait and nothing is written."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[tuple[ScriptedTransport, Message]] = []
        self.running: Message | None = None

    def __call__(self, transport: ScriptedTransport, action: Message) -> None:
        if self.running is not None:
            self.held.append((transport, action))
        elif action["Action"] == "Command":
            self.running = action
        else:
            super().__call__(transport, action)

    def finish(self, transport: ScriptedTransport) -> None:
        """The long action ends: its answer, then every action that waited behind it."""
        assert self.running is not None
        transport.feed(response(self.running, Output="Module 'res_pjsip.so' reloaded."))
        self.running = None
        held, self.held = self.held, []
        for waiting_transport, action in held:
            self(waiting_transport, action)


async def test_a_ping_behind_a_long_reload_does_not_drop_the_connection() -> None:
    asterisk = SerialAsterisk()
    factory = TransportFactory(asterisk, FakeAsterisk())
    config = replace(CONFIG, ping_interval=0.05, ping_timeout=0.1)
    before = metric("graam_ami_reconnects_total")
    async with supervised(factory, config) as (supervisor, _resyncs):
        await supervisor.wait_connected(2)
        transport = factory.transports[0]
        reload = asyncio.ensure_future(supervisor.command("module reload res_pjsip.so", timeout=5))
        await transport.wait_for_action("Command")
        pings = len(transport.sent("Ping"))
        await transport.wait_for_action("Ping", count=pings + 1)
        # Ten times the ping timeout pass with the Ping unanswered: the connection stays.
        with pytest.raises(TimeoutError):
            await factory.wait_opened(2, within=10 * config.ping_timeout)
        assert not transport.closed

        asterisk.finish(transport)
        assert "reloaded" in await reload
        await transport.wait_for_action("Ping", count=pings + 2)
        assert len(factory.transports) == 1 and not transport.closed
        assert supervisor.state.reconnects == 0
    assert metric("graam_ami_reconnects_total") == before


async def test_a_ping_behind_an_action_past_its_own_timeout_drops_the_connection() -> None:
    factory = TransportFactory(SerialAsterisk(), FakeAsterisk())
    config = replace(CONFIG, ping_interval=0.05, ping_timeout=0.1)
    async with supervised(factory, config) as (supervisor, resyncs):
        await supervisor.wait_connected(2)
        first = factory.transports[0]
        with pytest.raises(AmiTimeout):
            await supervisor.command("module reload res_pjsip.so", timeout=0.3)
        await factory.wait_opened(2)
        await resyncs.wait_for(2)
        assert first.closed
