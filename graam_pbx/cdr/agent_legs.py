"""The agent of a queue call's agent leg when the dialplan could not write it on the CDR.

The queue's gosub (dialplan ``t<id>-agent-leg``) writes the agent, its device and its answer
on the agent's channel, which is the peer (party B) of the caller's CDR of that leg. Asterisk's
CDR engine links the two asynchronously: under load it may not have linked them yet when the
gosub runs, and the variables then land on no CDR that is written. The leg's CDR still names
the agent's channel (``DestinationChannel``), and Asterisk announced that channel's answer
before (``AgentConnect``: its member name ``agent-<user id>``, interface ``PJSIP/<device>`` and
``Timestamp``): this fills such a CDR from it. A CDR that has its agent is left as it is.

A ring nobody picked up runs no dialplan on the agent's channel: its leg gets the agent
from the ``AgentCalled`` event that announced the ring (the parser already named the device
from the channel).

Asterisk writes the ``Cdr`` event straight from its CDR engine and ``AgentConnect`` through
its event bus, which lags under load: the CDR of a short call may come first. An answered
queue leg without its agent whose peer is a PJSIP channel not seen answering yet is held
until that channel's ``AgentConnect`` comes, ``HOLD_SECONDS`` at most (then it is written as
it is; whatever is held when the worker stops is written too).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping

from graam_pbx.cdr.parse import ANSWERED, CdrRecord, is_billable

AGENT_CONNECT = "AgentConnect"
AGENT_CALLED = "AgentCalled"  # a member's phone rung: names the agent of an unanswered leg
_MEMBER = re.compile(r"^agent-([1-9][0-9]{0,17})$")
_TIMESTAMP = re.compile(r"^([0-9]{1,12})\.([0-9]{6})$")
# Agents' channels remembered: a leg's CDR comes when the call ends, so the oldest are
# forgotten only past this many (a call still going after that many others keeps its CDR as
# the dialplan wrote it).
MAX_REMEMBERED = 200_000
HOLD_SECONDS = 5.0
Remembered = OrderedDict[str, tuple[int, str | None, int | None]]


class ConnectedAgents:
    """Agents' channels answered in a queue, by channel name, until their leg's CDR comes."""

    def __init__(self, max_remembered: int = MAX_REMEMBERED) -> None:
        self._max = max_remembered
        # channel name -> (agent user id, device or None, answer in epoch microseconds or None);
        # oldest first. OrderedDicts: a dict trimmed from its front rescans its deleted slots
        # at every look at its first key.
        self._by_channel: Remembered = OrderedDict()
        self._held: dict[str, CdrRecord] = {}  # peer channel name -> its leg's CDR
        # channel name -> (agent user id, device or None, None) of every member's phone rung
        self._called: Remembered = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_channel)

    def note(self, event: Mapping[str, str]) -> CdrRecord | None:
        """Remember the agent's channel of one ``AgentConnect`` event; the CDR held for that
        channel, now with its agent, if one was."""
        channel = event.get("DestChannel", "")
        member = _MEMBER.match(event.get("MemberName", ""))
        if not channel or member is None:
            return None
        tech, _, name = event.get("Interface", "").partition("/")
        device = name if tech == "PJSIP" and name and "/" not in name else None
        if event.get("Event") == AGENT_CALLED:
            _remember(self._called, channel, (int(member[1]), device, None), self._max)
            return None
        stamp = _TIMESTAMP.match(event.get("Timestamp", ""))
        answer_us = int(stamp[1]) * 1_000_000 + int(stamp[2]) if stamp else None
        found = (int(member[1]), device, answer_us)
        held = self._held.pop(channel, None)
        if held is not None:
            return _with_agent(held, found)
        _remember(self._by_channel, channel, found, self._max)
        return None

    def attribute(self, record: CdrRecord) -> CdrRecord | None:
        """The record, with its agent, device and the agent's answer when it is a queue leg
        whose peer is a remembered agent's channel and the dialplan wrote no agent; None when
        it is held for its peer's ``AgentConnect`` (see ``note`` and ``release``)."""
        rung = self._called.pop(record.dstchannel, None)
        if record.agent_user_id is not None or record.queue_id is None:
            return record
        found = self._by_channel.pop(record.dstchannel, None)
        if found is not None:
            return _with_agent(record, found)
        if record.disposition == ANSWERED:
            if record.dstchannel.startswith("PJSIP/") and record.dstchannel not in self._held:
                self._held[record.dstchannel] = record
                return None
        elif rung is not None:
            return _with_agent(record, rung)
        return record

    def release(self, channel: str) -> CdrRecord | None:
        """The record held for ``channel``, as it is (its peer's answer never came)."""
        return self._held.pop(channel, None)

    def release_all(self) -> list[CdrRecord]:
        held, self._held = list(self._held.values()), {}
        return held


def _remember(
    into: Remembered, channel: str, found: tuple[int, str | None, int | None], most: int
) -> None:
    """Remember ``found`` for ``channel`` as the newest, forgetting the oldest past ``most``."""
    into[channel] = found
    into.move_to_end(channel)
    while len(into) > most:
        into.popitem(last=False)


def _with_agent(record: CdrRecord, found: tuple[int, str | None, int | None]) -> CdrRecord:
    agent_id, device, answer_us = found
    answered_us, billsec_us = record.answered_us, record.billsec_us
    if answer_us is not None and record.started_us <= answer_us <= record.ended_us:
        answered_us, billsec_us = answer_us, record.ended_us - answer_us
    return record._replace(
        agent_user_id=agent_id,
        device=record.device or device,
        answered_us=answered_us,
        billsec_us=billsec_us,
        billable=is_billable(
            record.direction, record.disposition, record.refusal_reason, billsec_us
        ),
    )
