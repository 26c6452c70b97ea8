"""The AMI client against the session's real Asterisk: errors are clear, nothing hangs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from graam_pbx.ami import (
    AmiActionError,
    AmiInjectionError,
    AmiSupervisor,
    EventBus,
    Message,
)
from graam_pbx.ami import actions as ami_actions
from tests.conftest import Asterisk


@pytest.fixture(scope="module")
async def bus() -> AsyncIterator[EventBus]:
    events = EventBus()
    await events.start()
    yield events
    await events.stop()


@pytest.fixture(scope="module")
async def ami(asterisk: Asterisk, bus: EventBus) -> AsyncIterator[AmiSupervisor]:
    supervisor = AmiSupervisor(asterisk.ami_config(), bus)
    await supervisor.start()
    await supervisor.wait_connected(timeout=20)
    yield supervisor
    await supervisor.stop()


@pytest.mark.parametrize(
    ("action", "fields", "reason"),
    [
        ("NoSuchAction", {}, "invalid/unknown command"),
        ("QueueAdd", {"Queue": "no-such-queue", "Interface": "PJSIP/nobody"}, "no such queue"),
        ("QueuePause", {"Paused": "true"}, "interface"),
        ("Getvar", {"Channel": "PJSIP/nobody-00000001", "Variable": "X"}, "no such channel"),
        ("Hangup", {"Channel": "PJSIP/nobody-00000001"}, "no such channel"),
        ("Setvar", {"Value": "1"}, "variable"),
    ],
)
async def test_bad_argument_gives_a_clear_error_not_a_hang(
    ami: AmiSupervisor, action: str, fields: dict[str, str], reason: str
) -> None:
    async with asyncio.timeout(5):
        with pytest.raises(AmiActionError) as caught:
            await ami.action(action, fields)
    assert reason in str(caught.value).lower()
    assert caught.value.action == action
    # The connection lives on after an error.
    assert (await ami_actions.ping(await ami.client())).get("Ping") == "Pong"


async def test_injection_is_refused_before_anything_is_sent(ami: AmiSupervisor) -> None:
    with pytest.raises(AmiInjectionError):
        await ami.action("UserEvent", {"UserEvent": "x\r\nAction: Hangup"})
    assert (await ami_actions.ping(await ami.client())).get("Ping") == "Pong"


async def test_command_returns_cli_output(ami: AmiSupervisor) -> None:
    output = await ami.command("core show version")
    assert "Asterisk 22" in output


async def test_core_status_knows_when_asterisk_started(ami: AmiSupervisor) -> None:
    status = await ami_actions.core_status(await ami.client())
    assert ami.state.asterisk_startup is not None
    assert abs((status.startup - ami.state.asterisk_startup).total_seconds()) <= 2


async def test_utf8_round_trips_through_real_asterisk(ami: AmiSupervisor, bus: EventBus) -> None:
    received: asyncio.Queue[Message] = asyncio.Queue()

    async def on_user_event(message: Message) -> None:
        if message.get("UserEvent") == "GraamUtf8":
            await received.put(message)

    subscription = bus.subscribe("test-utf8", ["UserEvent"], on_user_event)
    try:
        # Many multibyte headers: the event spans TCP reads, splitting characters between them.
        names = {f"Caller{i}": " ".join([f"{i} José Ñúñez 東京"] * 12) for i in range(40)}
        await ami.action("UserEvent", {"UserEvent": "GraamUtf8", **names})
        async with asyncio.timeout(5):
            event = await received.get()
        for key, value in names.items():
            assert event.get(key) == value
    finally:
        await bus.unsubscribe(subscription)


async def test_list_action_collects_its_events(ami: AmiSupervisor) -> None:
    events = await ami.action_list("PJSIPShowEndpoints")
    assert {event.name for event in events} == {"EndpointList"}
    assert "graam-no-outbound" in {event.get("ObjectName") for event in events}
