from __future__ import annotations

import asyncio

import pytest

from graam_pbx.ami.bus import RESYNC_EVENT, EventBus
from graam_pbx.ami.protocol import Message

from .scripted import Recorder, metric


def make_event(name: str, **fields: str) -> Message:
    return Message([("Event", name), *fields.items()])


async def test_subscribers_get_their_events_and_the_wildcard_gets_all() -> None:
    bus = EventBus()
    calls, everything = Recorder(), Recorder()
    bus.subscribe("calls", ["Newchannel", "hangup"], calls)
    bus.subscribe("everything", "*", everything)
    await bus.start()

    for name in ["Newchannel", "PeerStatus", "Hangup"]:
        bus.publish(make_event(name))
    bus.publish(Message([("Response", "Success")]))
    await calls.wait_for(2)
    await everything.wait_for(3)
    await bus.stop()

    assert calls.names() == ["Newchannel", "Hangup"]
    assert everything.names() == ["Newchannel", "PeerStatus", "Hangup"]


async def test_single_event_name_subscribes_to_that_event() -> None:
    bus = EventBus()
    recorder = Recorder()
    bus.subscribe("peers", "PeerStatus", recorder)
    await bus.start()

    bus.publish(make_event("Hangup"))
    bus.publish(make_event("PeerStatus"))
    await recorder.wait_for(1)
    await bus.stop()

    assert recorder.names() == ["PeerStatus"]


async def test_slow_subscriber_overflow_is_counted_and_publish_does_not_block() -> None:
    bus = EventBus(drain_timeout=2.0)
    release = asyncio.Event()
    handled: list[str] = []

    async def slow(message: Message) -> None:
        await release.wait()
        handled.append(message["Seq"])

    fast = Recorder()
    bus.subscribe("slow-overflow", "*", slow, maxsize=2)
    bus.subscribe("fast-overflow", "*", fast)
    before = metric("graam_ami_subscriber_dropped_total", subscriber="slow-overflow")

    for seq in range(5):
        bus.publish(make_event("Newchannel", Seq=str(seq)))

    dropped = metric("graam_ami_subscriber_dropped_total", subscriber="slow-overflow") - before
    assert dropped == 3
    assert metric("graam_ami_subscriber_dropped_total", subscriber="fast-overflow") == 0
    assert metric("graam_ami_subscriber_backlog", subscriber="slow-overflow") == 2

    await bus.start()
    await fast.wait_for(5)
    release.set()
    await bus.stop()

    assert handled == ["0", "1"]
    assert metric("graam_ami_subscriber_backlog", subscriber="slow-overflow") == 0


async def test_handler_that_raises_keeps_its_worker_alive() -> None:
    bus = EventBus()
    recorder = Recorder()

    async def flaky(message: Message) -> None:
        if message.name == "Boom":
            raise RuntimeError("handler bug")
        await recorder(message)

    bus.subscribe("flaky", "*", flaky)
    await bus.start()
    before = metric("graam_ami_handler_errors_total", subscriber="flaky")

    bus.publish(make_event("Boom"))
    bus.publish(make_event("Hangup"))
    await recorder.wait_for(1)
    await bus.stop()

    assert recorder.names() == ["Hangup"]
    assert metric("graam_ami_handler_errors_total", subscriber="flaky") == before + 1


async def test_publish_resync_reaches_resync_and_wildcard_subscribers() -> None:
    bus = EventBus()
    resync, everything, calls = Recorder(), Recorder(), Recorder()
    bus.subscribe("resync", [RESYNC_EVENT], resync)
    bus.subscribe("everything", "*", everything)
    bus.subscribe("calls", ["Newchannel"], calls)
    await bus.start()

    bus.publish_resync(restarted=True)
    bus.publish_resync(restarted=False)
    await resync.wait_for(2)
    await everything.wait_for(2)
    await bus.stop()

    assert [message["Restarted"] for message in resync.received] == ["yes", "no"]
    assert everything.names() == [RESYNC_EVENT, RESYNC_EVENT]
    assert calls.received == []


async def test_stop_drains_what_is_queued() -> None:
    bus = EventBus()
    recorder = Recorder()
    bus.subscribe("drained", "*", recorder)
    for seq in range(3):
        bus.publish(make_event("Newchannel", Seq=str(seq)))

    await bus.start()
    await bus.stop()

    assert len(recorder.received) == 3


async def test_stop_gives_up_on_a_stuck_handler() -> None:
    bus = EventBus(drain_timeout=0.1)
    cancelled = asyncio.Event()

    async def stuck(message: Message) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    bus.subscribe("stuck", "*", stuck)
    await bus.start()
    bus.publish(make_event("Newchannel"))
    await bus.stop()

    assert cancelled.is_set()


async def test_subscribing_after_start_starts_the_worker() -> None:
    bus = EventBus()
    await bus.start()
    recorder = Recorder()
    bus.subscribe("late", "*", recorder)

    bus.publish(make_event("Newchannel"))
    await recorder.wait_for(1)
    await bus.stop()


async def test_unsubscribe_stops_delivery() -> None:
    bus = EventBus()
    kept, gone = Recorder(), Recorder()
    bus.subscribe("kept", ["Hangup"], kept)
    subscription = bus.subscribe("gone", ["Hangup"], gone)
    await bus.start()

    await bus.unsubscribe(subscription)
    bus.publish(make_event("Hangup"))
    await kept.wait_for(1)
    await bus.stop()

    assert gone.received == []


async def test_duplicate_subscriber_name_is_refused() -> None:
    bus = EventBus()
    bus.subscribe("same", "*", Recorder())

    with pytest.raises(ValueError, match="same"):
        bus.subscribe("same", ["Hangup"], Recorder())


async def test_a_plain_handler_runs_without_a_coroutine_and_may_hand_back_one() -> None:
    bus = EventBus()
    seen: list[str] = []
    waited: list[str] = []
    later = asyncio.Event()

    async def wait_then_note(name: str) -> None:
        await later.wait()
        waited.append(name)

    def handler(message: Message) -> asyncio.Future[None] | None:
        name = message.event or ""
        seen.append(name)
        # The usual event is handled on the spot; this one has to wait, and the next
        # event is not handled before it is done.
        return asyncio.ensure_future(wait_then_note(name)) if name == "Slow" else None

    bus.subscribe("plain", "*", handler)
    await bus.start()
    for name in ["A", "Slow", "B"]:
        bus.publish(make_event(name))
    async with asyncio.timeout(5):
        while seen != ["A", "Slow"]:
            await asyncio.sleep(0)
    later.set()
    await bus.stop()  # drains: B is handled after Slow's wait

    assert seen == ["A", "Slow", "B"]
    assert waited == ["Slow"]


async def test_a_long_backlog_lets_other_tasks_run() -> None:
    bus = EventBus()
    handled = 0
    other_ran_at: list[int] = []

    def count(_: Message) -> None:
        nonlocal handled
        handled += 1

    async def other() -> None:
        other_ran_at.append(handled)

    bus.subscribe("busy", "*", count, maxsize=10_000)
    for _ in range(5_000):
        bus.publish(make_event("Cdr"))
    await bus.start()
    task = asyncio.create_task(other())
    await bus.stop()
    await task

    assert handled == 5_000
    assert other_ran_at and other_ran_at[0] < 5_000  # not after the whole backlog


def test_a_subscription_outside_what_the_process_asks_for_is_refused() -> None:
    bus = EventBus(only=frozenset({"QueueCallerJoin", "QueueCallerLeave"}))
    with pytest.raises(ValueError, match="Hangup"):
        bus.subscribe("late", ["QueueCallerJoin", "Hangup"], lambda message: None)
    with pytest.raises(ValueError, match=r"\*"):
        bus.subscribe("everything", "*", lambda message: None)
    # Names are case-blind, as Asterisk's are; the resync is the bus's own, never asked for.
    bus.subscribe("board", ["queuecallerjoin", RESYNC_EVENT], lambda message: None)


def test_a_bus_refuses_to_ask_for_what_is_no_event_name() -> None:
    # Each name becomes an AMI Filter's "name(...)": nothing else may reach that header.
    with pytest.raises(ValueError, match="not an AMI event name"):
        EventBus(only=["QueueCallerJoin", "Hangup)\r\nAction: Originate"])


def test_an_api_process_asks_for_what_its_wallboards_subscribe_to() -> None:
    from graam_pbx.app import WALLBOARD_EVENTS
    from graam_pbx.live.wallboards import EVENTS, SUBSCRIBER

    bus = EventBus(only=WALLBOARD_EVENTS)
    bus.subscribe(SUBSCRIBER, [*EVENTS, RESYNC_EVENT], lambda message: None)
