"""A process that asks Asterisk for some events only (``EventBus.only``, as API processes do)
reads those alone, against the session's real Asterisk; its actions' answers are whole."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

import pytest

from graam_pbx.ami import AmiSupervisor, EventBus, Message
from tests.conftest import Asterisk
from tests.waiting import until

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

    async def until_event(self, name: str, **fields: str) -> list[str]:
        """The names of the events read up to the first ``name`` event carrying ``fields``."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                names = [message.name for message in self.seen]
                for index, message in enumerate(self.seen):
                    if message.name == name and all(
                        message.get(key) == value for key, value in fields.items()
                    ):
                        return names[: index + 1]
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def seen_connection(
    asterisk: Asterisk, only: frozenset[str] | None
) -> AsyncIterator[tuple[AmiSupervisor, SeenBus]]:
    """An AMI connection of its own to the session's Asterisk, asking for ``only``."""
    bus = SeenBus(only)
    await bus.start()
    supervisor = AmiSupervisor(asterisk.ami_config(), bus)
    await supervisor.start()
    try:
        await supervisor.wait_connected(timeout=TIMEOUT)
        yield supervisor, bus
    finally:
        await supervisor.stop()
        await bus.stop()


@pytest.fixture
async def filtered(asterisk: Asterisk) -> AsyncIterator[tuple[AmiSupervisor, SeenBus]]:
    async with seen_connection(asterisk, frozenset({"UserEvent"})) as connection:
        yield connection


@pytest.fixture
async def control(asterisk: Asterisk) -> AsyncIterator[tuple[AmiSupervisor, SeenBus]]:
    async with seen_connection(asterisk, None) as connection:
        yield connection


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
    # A reload publishes a "Reload" event to every connection that asks for it. Asterisk
    # sends it through its message bus, later than the reload's answer: the marker is sent
    # once the unfiltered connection has read it, so the marker comes after it everywhere.
    await watcher.action("Reload", {"Module": "app_queue.so"})
    await everything.until_event("Reload", Module="app_queue.so")
    await ami.action("UserEvent", {"UserEvent": "graam-filter", "Marker": marker})
    unfiltered = await everything.until_event("UserEvent", Marker=marker)
    read = await bus.until_event("UserEvent", Marker=marker)
    assert "Reload" in unfiltered, unfiltered
    assert set(read) == {"UserEvent"}, read

    async def delivered() -> bool:
        return any(message.get("Marker") == marker for message in heard)

    await until(delivered, "marker delivered to the bus's subscriber", TIMEOUT)
    # An action's answer, its list of items included, is never filtered.
    endpoints = await ami.action_list("PJSIPShowEndpoints", {})
    assert any(item.name == "EndpointList" for item in endpoints), endpoints
    assert (await ami.action("Ping")).get("Ping") == "Pong"
