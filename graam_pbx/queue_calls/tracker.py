"""Queue events in, queue-call rows out: one row per (caller channel, queue, entry).

Two sources speak the same facts: AMI events (live) and Asterisk's ``queue_log`` (backfill
after the control plane or AMI was away). Both are turned into ``QueueEvent`` here and fed
to a ``Tracker``, which yields a ``QueueCallRow`` once the call's outcome is known. A row's
key (tenant, caller uniqueid, queue, entry ordinal) is the same from both sources, so
whichever writes it first wins and the other is a harmless duplicate.

``Queue()`` itself tells only its ``QUEUESTATUS`` for a caller who left without being answered
nor hanging up (timeout, leave-empty) or never joined (full, join-empty): the generated
dialplan reports it after ``Queue()`` both as a ``GraamQueueStatus`` user event and as a
``GRAAMSTATUS`` line of the queue log.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

# Ids of 18 digits at most: below the columns' bigint (a row Postgres refuses blocks the writer).
QUEUE_NAME = re.compile(r"^t([0-9]{1,18})-q([0-9]{1,18})$")
AGENT_MEMBER = re.compile(r"^agent-([0-9]{1,18})$")
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
STATUS_EVENT = "GraamQueueStatus"  # UserEvent sent by the dialplan after Queue()
STATUS_LOG = "GRAAMSTATUS"  # the same, as a queue_log line (QueueLog())
# The number the caller dialled: the inbound dialplan sets this channel variable, AMI shows it
# on the caller's queue events (manager.conf ``channelvars``) and Queue() writes it in
# queue_log's ENTERQUEUE line (its URL argument, never sent to a PJSIP phone).
DID_VARIABLE = "GRAAM_DID"
# A caller who left without an outcome waits this long for the dialplan's status.
STATUS_GRACE = timedelta(seconds=30)
# An answered call closed by its caller's hang-up (``Tracker.feed``) waits this long for its
# AgentComplete, which then changes nothing.
COMPLETE_GRACE = timedelta(seconds=60)
MILLI = Decimal("0.001")


class Outcome(StrEnum):
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    TIMEOUT = "timeout"
    FULL = "full"
    JOINEMPTY = "joinempty"
    LEAVEEMPTY = "leaveempty"
    CLOSED = "closed"
    EXITKEY = "exitkey"
    TRANSFERRED = "transferred"


OUTCOMES = tuple(outcome.value for outcome in Outcome)  # their names, in their order


# QUEUESTATUS values (app_queue) and the outcome each means.
STATUS_OUTCOMES: Mapping[str, Outcome] = {
    "TIMEOUT": Outcome.TIMEOUT,
    "FULL": Outcome.FULL,
    "JOINEMPTY": Outcome.JOINEMPTY,
    "JOINUNAVAIL": Outcome.JOINEMPTY,
    "LEAVEEMPTY": Outcome.LEAVEEMPTY,
    "LEAVEUNAVAIL": Outcome.LEAVEEMPTY,
    "CONTINUE": Outcome.EXITKEY,
    "CLOSED": Outcome.CLOSED,
}
NEVER_JOINED = frozenset({Outcome.FULL, Outcome.JOINEMPTY, Outcome.CLOSED})


class Kind(StrEnum):
    JOIN = "join"
    CONNECT = "connect"
    COMPLETE = "complete"
    ABANDON = "abandon"  # queue_log: the caller hung up while waiting
    # AMI QueueCallerAbandon: Asterisk sends it for a caller who hung up and for one whose
    # maximum wait is over alike; the dialplan's status (timeout) or the hang-up tells.
    ABANDON_OR_TIMEOUT = "abandon-or-timeout"
    HANGUP = "hangup"
    EXIT = "exit"  # left with a known outcome (queue_log: timeout, empty, key)
    LEAVE = "leave"  # left, outcome not said (AMI QueueCallerLeave)
    STATUS = "status"  # QUEUESTATUS after Queue()
    RING_NO_ANSWER = "ringnoanswer"
    DUMP = "dump"
    HOLD = "hold"
    UNHOLD = "unhold"


@dataclass(frozen=True)
class QueueEvent:
    kind: Kind
    at: datetime
    uniqueid: str
    queue: str = ""
    member: str = ""
    position: int | None = None
    wait: Decimal | None = None  # seconds waited, as the source says
    talk: Decimal | None = None
    outcome: Outcome | None = None
    caller_number: str = ""
    linkedid: str = ""
    exit_key: str | None = None
    # The agent's channel (AMI AgentConnect/AgentComplete ``DestUniqueid``): it names the call
    # when the caller's channel was gone before Asterisk published AgentComplete.
    member_uniqueid: str = ""
    did: str = ""  # the number the caller dialled (entry, status)
    device: str = ""  # the answering device's SIP username (AMI AgentConnect ``Interface``)


@dataclass
class QueueCallRow:
    tenant_id: int
    queue_id: int
    queue_name: str
    caller_uniqueid: str
    entry: int  # 1 for the caller's first entry into this queue, 2 for the next, ...
    linkedid: str
    caller_number: str
    entered_at: datetime
    position_at_entry: int | None
    ended_at: datetime | None = None
    answered_at: datetime | None = None
    agent_id: int | None = None
    wait_seconds: Decimal = Decimal(0)
    talk_seconds: Decimal = Decimal(0)
    hold_seconds: Decimal = Decimal(0)
    wrapup_seconds: Decimal = Decimal(0)
    ring_no_answer: int = 0
    outcome: Outcome | None = None
    abandon_position: int | None = None
    exit_key: str | None = None
    did: str | None = None
    left_at: datetime | None = None  # left the queue, outcome still unknown
    left_as: Outcome | None = field(default=None, repr=False)  # the outcome unless told
    held_since: datetime | None = field(default=None, repr=False)
    member_uniqueid: str = field(default="", repr=False, compare=False)
    agent_gone_at: datetime | None = field(default=None, repr=False, compare=False)
    # The answering device's SIP username (live only: queue_log does not name it; the store
    # then takes the device the agent was logged in from).
    device: str | None = None


def queue_ids(queue: str) -> tuple[int, int] | None:
    """(tenant id, queue id) of a generated queue name ``t<tenant>-q<queue>``."""
    match = QUEUE_NAME.match(queue)
    return (int(match[1]), int(match[2])) if match else None


def agent_of(member: str) -> int | None:
    match = AGENT_MEMBER.match(member)
    return int(match[1]) if match else None


def seconds(start: datetime, end: datetime) -> Decimal:
    return max(Decimal(0), Decimal((end - start) / timedelta(microseconds=1)) / 1_000_000).quantize(
        MILLI
    )


@dataclass(frozen=True)
class _HungUp:
    """An answered call closed at a hang-up before its AgentComplete came."""

    queue: str
    agent_id: int | None
    member_uniqueid: str
    wait: Decimal
    at: datetime


class Tracker:
    """The queue calls in progress; ``feed`` returns the rows an event finished.

    An answered call ends with its AgentComplete, or else with its caller's ``Hangup``: a busy
    Asterisk publishes AgentComplete from channel snapshots, and once both channels are gone
    the event names neither (``_complete_without_caller``) or is not published at all. The
    call is then closed at the first of its two channels' hang-ups, and an AgentComplete
    coming after that changes nothing.
    """

    def __init__(self) -> None:
        self.open: dict[tuple[str, str], QueueCallRow] = {}
        # Oldest first (``expire`` trims it from its front; an OrderedDict, as a dict trimmed
        # from its front rescans its deleted slots at every look at its first key).
        self._entries: OrderedDict[tuple[str, str], tuple[int, datetime]] = OrderedDict()
        self._left: dict[str, set[str]] = {}  # caller uniqueid -> queues left, outcome unknown
        self._answered: dict[str, tuple[str, str]] = {}  # caller uniqueid -> its answered call
        self._agent_legs: dict[str, tuple[str, str]] = {}  # agent's channel -> its call
        # Closed, AgentComplete not seen; oldest first (``expire`` trims it from its front).
        self._hung_up: OrderedDict[tuple[str, str], _HungUp] = OrderedDict()
        # Ends of calls whose entry this tracker never saw (they joined before it started, or
        # while AMI was away): their rows are only in queue_log, for the writer to read now.
        self.unseen_ends = 0

    @property
    def entries(self) -> Mapping[tuple[str, str], tuple[int, datetime]]:
        """How many times each (caller uniqueid, queue) entered, and when it last did."""
        return self._entries

    def seed(self, uniqueid: str, queue: str, count: int, seen: datetime) -> None:
        """Number the caller's next entry into ``queue`` after ``count`` earlier ones."""
        self._entries[(uniqueid, queue)] = (count, seen)

    def feed(self, event: QueueEvent) -> list[QueueCallRow]:
        if event.kind is Kind.HOLD or event.kind is Kind.UNHOLD:
            self._hold(event)
            return []
        if event.kind is Kind.HANGUP:
            done = self._hangup_answered(event)
            for queue in self._left.pop(event.uniqueid, set()):
                row = self.open.get((event.uniqueid, queue))
                if row is not None and row.left_at is not None:
                    done.extend(
                        self._close(
                            (event.uniqueid, queue), row.left_at, row.left_as or Outcome.TIMEOUT
                        )
                    )
            return done
        ids = queue_ids(event.queue)
        if ids is None:
            return []
        if event.kind is Kind.COMPLETE and not event.uniqueid:
            found = self._complete_without_caller(event)
            if found is None:
                return []  # its call was closed at the hang-up
            event = found
        key = (event.uniqueid, event.queue)
        if event.kind is Kind.JOIN:
            return self._join(event, ids)
        if event.kind is Kind.STATUS:
            return self._status(event, ids)
        row = self.open.get(key)
        if row is None:
            if event.kind is Kind.COMPLETE and self._hung_up.pop(key, None) is not None:
                return []
            if event.kind in _ENDS:
                self.unseen_ends += 1
            return []
        match event.kind:
            case Kind.CONNECT:
                self._answered[event.uniqueid] = key
                if event.member_uniqueid:
                    self._agent_legs[event.member_uniqueid] = key
                row.member_uniqueid = event.member_uniqueid
                row.device = event.device or None
                row.answered_at = event.at
                row.left_at = None
                row.left_as = None
                row.abandon_position = None
                row.agent_id = agent_of(event.member)
                row.wait_seconds = _wait(event, row)
            case Kind.COMPLETE:
                if row.answered_at is None:
                    row.answered_at = event.at
                row.talk_seconds = (
                    event.talk.quantize(MILLI)
                    if event.talk is not None
                    else seconds(row.answered_at, event.at)
                )
                if row.agent_id is None:
                    row.agent_id = agent_of(event.member)
                return self._close(key, event.at, event.outcome or Outcome.ANSWERED)
            case Kind.ABANDON:
                row.abandon_position = event.position
                row.wait_seconds = _wait(event, row)
                return self._close(key, event.at, Outcome.ABANDONED)
            case Kind.EXIT:
                row.wait_seconds = _wait(event, row)
                row.exit_key = event.exit_key
                return self._close(key, event.at, event.outcome or Outcome.TIMEOUT)
            case Kind.ABANDON_OR_TIMEOUT:
                if row.answered_at is None:
                    row.abandon_position = event.position
                    row.wait_seconds = _wait(event, row)
                    self._leave(row, event.at, Outcome.ABANDONED)
            case Kind.LEAVE:
                if row.answered_at is None and row.left_at is None:
                    row.wait_seconds = seconds(row.entered_at, event.at)
                    self._leave(row, event.at, None)
            case Kind.RING_NO_ANSWER:
                row.ring_no_answer += 1
            case Kind.DUMP:
                if row.agent_id is None:
                    row.agent_id = agent_of(event.member)
        return []

    def _complete_without_caller(self, event: QueueEvent) -> QueueEvent | None:
        """Asterisk publishes AgentComplete from the caller's latest snapshot; when the caller's
        channel is already gone (a busy Asterisk), the event has no caller fields at all
        (no ``Uniqueid``), only the agent's (``Dest…``), or none. The answered call is then the
        one its agent's channel was connected to, else the one of that member (and that call,
        and that wait when the member has more than one). The event with the caller found, or
        None when that call was already closed at a hang-up."""
        answered = [
            (row.caller_uniqueid, row.member_uniqueid, row.agent_id, row.linkedid, row.wait_seconds)
            for row in self.open.values()
            if row.queue_name == event.queue and row.answered_at is not None
        ]
        answered += [
            (key[0], done.member_uniqueid, done.agent_id, "", done.wait)
            for key, done in self._hung_up.items()
            if done.queue == event.queue
        ]
        found = [r for r in answered if event.member_uniqueid and r[1] == event.member_uniqueid]
        if not found:
            agent = agent_of(event.member)
            found = [
                r
                for r in answered
                if r[2] is not None
                and r[2] == agent
                and (not event.linkedid or not r[3] or r[3] == event.linkedid)
            ]
            if len(found) > 1 and event.wait is not None:
                found = [r for r in found if r[4] == event.wait]
        if len(found) != 1:
            return event  # nothing certain: the queue_log backfill has the call
        key = (found[0][0], event.queue)
        if self._hung_up.pop(key, None) is not None:
            return None
        return replace(event, uniqueid=found[0][0])

    def _hangup_answered(self, event: QueueEvent) -> list[QueueCallRow]:
        """The agent's channel hung up: note when. The caller's: its answered call is over
        (when no AgentComplete came first), at the first of the two hang-ups."""
        key = self._agent_legs.pop(event.uniqueid, None)
        row = self.open.get(key) if key is not None else None
        if row is not None and row.agent_gone_at is None:
            row.agent_gone_at = event.at
        key = self._answered.get(event.uniqueid)
        row = self.open.get(key) if key is not None else None
        if key is None or row is None or row.answered_at is None:
            return []
        end = min(event.at, row.agent_gone_at or event.at)
        row.talk_seconds = seconds(row.answered_at, end)
        self._hung_up[key] = _HungUp(
            row.queue_name, row.agent_id, row.member_uniqueid, row.wait_seconds, end
        )
        return self._close(key, end, Outcome.ANSWERED)

    def forget_open(self) -> None:
        """Asterisk restarted: the calls in progress are gone, their outcome never told."""
        self.open.clear()
        self._left.clear()
        self._answered.clear()
        self._agent_legs.clear()
        self._hung_up.clear()

    def expire(self, now: datetime) -> list[QueueCallRow]:
        """Rows whose caller left without an outcome and whose status never came: timeout."""
        done: list[QueueCallRow] = []
        for key, row in list(self.open.items()):
            if row.left_at is not None and now - row.left_at >= STATUS_GRACE:
                done.extend(self._close(key, row.left_at, row.left_as or Outcome.TIMEOUT))
        # Oldest first (insertion order) here too.
        hung_up = self._hung_up
        while hung_up and now - next(iter(hung_up.values())).at >= COMPLETE_GRACE:
            hung_up.popitem(last=False)
        # Oldest entry first (``_join``): the writer calls this at every wake-up, and a day of
        # entries is millions at a call centre's rate; only those forgotten are visited.
        horizon = now - timedelta(days=1)
        entries = self._entries
        while entries and next(iter(entries.values()))[1] < horizon:
            entries.popitem(last=False)
        return done

    def _join(self, event: QueueEvent, ids: tuple[int, int]) -> list[QueueCallRow]:
        key = (event.uniqueid, event.queue)
        done = self._close(key, event.at, Outcome.TIMEOUT) if key in self.open else []
        count = self._entries.get(key, (0, event.at))[0] + 1
        self._entries[key] = (count, event.at)
        self._entries.move_to_end(key)  # ``expire`` reads from the front
        self.open[key] = QueueCallRow(
            tenant_id=ids[0],
            queue_id=ids[1],
            queue_name=event.queue,
            caller_uniqueid=event.uniqueid,
            entry=count,
            linkedid=event.linkedid or event.uniqueid,
            caller_number=event.caller_number,
            entered_at=event.at,
            position_at_entry=event.position,
            did=event.did if E164.match(event.did) else None,
        )
        return done

    def _status(self, event: QueueEvent, ids: tuple[int, int]) -> list[QueueCallRow]:
        outcome = event.outcome
        key = (event.uniqueid, event.queue)
        row = self.open.get(key)
        if row is not None:
            if row.answered_at is None and outcome is not None and outcome not in NEVER_JOINED:
                if row.left_at is None:
                    row.wait_seconds = seconds(row.entered_at, event.at)
                row.abandon_position = None  # still there to hear the status: not abandoned
                return self._close(key, row.left_at or event.at, outcome)
            return []
        if outcome in NEVER_JOINED:
            # Never in the queue: a row of its own, no wait.
            done = self._join(replace(event, kind=Kind.JOIN), ids)
            return done + self._close(key, event.at, outcome)
        if outcome is not None:
            self.unseen_ends += 1  # its GRAAMSTATUS line is in queue_log already
        return []

    def _hold(self, event: QueueEvent) -> None:
        # Asterisk raises Hold on the channel whose phone put the other party on hold: the
        # agent's (``member_uniqueid``) when the agent holds the caller, else the caller's.
        if not event.uniqueid:
            return
        for row in self.open.values():
            if row.answered_at is not None and event.uniqueid in (
                row.caller_uniqueid,
                row.member_uniqueid,
            ):
                if event.kind is Kind.HOLD and row.held_since is None:
                    row.held_since = event.at
                elif event.kind is Kind.UNHOLD and row.held_since is not None:
                    row.hold_seconds += seconds(row.held_since, event.at)
                    row.held_since = None

    def _leave(self, row: QueueCallRow, at: datetime, outcome: Outcome | None) -> None:
        if row.left_at is None:
            row.left_at = at
        if outcome is not None:
            row.left_as = outcome
        self._left.setdefault(row.caller_uniqueid, set()).add(row.queue_name)

    def _close(self, key: tuple[str, str], at: datetime, outcome: Outcome) -> list[QueueCallRow]:
        row = self.open.pop(key)
        if self._answered.get(row.caller_uniqueid) == key:
            del self._answered[row.caller_uniqueid]
        if row.member_uniqueid and self._agent_legs.get(row.member_uniqueid) == key:
            del self._agent_legs[row.member_uniqueid]
        queues = self._left.get(row.caller_uniqueid)
        if queues is not None:
            queues.discard(row.queue_name)
            if not queues:
                del self._left[row.caller_uniqueid]
        row.outcome = outcome
        row.ended_at = at
        row.left_at = None
        if row.held_since is not None:
            row.hold_seconds += seconds(row.held_since, at)
            row.held_since = None
        return [row]


# Events that end a caller's stay in a queue.
_ENDS = frozenset({Kind.COMPLETE, Kind.ABANDON, Kind.EXIT, Kind.ABANDON_OR_TIMEOUT})


def _wait(event: QueueEvent, row: QueueCallRow) -> Decimal:
    if event.wait is not None:
        return event.wait.quantize(MILLI)
    return seconds(row.entered_at, event.at)


# ---- AMI events ----------------------------------------------------------------------------


def channel_variable(fields: Mapping[str, str], name: str) -> str:
    """A channel variable of an AMI event (manager.conf ``channelvars``): the field
    ``ChanVariable(<name>)`` (every variable, see ``ami_fields``), else the ``ChanVariable``
    field when it is that variable."""
    found = fields.get(f"ChanVariable({name})")
    if found is not None:
        return found
    variable, _, value = fields.get("ChanVariable", "").partition("=")
    return value if variable == name else ""


def ami_fields(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """An event's fields by name (the first of a repeated one), and each channel variable of
    the caller's channel as ``ChanVariable(<name>)``."""
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name == "ChanVariable":
            variable, _, found = value.partition("=")
            fields.setdefault(f"ChanVariable({variable})", found)
        fields.setdefault(name, value)
    return fields


def _device(interface: str) -> str:
    """The SIP username of a member interface ``PJSIP/<username>``, else empty."""
    tech, _, name = interface.partition("/")
    return name if tech == "PJSIP" and "/" not in name else ""


def event_from_ami(fields: Mapping[str, str], at: datetime) -> QueueEvent | None:
    """The queue fact of one AMI event (its fields by name), or None."""
    name = fields.get("Event", "")
    uniqueid = fields.get("Uniqueid", "")
    queue = fields.get("Queue", "")
    member = fields.get("MemberName", "")
    if name == "QueueCallerJoin":
        return QueueEvent(
            Kind.JOIN,
            at,
            uniqueid,
            queue,
            position=_int(fields.get("Position")),
            caller_number=fields.get("CallerIDNum", ""),
            linkedid=fields.get("Linkedid", ""),
            did=channel_variable(fields, DID_VARIABLE),
        )
    if name == "QueueCallerLeave":
        return QueueEvent(Kind.LEAVE, at, uniqueid, queue)
    if name == "QueueCallerAbandon":
        return QueueEvent(
            Kind.ABANDON_OR_TIMEOUT,
            at,
            uniqueid,
            queue,
            position=_int(fields.get("Position")),
            wait=_decimal(fields.get("HoldTime")),
        )
    if name == "AgentConnect":
        return QueueEvent(
            Kind.CONNECT,
            at,
            uniqueid,
            queue,
            member,
            wait=_decimal(fields.get("HoldTime")),
            member_uniqueid=fields.get("DestUniqueid", ""),
            device=_device(fields.get("Interface", "")),
        )
    if name == "AgentComplete":
        reason = fields.get("Reason", "")
        return QueueEvent(
            Kind.COMPLETE,
            at,
            uniqueid,
            queue,
            member,
            wait=_decimal(fields.get("HoldTime")),
            talk=_decimal(fields.get("TalkTime")),
            outcome=Outcome.TRANSFERRED if reason == "transfer" else Outcome.ANSWERED,
            linkedid=fields.get("Linkedid") or fields.get("DestLinkedid", ""),
            member_uniqueid=fields.get("DestUniqueid", ""),
        )
    if name == "AgentRingNoAnswer":
        return QueueEvent(Kind.RING_NO_ANSWER, at, uniqueid, queue, member)
    if name == "AgentDump":
        return QueueEvent(Kind.DUMP, at, uniqueid, queue, member)
    if name == "Hangup":
        return QueueEvent(Kind.HANGUP, at, uniqueid)
    if name in ("Hold", "Unhold"):
        return QueueEvent(Kind.HOLD if name == "Hold" else Kind.UNHOLD, at, uniqueid)
    if name == "UserEvent" and fields.get("UserEvent") == STATUS_EVENT:
        return QueueEvent(
            Kind.STATUS,
            at,
            uniqueid,
            fields.get("GraamQueue", ""),
            outcome=STATUS_OUTCOMES.get(fields.get("GraamStatus", "")),
            caller_number=fields.get("GraamCaller", ""),
            linkedid=fields.get("Linkedid", ""),
            did=channel_variable(fields, DID_VARIABLE),
        )
    return None


AMI_EVENTS = (
    "QueueCallerJoin",
    "QueueCallerLeave",
    "QueueCallerAbandon",
    "AgentConnect",
    "AgentComplete",
    "AgentRingNoAnswer",
    "AgentDump",
    "Hold",
    "Unhold",
    "Hangup",
    "UserEvent",
)


# ---- queue_log lines -------------------------------------------------------------------------


def event_from_log(line: str) -> QueueEvent | None:
    """The queue fact of one ``queue_log`` line (``time|callid|queue|agent|event|data…``)."""
    parts = line.rstrip("\r\n").split("|")
    if len(parts) < 5 or not parts[0].isdigit():
        return None
    at = datetime.fromtimestamp(int(parts[0]), UTC)
    uniqueid, queue, agent, name = parts[1], parts[2], parts[3], parts[4]
    data = [*parts[5:], "", "", "", "", ""]
    if name == "ENTERQUEUE":  # url (the DID, see DID_VARIABLE)|caller|position
        return QueueEvent(
            Kind.JOIN,
            at,
            uniqueid,
            queue,
            position=_int(data[2]),
            caller_number=data[1],
            did=data[0],
        )
    if name == "CONNECT":
        return QueueEvent(Kind.CONNECT, at, uniqueid, queue, agent, wait=_decimal(data[0]))
    if name in ("COMPLETECALLER", "COMPLETEAGENT"):
        return QueueEvent(
            Kind.COMPLETE,
            at,
            uniqueid,
            queue,
            agent,
            wait=_decimal(data[0]),
            talk=_decimal(data[1]),
            outcome=Outcome.ANSWERED,
        )
    if name in ("BLINDTRANSFER", "ATTENDEDTRANSFER"):
        return QueueEvent(Kind.COMPLETE, at, uniqueid, queue, agent, outcome=Outcome.TRANSFERRED)
    if name == "ABANDON":
        return QueueEvent(
            Kind.ABANDON, at, uniqueid, queue, position=_int(data[0]), wait=_decimal(data[2])
        )
    if name in ("EXITWITHTIMEOUT", "EXITEMPTY"):
        outcome = Outcome.TIMEOUT if name == "EXITWITHTIMEOUT" else Outcome.LEAVEEMPTY
        return QueueEvent(Kind.EXIT, at, uniqueid, queue, outcome=outcome, wait=_decimal(data[2]))
    if name == "EXITWITHKEY":
        return QueueEvent(
            Kind.EXIT,
            at,
            uniqueid,
            queue,
            outcome=Outcome.EXITKEY,
            exit_key=data[0] or None,
            wait=_decimal(data[3]),
        )
    if name == "RINGNOANSWER":
        return QueueEvent(Kind.RING_NO_ANSWER, at, uniqueid, queue, agent)
    if name == "AGENTDUMP":
        return QueueEvent(Kind.DUMP, at, uniqueid, queue, agent)
    if name == STATUS_LOG:
        return QueueEvent(
            Kind.STATUS,
            at,
            uniqueid,
            queue,
            outcome=STATUS_OUTCOMES.get(data[0]),
            caller_number=data[1],
            did=data[2],
        )
    return None


def rows_from_log(lines: Iterable[str], tracker: Tracker | None = None) -> list[QueueCallRow]:
    """Every row the lines finish (calls still open stay in ``tracker``)."""
    tracker = tracker or Tracker()
    done: list[QueueCallRow] = []
    for line in lines:
        event = event_from_log(line)
        if event is not None:
            done.extend(tracker.feed(event))
    return done


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _decimal(text: str | None) -> Decimal | None:
    value = _int(text)
    return Decimal(value) if value is not None else None
