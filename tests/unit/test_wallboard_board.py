"""The wallboard's rules without servers: colour levels and alerts, the board's JSON contract,
waiting callers followed from AMI's queue events, and a slow viewer keeping only the newest."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from starlette.requests import ClientDisconnect

from graam_pbx.ami import EventBus, Message
from graam_pbx.live.board import (
    AgentLine,
    Alert,
    Board,
    Figures,
    QueueSetup,
    board_json,
    queue_level,
    sse_frame,
)
from graam_pbx.live.wallboards import HEARTBEAT_FRAME, Viewer, Wallboards
from graam_pbx.web.wallboard import EventStream

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
SALES = QueueSetup(7, "sales", waiting_warn=2, waiting_alarm=4, wait_warn_seconds=30,
                   wait_alarm_seconds=60)  # fmt: skip


def test_levels_rise_with_callers_waiting_and_the_longest_wait() -> None:
    assert queue_level(SALES, 0, 500) == ("ok", [])  # nobody waits: no alarm, whatever the past
    assert queue_level(SALES, 1, 29.9) == ("ok", [])
    assert queue_level(SALES, 2, 0) == ("warn", [Alert(7, "waiting", "warn")])
    assert queue_level(SALES, 4, 0) == ("alarm", [Alert(7, "waiting", "alarm")])
    assert queue_level(SALES, 1, 30) == ("warn", [Alert(7, "longest_wait", "warn")])
    assert queue_level(SALES, 2, 60) == (
        "alarm",
        [Alert(7, "waiting", "warn"), Alert(7, "longest_wait", "alarm")],
    )


def test_the_board_keeps_its_json_contract() -> None:
    board = Board(3, seq=41)
    board.queues = {7: SALES, 8: QueueSetup(8, "after-sales")}
    board.figures = {
        7: Figures(10, 8, 1, Decimal("0.75"), Decimal("0.1"), Decimal("12.5"), agents_needed=3)
    }
    board.agents = {
        5: AgentLine(5, "Zoé", "paused", NOW - timedelta(minutes=3), "2", "Lunch"),
        6: AgentLine(6, "Alix", "on-call", NOW - timedelta(seconds=20)),
        9: AgentLine(9, "Bob", "available", NOW),
    }
    waiting = {7: {"1.1": NOW - timedelta(seconds=45), "1.2": NOW - timedelta(seconds=5)}}

    data = json.loads(board_json(board, waiting, NOW))

    assert set(data) >= {"tenant_id", "seq", "generated_at", "queues", "agents", "alerts"}
    assert (data["tenant_id"], data["seq"]) == (3, 41)
    assert datetime.fromisoformat(data["generated_at"]) == NOW
    after_sales, sales = data["queues"]  # by name
    assert after_sales["waiting"] == 0 and after_sales["oldest_entered_at"] is None
    assert after_sales["level"] == "ok" and after_sales["agents_needed"] is None
    assert after_sales["today"] == {
        "offered": 0,
        "answered": 0,
        "abandoned": 0,
        "service_level": None,
        "abandon_rate": None,
        "asa_s": None,
    }
    assert (sales["id"], sales["name"], sales["waiting"], sales["longest_wait_s"]) == (
        7,
        "sales",
        2,
        45.0,
    )
    assert datetime.fromisoformat(sales["oldest_entered_at"]) == NOW - timedelta(seconds=45)
    assert sales["level"] == "warn"
    assert sales["today"] == {
        "offered": 10,
        "answered": 8,
        "abandoned": 1,
        "service_level": "0.75",
        "abandon_rate": "0.1",
        "asa_s": "12.5",
    }
    assert sales["agents_needed"] == 3
    assert data["alerts"] == [
        {"queue_id": 7, "kind": "waiting", "level": "warn"},
        {"queue_id": 7, "kind": "longest_wait", "level": "warn"},
    ]
    # Free to take a call first, away last.
    assert [a["name"] for a in data["agents"]] == ["Bob", "Alix", "Zoé"]
    zoe = data["agents"][2]
    assert set(zoe) >= {"user_id", "name", "state", "since", "pause_reason", "pause_label"}
    assert (zoe["user_id"], zoe["state"], zoe["pause_reason"], zoe["pause_label"]) == (
        5,
        "paused",
        "2",
        "Lunch",
    )
    assert datetime.fromisoformat(zoe["since"]) == NOW - timedelta(minutes=3)


def test_levels_change_as_time_passes_without_an_event() -> None:
    board = Board(3, seq=1, queues={7: SALES})
    waiting = {7: {"1.1": NOW}}
    assert board.levels(waiting, NOW) == ("ok",)
    assert board.levels(waiting, NOW + timedelta(seconds=30)) == ("warn",)
    assert board.levels(waiting, NOW + timedelta(seconds=61)) == ("alarm",)


def test_an_sse_frame_is_one_event_with_its_id() -> None:
    assert sse_frame("board", 12, '{"a":1}') == b'event: board\nid: 12\ndata: {"a":1}\n\n'


async def test_a_slow_viewer_gets_only_the_newest_board() -> None:
    viewer = Viewer(3)
    viewer.offer(b"one")
    viewer.offer(b"two")
    viewer.offer(b"three")
    assert await viewer.next() == b"three"
    viewer.close()
    assert await viewer.next() is None and viewer.closed


async def test_a_quiet_viewer_gets_a_heartbeat_and_a_busy_one_its_board() -> None:
    quiet, busy = Viewer(3), Viewer(3)
    busy.offer(b"board")
    for viewer in (quiet, busy):
        viewer.beat()  # the first tick
    assert await quiet.next() == HEARTBEAT_FRAME
    assert await busy.next() == b"board"  # offered since the last tick: no heartbeat
    busy.beat()  # the next tick, nothing offered since the last one
    assert await busy.next() == HEARTBEAT_FRAME


def queue_event(name: str, queue: str, uniqueid: str) -> Message:
    return Message([("Event", name), ("Queue", queue), ("Uniqueid", uniqueid)])


async def test_waiting_callers_follow_the_queue_events_of_every_tenant() -> None:
    live = Wallboards(None, EventBus(), None)  # type: ignore[arg-type]
    live._on_event(queue_event("QueueCallerJoin", "t3-q7", "1.1"))
    live._on_event(queue_event("QueueCallerJoin", "t3-q7", "1.2"))
    live._on_event(queue_event("QueueCallerJoin", "t4-q9", "2.1"))
    live._on_event(queue_event("QueueCallerJoin", "not-ours", "3.1"))
    assert {t: {q: set(c) for q, c in qs.items()} for t, qs in live.waiting.items()} == {
        3: {7: {"1.1", "1.2"}},
        4: {9: {"2.1"}},
    }
    live._on_event(queue_event("QueueCallerLeave", "t3-q7", "1.1"))
    live._on_event(queue_event("QueueCallerAbandon", "t4-q9", "2.1"))
    live._on_event(queue_event("QueueCallerLeave", "t4-q9", "2.1"))  # twice: no harm
    # A tenant with nobody waiting costs nothing.
    assert {t: {q: set(c) for q, c in qs.items()} for t, qs in live.waiting.items()} == {
        3: {7: {"1.2"}}
    }


class QueueStatusMeanwhile:
    """Asterisk answering ``QueueStatus`` with ``entries`` (queue, uniqueid), while ``meanwhile``
    queue events reach the wallboards."""

    def __init__(
        self, live: Wallboards, entries: list[tuple[str, str]], meanwhile: list[Message]
    ) -> None:
        self.live, self.entries, self.meanwhile = live, entries, meanwhile

    async def action_list(self, name: str, fields: object = None, **_: object) -> list[Message]:
        assert name == "QueueStatus"
        for message in self.meanwhile:
            self.live._on_event(message)
        return [
            Message([("Event", "QueueEntry"), ("Queue", q), ("Uniqueid", u), ("Wait", "5")])
            for q, u in self.entries
        ]


async def test_a_seed_keeps_what_joined_and_left_while_it_was_asked_last_event_winning() -> None:
    live = Wallboards(None, EventBus(), None)  # type: ignore[arg-type]
    live._on_event(queue_event("QueueCallerJoin", "t3-q7", "gone.before"))  # its leave was missed
    live._ami = QueueStatusMeanwhile(  # type: ignore[assignment]
        live,
        [("t3-q7", "1.1"), ("t3-q7", "1.2"), ("t3-q7", "1.3")],
        [
            queue_event("QueueCallerLeave", "t3-q7", "1.1"),  # left after Asterisk's answer
            queue_event("QueueCallerJoin", "t4-q9", "2.1"),  # joined after it
            queue_event("QueueCallerLeave", "t3-q7", "1.3"),  # left, then came back
            queue_event("QueueCallerJoin", "t3-q7", "1.3"),
        ],
    )
    await live._seed()
    assert {t: {q: set(c) for q, c in qs.items()} for t, qs in live.waiting.items()} == {
        3: {7: {"1.2", "1.3"}},
        4: {9: {"2.1"}},
    }


async def test_one_board_for_all_who_wait_for_it_even_after_a_failed_build() -> None:
    live = Wallboards(None, EventBus(), None)  # type: ignore[arg-type]
    started: asyncio.Queue[Board] = asyncio.Queue()  # each build, as it reads
    outcomes: asyncio.Queue[Exception | None] = asyncio.Queue()  # how each read ends

    async def read_setup(board: Board) -> None:
        await started.put(board)
        failure = await outcomes.get()
        if failure is not None:
            raise failure

    async def read_nothing(board: Board, *_: object) -> None:
        del board

    live._read_setup = read_setup  # type: ignore[method-assign]
    live._read_agents = read_nothing  # type: ignore[method-assign]
    live._read_figures = read_nothing  # type: ignore[method-assign]
    async with asyncio.timeout(10):
        first = asyncio.create_task(live._board(3))
        second = asyncio.create_task(live._board(3))
        await started.get()  # the first builds, the second waits for it
        await outcomes.put(OSError("database gone"))
        await started.get()  # the first failed: the second builds
        third = asyncio.create_task(live._board(3))  # and a third comes meanwhile
        await outcomes.put(None)
        with pytest.raises(OSError):
            await first
        assert await second is await third is live._watched[3]
    assert started.empty()  # built once after the failure, not once per viewer
    assert not live._building


async def test_a_stream_ends_its_watch_even_when_its_body_never_started() -> None:
    ended: list[bool] = []

    async def body() -> AsyncIterator[bytes]:
        yield b"never sent"

    stream = EventStream(body(), on_end=lambda: ended.append(True))

    async def receive() -> dict[str, str]:
        return {"type": "http.disconnect"}

    async def send(message: object) -> None:
        raise OSError("the client is gone")

    with contextlib.suppress(ClientDisconnect, OSError):
        await stream({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send)
    assert ended == [True]
