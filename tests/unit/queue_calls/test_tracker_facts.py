"""The facts of a queue call beyond its outcome and times: the DID the caller dialled and the
answering device, from AMI events and from queue_log lines alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from graam_pbx.ami.protocol import Message
from graam_pbx.queue_calls.tracker import (
    Outcome,
    QueueCallRow,
    Tracker,
    ami_fields,
    channel_variable,
    event_from_ami,
    rows_from_log,
)

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DID = "+33142685300"
CALLER = "+33612345678"


def feed(tracker: Tracker, second: float, *lines: str) -> list[QueueCallRow]:
    """One AMI event as Asterisk frames it (repeated headers kept) into the tracker."""
    message = Message("\r\n".join(lines))
    event = event_from_ami(ami_fields(message.fields), START + timedelta(seconds=second))
    return tracker.feed(event) if event is not None else []


def answered_call(tracker: Tracker, did_line: str) -> QueueCallRow:
    assert not feed(
        tracker,
        0,
        "Event: QueueCallerJoin",
        "Channel: PJSIP/carrier-00000001",
        "Uniqueid: 1796300000.11",
        "Linkedid: 1796300000.11",
        f"CallerIDNum: {CALLER}",
        "ChanVariable: OTHER=x",
        did_line,
        "Queue: t7-q3",
        "Position: 1",
    )
    assert not feed(
        tracker,
        4,
        "Event: AgentConnect",
        "Uniqueid: 1796300000.11",
        "Queue: t7-q3",
        "MemberName: agent-42",
        "Interface: PJSIP/acme7-desk201",
        "DestUniqueid: 1796300000.12",
        "DestChanVariable: GRAAM_DID=",
        "HoldTime: 4",
    )
    (row,) = feed(
        tracker,
        10,
        "Event: AgentComplete",
        "Uniqueid: 1796300000.11",
        "Queue: t7-q3",
        "MemberName: agent-42",
        "Interface: PJSIP/acme7-desk201",
        "HoldTime: 4",
        "TalkTime: 6",
        "Reason: agent",
    )
    return row


def test_the_did_of_the_callers_channel_and_the_answering_device_are_on_the_row() -> None:
    row = answered_call(Tracker(), f"ChanVariable: GRAAM_DID={DID}")
    assert row.outcome is Outcome.ANSWERED
    assert (row.did, row.device, row.agent_id) == (DID, "acme7-desk201", 42)


def test_a_call_that_came_in_on_no_did_has_none() -> None:
    assert answered_call(Tracker(), "ChanVariable: GRAAM_DID=").did is None
    assert answered_call(Tracker(), "ChanVariable: GRAAM_DID=not-a-number").did is None


def test_channel_variables_are_read_by_name_whatever_their_order() -> None:
    fields = ami_fields(
        Message("Event: X\r\nChanVariable: A=1\r\nChanVariable: GRAAM_DID=+331\r\n").fields
    )
    assert channel_variable(fields, "GRAAM_DID") == "+331"
    assert channel_variable(fields, "A") == "1"
    assert channel_variable({"ChanVariable": "GRAAM_DID=+332"}, "GRAAM_DID") == "+332"
    assert channel_variable({"ChanVariable": "A=1"}, "GRAAM_DID") == ""


def test_a_member_that_is_not_a_pjsip_device_names_no_device() -> None:
    tracker = Tracker()
    feed(tracker, 0, "Event: QueueCallerJoin", "Uniqueid: u1", "Queue: t7-q3", "Position: 1")
    feed(
        tracker,
        1,
        "Event: AgentConnect",
        "Uniqueid: u1",
        "Queue: t7-q3",
        "MemberName: agent-42",
        "Interface: Local/201@t7-dest/n",
    )
    (row,) = feed(
        tracker, 2, "Event: AgentComplete", "Uniqueid: u1", "Queue: t7-q3", "MemberName: agent-42"
    )
    assert row.device is None


def test_queue_log_gives_the_did_of_enterqueue_and_of_the_dialplan_status() -> None:
    lines = [
        # Queue(t7-q3,t,${GRAAM_DID},...): ENTERQUEUE's first field is that URL argument.
        f"1796300000|u1|t7-q3|NONE|ENTERQUEUE|{DID}|{CALLER}|1",
        "1796300004|u1|t7-q3|agent-42|CONNECT|4|u2|3",
        "1796300010|u1|t7-q3|agent-42|COMPLETEAGENT|4|6|1",
        # Out of hours: the dialplan's status line, the DID after the caller.
        f"1796300020|u3|t7-q3|NONE|GRAAMSTATUS|CLOSED|{CALLER}|{DID}",
        # An older dialplan's lines, without the DID.
        f"1796300030|u4|t7-q3|NONE|ENTERQUEUE||{CALLER}|1",
        "1796300031|u4|t7-q3|NONE|ABANDON|1|1|1",
        f"1796300040|u5|t7-q3|NONE|GRAAMSTATUS|JOINEMPTY|{CALLER}",
    ]
    answered, closed, abandoned, joinempty = rows_from_log(lines)
    assert (answered.outcome, answered.did, answered.device) == (Outcome.ANSWERED, DID, None)
    assert (closed.outcome, closed.did) == (Outcome.CLOSED, DID)
    assert (abandoned.outcome, abandoned.did) == (Outcome.ABANDONED, None)
    assert (joinempty.outcome, joinempty.did) == (Outcome.JOINEMPTY, None)


def test_the_dialplan_status_event_gives_the_did_of_a_call_that_never_joined() -> None:
    (row,) = feed(
        Tracker(),
        0,
        "Event: UserEvent",
        "UserEvent: GraamQueueStatus",
        "Uniqueid: u9",
        f"ChanVariable: GRAAM_DID={DID}",
        "GraamQueue: t7-q3",
        "GraamStatus: CLOSED",
        f"GraamCaller: {CALLER}",
    )
    assert (row.outcome, row.did, row.caller_number) == (Outcome.CLOSED, DID, CALLER)
