"""A process that asks Asterisk for some events only (``EventBus.only``, as API processes do)
reads those alone, against the session's real Asterisk; its actions' answers are whole."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from graam_pbx.ami import AmiSupervisor, EventBus, Message
from tests.conftest import Asterisk

TIMEOUT = 20.0


class SeenBus(EventBus):
    """A real bus that also keeps the name of every event its connection read."""

    def __init__(self, only: frozenset[str] | None = None) -> None:
        super().__init__(only=only)
        self.seen: list[Message] = []
        self.changed = asyncio.Event()

    def publish(self, message: Message) -> None:
        self.seen.append(message)
        self.changed.set()
        super().publish(message)

    async def until_user_event(self, marker: str) -> list[str]:
        """The names of the events read up to the UserEvent carrying ``marker``."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                names = [message.name for message in self.seen]
                for index, message in enumerate(self.seen):
                    if message.name == "UserEvent" and message.get("Marker") == marker:
                        return names[: index + 1]
                self.changed.clear()
                await self.changed.wait()


async def _connected(asterisk: Asterisk, bus: SeenBus) -> AmiSupervisor:
    supervisor = AmiSupervisor(asterisk.ami_config(), bus)
    await supervisor.start()
    await supervisor.wait_connected(timeout=TIMEOUT)
    return supervisor


@pytest.fixture
async def filtered(asterisk: Asterisk) -> AsyncIterator[tuple[AmiSupervisor, SeenBus]]:
    bus = SeenBus(only=frozenset({"UserEvent"}))
    await bus.start()
    supervisor = await _connected(asterisk, bus)
    yield supervisor, bus
    await supervisor.stop()
    await bus.stop()


@pytest.fixture
async def control(asterisk: Asterisk) -> AsyncIterator[tuple[AmiSupervisor, SeenBus]]:
    bus = SeenBus()
    await bus.start()
    supervisor = await _connected(asterisk, bus)
    yield supervisor, bus
    await supervisor.stop()
    await bus.stop()


async def test_a_filtered_connection_reads_only_the_events_it_asked_for(
    filtered: tuple[AmiSupervisor, SeenBus], control: tuple[AmiSupervisor, SeenBus]
) -> None:
    ami, bus = filtered
    watcher, everything = control
    heard: list[Message] = []
    bus.subscribe("test-user-events", ["UserEvent"], heard.append)
    bus.seen.clear()
    everything.seen.clear()
    marker = secrets.token_hex(4)
    # A reload publishes a "Reload" event to every connection that asks for it; then the
    # marker, which comes after it on every connection.
    await watcher.action("Reload", {"Module": "app_queue.so"})
    await ami.action("UserEvent", {"UserEvent": "graam-filter", "Marker": marker})
    unfiltered = await everything.until_user_event(marker)
    read = await bus.until_user_event(marker)
    assert "Reload" in unfiltered, unfiltered
    assert set(read) == {"UserEvent"}, read
    async with asyncio.timeout(TIMEOUT):
        while not any(message.get("Marker") == marker for message in heard):
            await asyncio.sleep(0.01)
    # An action's answer, its list of items included, is never filtered.
    endpoints = await ami.action_list("PJSIPShowEndpoints", {})
    assert any(item.name == "EndpointList" for item in endpoints), endpoints
    assert (await ami.action("Ping")).get("Ping") == "Pong"
