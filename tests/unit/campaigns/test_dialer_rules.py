"""The dialer's pure rules: Asterisk's statuses as outcomes, retries, queue members as agents,
and the variables each call carries into the dialplan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from graam_pbx.ami import Message
from graam_pbx.campaigns.measures import agents_from_queue_status
from graam_pbx.campaigns.models import Campaign, CampaignContact, Outcome
from graam_pbx.campaigns.outcomes import dial_outcome, from_attempt_call, next_step
from graam_pbx.campaigns.placing import (
    CampaignPlan,
    Placement,
    abandon_wait_seconds,
    originate_variables,
)

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
RETRIES = {
    "no_answer": {"delay_seconds": 7200, "max": 2},
    "busy": {"delay_seconds": 1800, "max": 1},
    "failed": {"delay_seconds": 3600, "max": 0},
}


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("NOANSWER", Outcome.NO_ANSWER),
        ("CANCEL", Outcome.NO_ANSWER),
        ("BUSY", Outcome.BUSY),
        ("CONGESTION", Outcome.FAILED),
        ("CHANUNAVAIL", Outcome.FAILED),
        ("", Outcome.FAILED),
        ("SOMETHINGNEW", Outcome.FAILED),
    ],
)
def test_dial_statuses_become_outcomes(status: str, outcome: Outcome) -> None:
    assert dial_outcome(status) is outcome


def _dialing(retries_used: dict[str, int] | None = None) -> CampaignContact:
    return CampaignContact(
        campaign_id=1,
        contact_id=2,
        state="dialing",
        attempts=0,
        retries_used=retries_used or {},
    )


def test_an_answered_contact_is_done() -> None:
    link = _dialing()
    next_step(link, Campaign(retries=RETRIES), "answered", NOW)
    assert (link.state, link.attempts, link.last_outcome) == ("done", 1, "answered")


def test_a_busy_contact_is_retried_after_the_delay_until_its_maximum() -> None:
    link = _dialing()
    next_step(link, Campaign(retries=RETRIES), "busy", NOW)
    assert link.state == "pending"
    assert link.next_attempt_at == NOW + timedelta(seconds=1800)
    assert link.retries_used == {"busy": 1}
    link.state = "dialing"
    next_step(link, Campaign(retries=RETRIES), "busy", NOW)
    assert (link.state, link.attempts, link.retries_used) == ("done", 2, {"busy": 1})


def test_an_abandoned_person_is_called_again_as_one_who_did_not_answer() -> None:
    link = _dialing({"no_answer": 1})
    next_step(link, Campaign(retries=RETRIES), "abandoned", NOW)
    assert link.state == "pending"
    assert link.retries_used == {"no_answer": 2}
    assert link.next_attempt_at == NOW + timedelta(seconds=7200)


@pytest.mark.parametrize("outcome", ["lost", "failed", "machine"])
def test_without_retries_left_the_contact_is_done(outcome: str) -> None:
    link = _dialing()
    next_step(link, Campaign(retries=RETRIES), outcome, NOW)
    assert link.state == "done"
    assert link.next_attempt_at is None


def test_a_contact_moved_meanwhile_keeps_its_state() -> None:
    link = _dialing()
    link.state = "done"  # a refusal disposition came first
    next_step(link, Campaign(retries=RETRIES), "no_answer", NOW)
    assert link.state == "done"
    assert link.attempts == 1


def _member(queue: str, status: str, *, paused: bool = False, in_call: bool = False) -> Message:
    return Message(
        [
            ("Event", "QueueMember"),
            ("Queue", queue),
            ("Status", status),
            ("Paused", "1" if paused else "0"),
            ("InCall", "1" if in_call else "0"),
        ]
    )


def test_queue_members_are_counted_available_busy_or_paused() -> None:
    queue = "t3-q9"
    events = [
        Message([("Event", "QueueParams"), ("Queue", queue)]),
        _member(queue, "1"),
        _member(queue, "1"),
        _member(queue, "2"),
        _member(queue, "1", in_call=True),
        _member(queue, "6"),
        _member(queue, "1", paused=True),
        _member(queue, "5"),  # unavailable: neither
        _member("t3-q10", "1"),  # another queue
    ]
    agents = agents_from_queue_status(events, queue)
    assert (agents.available, agents.busy, agents.paused) == (2, 3, 1)


def _plan(amd: bool) -> CampaignPlan:
    return CampaignPlan(
        id=5,
        tenant_id=3,
        mode="progressive",
        queue_id=9,
        caller_id="+33162000000",
        audience="consumers",
        require_consent=False,
        calling_hours=(),
        retries={},
        ring_seconds=20,
        max_channels=4,
        amd_enabled=amd,
        machine_action="message",
        machine_prompt="/var/lib/asterisk/graam-sounds/t3/p1-abc",
        abandon_prompt="/var/lib/asterisk/graam-sounds/t3/p2-def",
        abandon_target=0.025,
    )


def test_detection_and_the_queue_wait_fit_in_the_two_legal_seconds() -> None:
    assert abandon_wait_seconds(_plan(amd=False)) == 2
    assert abandon_wait_seconds(_plan(amd=True)) == 1


def test_each_call_carries_its_attempt_and_campaign_settings() -> None:
    placement = Placement(
        attempt_id=77,
        campaign_id=5,
        tenant_id=3,
        contact_id=8,
        number="+33612345678",
        channel_id="cmp-0123",
        mode="progressive",
    )
    variables = originate_variables(_plan(amd=True), placement)
    assert variables == {
        "GRAAM_ATTEMPT": "77",
        "GRAAM_CAMPAIGN": "5",
        "GRAAM_CAMPAIGN_CID": "+33162000000",
        "GRAAM_CAMPAIGN_RING": "20",
        "GRAAM_CAMPAIGN_QUEUE": "9",
        "GRAAM_CAMPAIGN_AMD": "1",
        "GRAAM_CAMPAIGN_WAIT": "1",
        "GRAAM_CAMPAIGN_MACHINE": "message",
        "GRAAM_CAMPAIGN_MACHINE_PROMPT": "/var/lib/asterisk/graam-sounds/t3/p1-abc",
        "GRAAM_CAMPAIGN_ABANDON_PROMPT": "/var/lib/asterisk/graam-sounds/t3/p2-def",
        "GRAAM_CAMPAIGN_CONTACT": "+33612345678",
    }


def _after_a_call(queue: str, own_wrapup: int) -> Message:
    return Message(
        [
            ("Event", "QueueMember"),
            ("Queue", queue),
            ("Status", "1"),
            ("Paused", "0"),
            ("InCall", "0"),
            ("LastCall", "1000"),
            ("Wrapuptime", str(own_wrapup)),
        ]
    )


def test_a_member_in_its_wrap_up_is_busy_until_it_ends() -> None:
    queue = "t3-q9"
    member = _after_a_call(queue, own_wrapup=0)  # the queue's wrap-up applies
    during = agents_from_queue_status([member], queue, wrapup_seconds=10, now=1005.0)
    after = agents_from_queue_status([member], queue, wrapup_seconds=10, now=1011.0)
    assert (during.available, during.busy) == (0, 1)
    assert (after.available, after.busy) == (1, 0)
    own = _after_a_call(queue, own_wrapup=30)
    longer = agents_from_queue_status([own], queue, wrapup_seconds=10, now=1020.0)
    assert (longer.available, longer.busy) == (0, 1)


@pytest.mark.parametrize(
    ("uniqueid", "linkedid", "ours"),
    [
        ("cmp-abc", "cmp-abc", True),  # the originated channel (answered side, preview agent)
        ("cmp-abc;2", "cmp-abc", True),  # its Local twin, the contact's leg
        ("1733300000.42", "cmp-abc", True),  # a channel of the same call
        ("1733300000.42", "1733300000.42", False),  # another call of the tenant
        ("cmp-abcd;2", "cmp-abcd", False),
        ("", "", False),
    ],
)
def test_an_attempt_takes_events_only_from_its_own_call(
    uniqueid: str, linkedid: str, ours: bool
) -> None:
    # The attempt id is a channel variable: another channel of the tenant carrying it (or a
    # made-up one) must not end the attempt.
    event = Message(
        [
            ("Event", "UserEvent"),
            ("UserEvent", "GraamCampaignDial"),
            ("Uniqueid", uniqueid),
            ("Linkedid", linkedid),
            ("GraamTenant", "7"),
            ("GraamAttempt", "12"),
        ]
    )
    assert from_attempt_call(event, "cmp-abc") is ours
