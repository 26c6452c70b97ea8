"""A CDR that carries on an outbound call's carrier leg after a transfer becomes a leg of that
outbound call (cdr/continuations.py): same number, same caller ID, billable by the usual rule;
no other CDR changes."""

from __future__ import annotations

from graam_pbx.cdr import continuations
from graam_pbx.cdr.continuations import CarrierLeg, OutboundCall
from graam_pbx.cdr.parse import CdrRecord, record_from_event
from tests.unit.cdr.test_parse import event

AGENT = "PJSIP/t7-acme-desk201-00000000"
COLLEAGUE = "PJSIP/t7-acme-desk202-00000002"
CARRIER = "PJSIP/trunk-carrier4-00000001"
CALLER = "PJSIP/trunk-carrier4-00000007"  # an inbound caller's channel: a carrier's too
CALL = "c2c-1"


def leg(**changes: object) -> CdrRecord:
    """An answered leg of tenant 7's call ``c2c-1`` on node ``a``, with ``changes``."""
    base = record_from_event(event())._replace(
        system_name="a",
        linkedid=CALL,
        tenant_id=7,
        direction=None,
        to_number=None,
        src="+33612345678",
        disposition="ANSWERED",
        billsec_us=1_500_000,
        billable=False,
    )
    return base._replace(**changes)


def continuing(records: list[CdrRecord], known: dict[CarrierLeg, OutboundCall]) -> list[CdrRecord]:
    """``records`` as the writer leaves them, the outbound calls ``known``."""
    return continuations.apply(records, continuations.candidates(records), known)


OUTBOUND = leg(
    channel=AGENT,
    dstchannel=CARRIER,
    direction="outbound",
    to_number="+33612345678",
    src="+33173306690",
    billable=True,
)


def test_the_far_end_sent_elsewhere_by_a_blind_transfer_goes_on_billing_the_call() -> None:
    # The carrier's channel, redirected, dials the colleague: party A, no direction.
    after = leg(channel=CARRIER, dstchannel=COLLEAGUE, agent_user_id=5)
    known = continuations.outbound_calls([OUTBOUND])
    assert known == {CarrierLeg("a", CALL, CARRIER): OutboundCall("+33612345678", "+33173306690")}
    (same, continued) = continuing([OUTBOUND, after], known)
    assert same == OUTBOUND
    assert (continued.direction, continued.to_number, continued.src, continued.billable) == (
        "outbound",
        "+33612345678",
        "+33173306690",
        True,
    )
    # Nothing else of it changes: its channels, its agent, its times.
    assert (
        continued._replace(direction=None, to_number=None, src=after.src, billable=False) == after
    )


def test_an_inbound_caller_put_through_to_a_consulted_number_is_billed_as_that_call() -> None:
    # The consultation dialled the number from a Local channel; once the transfer completes,
    # the inbound caller (party A, inbound) is bridged with the carrier's channel (party B).
    consultation = OUTBOUND._replace(channel="Local/0033612345678#@t7-internal-00000003;2")
    after = leg(channel=CALLER, dstchannel=CARRIER, direction="inbound", did="+33173306690")
    (continued,) = continuing([after], continuations.outbound_calls([consultation]))
    assert (continued.direction, continued.to_number, continued.billable) == (
        "outbound",
        "+33612345678",
        True,
    )


def test_other_legs_are_left_as_they_are() -> None:
    known = continuations.outbound_calls([OUTBOUND])
    others = [
        # An inbound caller's own legs: its channel is a carrier's, its direction inbound.
        leg(channel=CALLER, dstchannel=AGENT, direction="inbound"),
        # Another call's leg with the same channel names.
        leg(channel=CARRIER, dstchannel=COLLEAGUE, linkedid="c2c-2"),
        # Another node's.
        leg(channel=CARRIER, dstchannel=COLLEAGUE, system_name="b"),
        # No tenant.
        leg(channel=CARRIER, dstchannel=COLLEAGUE, tenant_id=None),
        # An internal leg between two phones.
        leg(channel=AGENT, dstchannel=COLLEAGUE, direction="internal"),
        # The far end alone on hold music (the agent's leg of the hold is billed).
        leg(channel=CARRIER, dstchannel=""),
    ]
    assert continuing(others, known) == others
    # The legs of an ordinary batch are not even candidates: the writer stops there.
    assert continuations.candidates([OUTBOUND, *others[:1], *others[3:]]) == []
    # A refused or unanswered outbound leg has no carrier leg to continue.
    assert continuations.outbound_calls([OUTBOUND._replace(billable=False)]) == {}


def test_a_continuation_unanswered_or_of_no_time_is_not_billed() -> None:
    known = continuations.outbound_calls([OUTBOUND])
    rang = leg(channel=CARRIER, dstchannel=COLLEAGUE, disposition="NO ANSWER", billsec_us=0)
    (continued,) = continuing([rang], known)
    assert (continued.direction, continued.billable) == ("outbound", False)


def test_what_the_batch_does_not_hold_is_looked_up_by_tenant_and_carrier_leg() -> None:
    after = leg(channel=CARRIER, dstchannel=COLLEAGUE)
    caller_after = leg(channel=CALLER, dstchannel=CARRIER, direction="inbound")
    found = continuations.candidates([after, caller_after])
    assert continuations.unresolved(found, {}) == [(7, CarrierLeg("a", CALL, CARRIER))]
    batch = [OUTBOUND, after]
    known = continuations.outbound_calls(batch)
    assert continuations.unresolved(continuations.candidates(batch), known) == []
    inbound = [leg(channel=CALLER, dstchannel=AGENT, direction="inbound")]
    assert continuations.unresolved(continuations.candidates(inbound), {}) == []
