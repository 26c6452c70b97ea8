"""Which AMI queue events make which webhook events, with what data."""

from __future__ import annotations

from datetime import UTC, datetime

from graam_pbx.ami import Message
from graam_pbx.webhooks.models import EventType
from graam_pbx.webhooks.recorder import recorded

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def event(name: str, **fields: str) -> Message:
    base = {
        "Queue": "t12-q3",
        "Linkedid": "graam-1764979200.10",
        "Uniqueid": "graam-1764979200.10",
        "CallerIDNum": "+33612345678",
        "CallerIDName": "Caller",
        "MemberName": "agent-17",
        "DestUniqueid": "graam-1764979200.12",
        "Timestamp": "1764979201.250000",
    }
    return Message([("Event", name), *{**base, **fields}.items()])


def test_an_agent_rung_then_answering_makes_ringing_then_answered() -> None:
    ringing = recorded(event("AgentCalled"), NOW)
    assert ringing is not None
    assert (ringing.tenant_id, ringing.type, ringing.ordering_key) == (
        12,
        EventType.CALL_RINGING,
        "call:graam-1764979200.10",
    )
    assert ringing.occurred_at == datetime(2025, 12, 6, 0, 0, 1, 250000, tzinfo=UTC)
    assert ringing.payload == {
        "call_id": "graam-1764979200.10",
        "channel_id": "graam-1764979200.10",
        "queue_id": 3,
        "caller": {"number": "+33612345678", "name": "Caller"},
        "agent_user_id": 17,
        "agent_channel_id": "graam-1764979200.12",
    }
    answered = recorded(event("AgentConnect", HoldTime="12", RingTime="3"), NOW)
    assert answered is not None and answered.type is EventType.CALL_ANSWERED
    assert (answered.payload["hold_seconds"], answered.payload["ring_seconds"]) == (12, 3)


def test_a_missed_ring_and_an_abandoned_caller() -> None:
    missed = recorded(event("AgentRingNoAnswer", RingTime="15"), NOW)
    assert missed is not None and missed.type is EventType.CALL_MISSED
    assert missed.payload["ring_seconds"] == 15
    gone = recorded(event("QueueCallerAbandon", Position="2", HoldTime="40"), NOW)
    assert gone is not None and gone.type is EventType.CALL_ABANDONED
    assert (gone.payload["position"], gone.payload["hold_seconds"]) == (2, 40)
    assert "agent_user_id" not in gone.payload


def test_events_of_no_tenants_queue_or_without_a_call_make_nothing() -> None:
    assert recorded(event("AgentCalled", Queue="support"), NOW) is None
    assert recorded(event("AgentCalled", Linkedid=""), NOW) is None
    assert recorded(event("QueueMemberStatus"), NOW) is None
