"""A queue leg's CDR whose agent the dialplan could not write (Asterisk's CDR engine had not
linked the agent's channel yet) gets it from the AgentConnect of that channel."""

from __future__ import annotations

from graam_pbx.ami.protocol import Message
from graam_pbx.cdr.agent_legs import ConnectedAgents
from graam_pbx.cdr.parse import CdrRecord, record_from_event
from tests.unit.cdr.test_parse import event

AGENT_CHANNEL = "PJSIP/acme7-desk201-0000002a"


def queue_leg(**changes: str | None) -> CdrRecord:
    """The recorded answered leg as a queue leg (queue 3) whose peer is an agent's channel."""
    base = {"GraamQueue": "3", "GraamAgent": "", "DestinationChannel": AGENT_CHANNEL}
    return record_from_event(event(**{**base, **changes}))


def connect(answer_us: int, channel: str = AGENT_CHANNEL, member: str = "agent-42") -> Message:
    return Message(
        [
            ("Event", "AgentConnect"),
            ("Timestamp", f"{answer_us // 1_000_000}.{answer_us % 1_000_000:06d}"),
            ("Queue", "t7-q3"),
            ("MemberName", member),
            ("Interface", "PJSIP/acme7-desk201"),
            ("DestChannel", channel),
        ]
    )


def test_a_queue_leg_without_its_agent_gets_the_agent_device_and_answer_of_its_peer() -> None:
    leg = queue_leg()
    assert (leg.queue_id, leg.agent_user_id, leg.device) == (3, None, None)
    answer = leg.started_us + (leg.ended_us - leg.started_us) // 2
    agents = ConnectedAgents()
    agents.note(connect(answer))
    fixed = agents.attribute(leg)
    assert fixed is not None
    assert (fixed.agent_user_id, fixed.device) == (42, "acme7-desk201")
    assert (fixed.answered_us, fixed.billsec_us) == (answer, leg.ended_us - answer)
    assert fixed.billable is False  # an inbound leg
    assert len(agents) == 0  # one leg, one CDR


def test_a_leg_with_its_agent_of_no_queue_or_not_answered_by_a_phone_is_left_as_it_is() -> None:
    agents = ConnectedAgents()
    with_agent = queue_leg(GraamAgent="41")
    no_queue = queue_leg(GraamQueue="")
    not_answered = queue_leg(
        Disposition="NO ANSWER", DestinationChannel="PJSIP/acme7-desk202-0000002b"
    )
    no_phone = queue_leg(DestinationChannel="Local/201@t7-dest-00000001;1")
    agents.note(connect(with_agent.started_us))
    for leg in (with_agent, no_queue, not_answered, no_phone):
        assert agents.attribute(leg) == leg


def test_a_leg_that_comes_before_its_agents_answer_is_held_until_it() -> None:
    agents = ConnectedAgents()
    leg = queue_leg()
    assert agents.attribute(leg) is None  # held
    answer = leg.started_us + 1
    released = agents.note(connect(answer))
    assert released is not None
    assert (released.agent_user_id, released.answered_us) == (42, answer)
    assert agents.release(AGENT_CHANNEL) is None and len(agents) == 0


def test_a_held_leg_whose_answer_never_comes_is_released_as_it_is() -> None:
    agents = ConnectedAgents()
    first, second = queue_leg(), queue_leg(DestinationChannel="PJSIP/acme7-desk202-0000002b")
    assert agents.attribute(first) is None and agents.attribute(second) is None
    assert agents.release(AGENT_CHANNEL) == first
    assert agents.release_all() == [second]
    assert agents.release_all() == []


def test_an_answer_outside_the_leg_keeps_the_legs_own_times() -> None:
    leg = queue_leg()
    agents = ConnectedAgents()
    agents.note(connect(leg.ended_us + 1))
    fixed = agents.attribute(leg)
    assert fixed is not None
    assert fixed.agent_user_id == 42
    assert (fixed.answered_us, fixed.billsec_us) == (leg.answered_us, leg.billsec_us)


def test_events_without_an_agent_member_are_ignored_and_the_oldest_forgotten() -> None:
    agents = ConnectedAgents(max_remembered=2)
    agents.note(connect(1_000_000, member="Agent Smith"))
    assert len(agents) == 0
    for number in range(3):
        agents.note(connect(1_000_000, channel=f"PJSIP/a-{number}"))
    assert len(agents) == 2
    assert len(agents) == 2
    leg = queue_leg(DestinationChannel="PJSIP/a-0")
    assert agents.attribute(leg) is None  # forgotten: held for an answer to come


def test_a_ring_nobody_picked_up_gets_the_agent_its_agentcalled_named() -> None:
    rung_channel = "PJSIP/acme7-desk202-0000002b"
    agents = ConnectedAgents()
    called = Message(
        [
            ("Event", "AgentCalled"),
            ("Queue", "t7-q3"),
            ("MemberName", "agent-43"),
            ("Interface", "PJSIP/acme7-desk202"),
            ("DestChannel", rung_channel),
        ]
    )
    assert agents.note(called) is None
    missed = queue_leg(
        Disposition="NO ANSWER", DestinationChannel=rung_channel, LastApplication="Queue"
    )
    attributed = agents.attribute(missed)
    assert attributed is not None
    assert (attributed.agent_user_id, attributed.device) == (43, "acme7-desk202")
    assert (attributed.answered_us, attributed.billsec_us) == (None, 0)
    # Remembered once: the same channel's next leg is not this agent's any more.
    again = queue_leg(Disposition="NO ANSWER", DestinationChannel=rung_channel)
    assert agents.attribute(again) == again
