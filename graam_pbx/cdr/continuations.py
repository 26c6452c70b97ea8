"""Outbound calls that go on after a transfer: the carrier's leg is billed until it hangs up.

Asterisk's CDRs follow bridges. An outbound leg is the CDR of the channel that dialled the
carrier (party A) with the carrier's channel as party B (``dstchannel``). When that call is
transferred, the carrier's channel lives on in CDRs of their own:

- a blind transfer of the far end (a click-to-call's, through the API or ``#``) moves the
  carrier's channel itself into the dialplan: its next CDR has it as party A
  (``channel``), dialling whoever it was sent to;
- an attended transfer to a number completes by bridging the other party with the
  consultation's carrier channel: that CDR has the carrier's channel as party B
  (``dstchannel``), and the other party's direction (an inbound caller's, say).

The carrier bills its leg from its answer to its hangup whatever Asterisk bridges it to. So a
CDR of the same call (system name and linkedid) with a carrier leg of an outbound CDR as its
``channel`` or ``dstchannel``, and not outbound itself, **continues** that outbound call: it
becomes an outbound leg to the same number under the same caller ID (``src``: what rating
takes the origin from), billable by the usual rule (answered, some time). The carrier's
channel was up when such a CDR began, so Asterisk counts its billsec from its start.

A call's legs are billed one by one, each to the started second (``billing.money``): a call
transferred once is two legs, as a held one is three.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from graam_pbx.cdr.parse import CdrRecord, is_billable

TRUNK_CHANNEL = "PJSIP/trunk-"  # a carrier's channel: the endpoints of trunks are trunk-<name>
OUTBOUND = "outbound"


class CarrierLeg(NamedTuple):
    """One carrier channel of a call: (system name, linkedid, channel name)."""

    system_name: str
    linkedid: str
    channel: str


class OutboundCall(NamedTuple):
    """What a continuation takes from the outbound leg it continues."""

    to_number: str | None
    src: str


def _carrier(name: str) -> bool:
    return name.startswith(TRUNK_CHANNEL)


def outbound_calls(records: Iterable[CdrRecord]) -> dict[CarrierLeg, OutboundCall]:
    """The carrier legs the billable outbound legs among ``records`` dialled."""
    return {
        CarrierLeg(r.system_name, r.linkedid, r.dstchannel): OutboundCall(r.to_number, r.src)
        for r in records
        if r.direction == OUTBOUND and r.billable and _carrier(r.dstchannel)
    }


def carrier_legs_of(record: CdrRecord) -> tuple[CarrierLeg, ...]:
    """The carrier legs ``record`` may continue: none unless it is a tenant's, not outbound,
    and has a carrier's channel as party B, or as party A with a party B and no direction of
    its own (an inbound caller's channel is a carrier's too, and its CDRs say inbound; a far
    end alone, hearing hold music, is already billed by the agent's leg of the hold)."""
    if record.tenant_id is None or record.direction == OUTBOUND:
        return ()
    party_b = _carrier(record.dstchannel)
    party_a = record.direction is None and bool(record.dstchannel) and _carrier(record.channel)
    if not (party_a or party_b):
        return ()
    names = [record.dstchannel] if party_b else []
    if party_a:
        names.append(record.channel)
    return tuple(CarrierLeg(record.system_name, record.linkedid, name) for name in names)


class Candidate(NamedTuple):
    """A CDR of a batch that may continue an outbound call: its place, tenant and legs."""

    position: int
    tenant_id: int
    legs: tuple[CarrierLeg, ...]


def candidates(records: Sequence[CdrRecord]) -> list[Candidate]:
    """The CDRs of ``records`` that may continue an outbound call (rarely any: one look at
    each CDR is all a batch without a transfer costs)."""
    found = []
    for position, record in enumerate(records):
        legs = carrier_legs_of(record)
        if legs and record.tenant_id is not None:
            found.append(Candidate(position, record.tenant_id, legs))
    return found


def unresolved(
    found: Sequence[Candidate], known: Mapping[CarrierLeg, OutboundCall]
) -> list[tuple[int, CarrierLeg]]:
    """The (tenant, carrier leg) pairs the candidates may continue that ``known`` does not
    hold: what to look up among the CDRs already stored."""
    wanted: dict[CarrierLeg, int] = {}
    for candidate in found:
        for leg in candidate.legs:
            if leg not in known:
                wanted.setdefault(leg, candidate.tenant_id)
    return [(tenant, leg) for leg, tenant in wanted.items()]


def continued(record: CdrRecord, call: OutboundCall) -> CdrRecord:
    """``record`` as a leg of the outbound call it continues."""
    return record._replace(
        direction=OUTBOUND,
        to_number=call.to_number,
        src=call.src,
        billable=is_billable(OUTBOUND, record.disposition, None, record.billsec_us),
    )


def apply(
    records: Sequence[CdrRecord],
    found: Sequence[Candidate],
    known: Mapping[CarrierLeg, OutboundCall],
) -> list[CdrRecord]:
    """``records``, each candidate that continues a known outbound call made a leg of it."""
    out = list(records)
    for candidate in found:
        call = next((known[leg] for leg in candidate.legs if leg in known), None)
        if call is not None:
            out[candidate.position] = continued(out[candidate.position], call)
    return out
