"""The tracker on recorded AMI event sequences and queue_log lines (tests/data/queue_calls)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from graam_pbx import metrics
from graam_pbx.ami import EventBus
from graam_pbx.ami.protocol import Message
from graam_pbx.queue_calls.tracker import (
    Outcome,
    QueueCallRow,
    Tracker,
    event_from_ami,
    rows_from_log,
)
from graam_pbx.queue_calls.worker import Checkpoint, QueueCallSettings, QueueCallWorker, read_log

DATA = Path(__file__).resolve().parents[2] / "data" / "queue_calls"
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def replay(name: str, tracker: Tracker | None = None) -> list[QueueCallRow]:
    """Feed a recorded sequence: blocks of ``Key: Value`` lines, each with ``At: <seconds>``."""
    tracker = tracker or Tracker()
    rows: list[QueueCallRow] = []
    text = "\n".join(
        line for line in (DATA / name).read_text().splitlines() if not line.startswith("#")
    )
    for block in text.strip().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.strip().splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        at = START + timedelta(seconds=float(fields.pop("At")))
        event = event_from_ami(fields, at)
        if event is not None:
            rows.extend(tracker.feed(event))
    return rows


def test_an_answered_call_has_its_agent_wait_talk_hold_and_ring_no_answer() -> None:
    (row,) = replay("answered_after_ring_no_answer.ami")
    assert row.outcome is Outcome.ANSWERED
    assert (row.tenant_id, row.queue_id, row.queue_name) == (7, 3, "t7-q3")
    assert row.agent_id == 42
    assert row.answered_at == START + timedelta(seconds=20)
    assert row.ended_at == START + timedelta(seconds=50)
    assert (row.wait_seconds, row.talk_seconds, row.hold_seconds) == (
        Decimal(20),
        Decimal(30),
        Decimal(4),
    )
    assert row.ring_no_answer == 1
    assert (row.position_at_entry, row.caller_number, row.entry) == (1, "+33612345678", 1)
    assert row.linkedid == "1796300000.11"


def test_an_agent_complete_without_its_caller_closes_the_call_its_agent_answered() -> None:
    first, second = replay("answered_complete_after_caller_gone.ami")
    assert (first.caller_uniqueid, first.outcome, first.agent_id) == (
        "1796300000.11",
        Outcome.ANSWERED,
        42,
    )
    assert (first.wait_seconds, first.talk_seconds) == (Decimal(2), Decimal(10))
    assert first.ended_at == START + timedelta(seconds=12)
    assert (second.caller_uniqueid, second.agent_id) == ("1796300000.21", 43)


def test_an_agent_complete_without_any_channel_closes_the_call_of_its_member() -> None:
    # Seen under load: neither the caller's nor the agent's channel was left when Asterisk
    # published AgentComplete (only Queue, Interface, MemberName, HoldTime, TalkTime, Reason).
    tracker = Tracker()
    calls = {"1796300000.11": "agent-42", "1796300000.21": "agent-43"}
    for second, (uniqueid, member) in enumerate(calls.items()):
        join = {"Event": "QueueCallerJoin", "Uniqueid": uniqueid, "Queue": "t7-q3"}
        connect = {"Event": "AgentConnect", "Uniqueid": uniqueid, "Queue": "t7-q3"}
        connect |= {"MemberName": member, "HoldTime": "1"}
        for fields in (join, connect):
            event = event_from_ami(fields, START + timedelta(seconds=second))
            assert event is not None
            assert tracker.feed(event) == []
    complete = {"Event": "AgentComplete", "Queue": "t7-q3", "Interface": "PJSIP/t7-a43"}
    complete |= {"MemberName": "agent-43", "HoldTime": "1", "TalkTime": "2", "Reason": "agent"}
    event = event_from_ami(complete, START + timedelta(seconds=4))
    assert event is not None
    (row,) = tracker.feed(event)
    assert (row.caller_uniqueid, row.agent_id, row.outcome) == (
        "1796300000.21",
        43,
        Outcome.ANSWERED,
    )
    assert row.talk_seconds == Decimal(2)
    assert list(tracker.open) == [("1796300000.11", "t7-q3")]


def feed(tracker: Tracker, at: float, **fields: str) -> list[QueueCallRow]:
    event = event_from_ami(fields, START + timedelta(seconds=at))
    assert event is not None
    return tracker.feed(event)


def connect(tracker: Tracker, at: float, caller: str, agent_leg: str, wait: int) -> None:
    assert feed(tracker, at - wait, Event="QueueCallerJoin", Uniqueid=caller, Queue="t7-q3") == []
    connected = {"Uniqueid": caller, "DestUniqueid": agent_leg, "Queue": "t7-q3"}
    connected |= {"MemberName": "agent-42", "HoldTime": str(wait)}
    assert feed(tracker, at, Event="AgentConnect", **connected) == []


def test_an_answered_call_whose_agent_complete_never_comes_ends_at_the_first_hang_up() -> None:
    # Seen under load: AgentConnect, then the two channels' Hangup and no AgentComplete.
    tracker = Tracker()
    connect(tracker, 3, "1796300000.11", "1796300000.13", wait=3)
    assert feed(tracker, 5.25, Event="Hangup", Uniqueid="1796300000.13") == []
    (row,) = feed(tracker, 5.5, Event="Hangup", Uniqueid="1796300000.11")
    assert (row.outcome, row.agent_id, row.wait_seconds) == (Outcome.ANSWERED, 42, Decimal(3))
    assert row.talk_seconds == Decimal("2.250")
    assert row.ended_at == START + timedelta(seconds=5.25)
    assert tracker.open == {}
    # Its AgentComplete coming late after all (with its caller, or without any channel) is the
    # same call's: nothing more, and no backfill asked for.
    complete = {"Queue": "t7-q3", "MemberName": "agent-42", "HoldTime": "3", "TalkTime": "2"}
    assert feed(tracker, 5.6, Event="AgentComplete", **complete) == []
    assert tracker.unseen_ends == 0


def test_a_late_agent_complete_without_channels_is_told_apart_by_its_wait() -> None:
    tracker = Tracker()
    connect(tracker, 3, "1796300000.11", "1796300000.13", wait=3)
    assert len(feed(tracker, 5, Event="Hangup", Uniqueid="1796300000.11")) == 1
    # The same agent already has the next call when the first one's AgentComplete comes.
    connect(tracker, 10, "1796300000.21", "1796300000.23", wait=5)
    late = {"Queue": "t7-q3", "MemberName": "agent-42", "TalkTime": "2", "Reason": "caller"}
    assert feed(tracker, 10.1, Event="AgentComplete", HoldTime="3", **late) == []
    assert list(tracker.open) == [("1796300000.21", "t7-q3")]
    (row,) = feed(tracker, 12, Event="AgentComplete", HoldTime="5", **late)
    assert (row.caller_uniqueid, row.talk_seconds) == ("1796300000.21", Decimal(2))
    assert tracker.unseen_ends == 0


def test_a_caller_hanging_up_while_waiting_is_abandoned_with_position_and_wait() -> None:
    (row,) = replay("abandoned.ami")
    assert row.outcome is Outcome.ABANDONED
    assert (row.abandon_position, row.wait_seconds, row.position_at_entry) == (2, Decimal(7), 2)
    assert row.answered_at is None and row.agent_id is None
    assert row.linkedid == "1796300000.20"


def test_a_maximum_wait_reached_is_a_timeout_not_an_abandon() -> None:
    (row,) = replay("timeout.ami")
    assert row.outcome is Outcome.TIMEOUT
    assert row.abandon_position is None
    assert row.wait_seconds == Decimal(6)
    assert row.ended_at == START + timedelta(seconds=6)


def test_joinempty_has_a_row_and_a_second_entry_into_a_queue_its_own() -> None:
    refused, first, second = replay("joinempty_then_reentry.ami")
    assert (refused.outcome, refused.queue_id, refused.wait_seconds) == (
        Outcome.JOINEMPTY,
        5,
        Decimal(0),
    )
    assert refused.caller_number == "+33612345671"
    assert (first.outcome, first.entry, first.wait_seconds) == (Outcome.TIMEOUT, 1, Decimal(3))
    assert (second.outcome, second.entry, second.abandon_position) == (Outcome.ABANDONED, 2, 1)


def test_an_abandon_whose_hangup_is_never_seen_is_closed_after_the_grace() -> None:
    tracker = Tracker()
    text = (DATA / "abandoned.ami").read_text()
    # Without its Hangup block: the row stays open until the grace is over.
    truncated = text[: text.index("At: 7\nEvent: Hangup")]
    rows: list[QueueCallRow] = []
    for block in truncated.strip().split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith("#")]
        fields = dict(line.split(": ", 1) for line in lines)
        event = event_from_ami(fields, START + timedelta(seconds=float(fields.pop("At"))))
        if event is not None:
            rows.extend(tracker.feed(event))
    assert rows == []
    assert tracker.expire(START + timedelta(seconds=20)) == []
    (row,) = tracker.expire(START + timedelta(seconds=40))
    assert row.outcome is Outcome.ABANDONED


def _key(row: QueueCallRow) -> tuple[object, ...]:
    return (
        row.tenant_id,
        row.caller_uniqueid,
        row.queue_name,
        row.entry,
        row.outcome,
        row.agent_id,
        row.position_at_entry,
        row.abandon_position,
        row.caller_number,
        row.wait_seconds,
        row.talk_seconds,
        row.ring_no_answer,
    )


def test_queue_log_gives_the_same_rows_as_the_live_events() -> None:
    lines = (DATA / "calls.queue_log").read_text().splitlines()
    from_log = rows_from_log(lines)
    live = [
        *replay("answered_after_ring_no_answer.ami"),
        *replay("abandoned.ami"),
        *replay("timeout.ami"),
        *replay("joinempty_then_reentry.ami"),
    ]
    # Hold is seen only live (queue_log has no hold lines).
    for row in live:
        row.hold_seconds = Decimal(0)
    assert sorted(map(_key, from_log), key=str) == sorted(map(_key, live), key=str)


def test_a_backfill_resumes_at_the_oldest_open_call_and_numbers_reentries_on(
    tmp_path: Path,
) -> None:
    log = tmp_path / "queue_log"
    lines = (DATA / "calls.queue_log").read_text().splitlines(keepends=True)
    # Up to the first stay of the re-entering caller; its second stay comes later.
    cut = next(i for i, line in enumerate(lines) if "|1796300000.41|t7-q3|NONE|ENTERQUEUE" in line)
    log.write_text(
        "".join(lines[: cut + 3]) + "1796300009|1796300000.99|t7-q3|NONE|ENTERQUEUE||1|1\n"
    )
    now = 1796300020.0  # the entry ordinals kept are those of entries seen in the last 6 h
    first = read_log(log, Checkpoint(), now=now)
    assert len(first.rows) == 5  # answered, abandoned, timeout, joinempty, first stay
    # The last call is still waiting: the next read starts at its entry line.
    assert first.checkpoint.offset == log.stat().st_size - len(
        "1796300009|1796300000.99|t7-q3|NONE|ENTERQUEUE||1|1\n"
    )
    with log.open("a") as file:
        file.write("1796300010|1796300000.99|t7-q3|NONE|ABANDON|1|1|1\n")
        file.writelines(lines[cut + 3 :])
    second = read_log(log, first.checkpoint, now=now)
    assert [(row.caller_uniqueid, row.entry, row.outcome) for row in second.rows] == [
        ("1796300000.99", 1, Outcome.ABANDONED),
        ("1796300000.41", 2, Outcome.ABANDONED),
    ]
    # Nothing new: nothing read again, and a half-written line waits for its end.
    with log.open("a") as file:
        file.write("1796300011|1796300000.77|t7-q3|NONE|ENTER")
    assert read_log(log, second.checkpoint, now=now).rows == []


def test_a_row_left_to_the_live_writer_is_read_again_next_time(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    answered = "1796300000|1796300000.11|t7-q3|NONE|ENTERQUEUE||+33612345678|1\n"
    log.write_text(
        answered + "1796300001|1796300001.21|t7-q3|NONE|ENTERQUEUE||+33612345679|2\n"
        "1796300002|1796300001.21|t7-q3|NONE|ABANDON|2|2|1\n"
        "1796300003|1796300000.11|t7-q3|agent-42|CONNECT|3|1796300003.15|1\n"
        "1796300009|1796300000.11|t7-q3|agent-42|COMPLETECALLER|3|6|1\n"
    )
    # The answered call is the live writer's: left, and the checkpoint stays at its entry.
    now = 1796300020.0
    first = read_log(log, Checkpoint(), lambda row: row.caller_uniqueid == "1796300000.11", now=now)
    assert [row.caller_uniqueid for row in first.rows] == ["1796300001.21"]
    assert first.checkpoint.offset == 0
    # Not written live after all: the next read has it (and the abandon again, harmless).
    second = read_log(log, first.checkpoint, now=now)
    assert [row.caller_uniqueid for row in second.rows] == ["1796300001.21", "1796300000.11"]
    assert second.checkpoint.offset == log.stat().st_size
    # A re-entry whose first stay is deferred: the checkpoint stays at that stay's entry.
    with log.open("a") as file:
        file.write(
            "1796300010|1796300010.31|t7-q3|NONE|ENTERQUEUE||+33612345670|1\n"
            "1796300012|1796300010.31|t7-q3|NONE|ENTERQUEUE||+33612345670|1\n"
            "1796300013|1796300010.31|t7-q3|NONE|ABANDON|1|1|1\n"
        )
    third = read_log(log, second.checkpoint, lambda row: row.entry == 1, now=now)
    assert [(row.caller_uniqueid, row.entry) for row in third.rows] == [("1796300010.31", 2)]
    assert third.checkpoint.offset == second.checkpoint.offset


def test_gauges_per_queue_or_one_series(tmp_path: Path) -> None:
    messages = [
        Message([("Event", "QueueParams"), ("Queue", "t90-q1")]),
        Message(
            [
                ("Event", "QueueMember"),
                ("Queue", "t90-q1"),
                ("Status", "1"),
                ("Paused", "0"),
                ("InCall", "0"),
            ]
        ),
        Message([("Event", "QueueMember"), ("Queue", "t90-q1"), ("Status", "1"), ("Paused", "1")]),
        Message([("Event", "QueueEntry"), ("Queue", "t90-q1"), ("Wait", "12")]),
        Message([("Event", "QueueEntry"), ("Queue", "t90-q1"), ("Wait", "30")]),
        Message([("Event", "QueueParams"), ("Queue", "default")]),
    ]

    def worker(per_queue: bool) -> QueueCallWorker:
        settings = QueueCallSettings(None, tmp_path, metrics_per_queue=per_queue)
        return QueueCallWorker(None, EventBus(), None, settings)  # type: ignore[arg-type]

    worker(per_queue=True)._set_gauges(messages)
    assert metrics.QUEUE_WAITING.labels("90", "1")._value.get() == 2
    assert metrics.QUEUE_LONGEST_WAIT.labels("90", "1")._value.get() == 30
    assert metrics.QUEUE_AGENTS_AVAILABLE.labels("90", "1")._value.get() == 1
    assert metrics.QUEUE_AGENTS_PAUSED.labels("90", "1")._value.get() == 1
    worker(per_queue=False)._set_gauges(messages)
    assert metrics.QUEUE_WAITING.labels("all", "all")._value.get() == 2


def test_a_call_cut_by_an_asterisk_restart_holds_no_checkpoint_back(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_text(
        "1796300000|1796300000.61|t7-q3|NONE|ENTERQUEUE||+33612345678|1\n"
        "1796300100|NONE|NONE|NONE|QUEUESTART|\n"
        "1796300101|1796300101.1|t7-q3|NONE|ENTERQUEUE||+33612345679|1\n"
        "1796300105|1796300101.1|t7-q3|NONE|ABANDON|1|1|4\n"
    )
    result = read_log(log, Checkpoint())
    assert [row.caller_uniqueid for row in result.rows] == ["1796300101.1"]
    assert result.checkpoint.offset == log.stat().st_size


def test_a_call_whose_end_was_never_logged_holds_the_checkpoint_twelve_hours_at_most(
    tmp_path: Path,
) -> None:
    log = tmp_path / "queue_log"
    lost = "1796300000|1796300000.71|t7-q3|NONE|ENTERQUEUE||+33612345678|1\n"
    log.write_text(lost + "1796343100|1796343100.1|t7-q3|NONE|ENTERQUEUE||+33612345679|2\n")
    assert read_log(log, Checkpoint()).checkpoint.offset == 0  # 11 h 58 min: may still end
    with log.open("a") as file:
        file.write("1796343300|1796343100.1|t7-q3|NONE|ABANDON|1|2|200\n")
    assert read_log(log, Checkpoint()).checkpoint.offset == log.stat().st_size
