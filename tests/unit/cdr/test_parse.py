"""CDRs from recorded Asterisk 22 output: the AMI ``Cdr`` events and the CSV log of one run.

``tests/data/ami_cdr_events.txt`` is the raw AMI text Asterisk sent for four calls (an
answered one, an unanswered one, a busy one, and one answered then dialling a second leg);
``tests/data/asterisk_cdr_log.csv`` is what its ``cdr_custom`` wrote for the same CDRs.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graam_pbx.ami.protocol import FrameDecoder, Message
from graam_pbx.cdr.parse import (
    EARLIEST_US,
    LATEST_US,
    CdrRecord,
    MalformedCdr,
    micros,
    moment,
    record_from_csv,
    record_from_event,
    record_from_json,
    record_to_json,
)
from graam_pbx.cdr.schemas import billed_seconds

DATA = Path(__file__).resolve().parents[2] / "data"
RECORDED = (DATA / "ami_cdr_events.txt").read_bytes()


def recorded_events() -> list[Message]:
    return FrameDecoder().feed(RECORDED)


def recorded_rows() -> list[list[str]]:
    with (DATA / "asterisk_cdr_log.csv").open(newline="") as log:
        return list(csv.reader(log))


def event(**changes: str | None) -> Message:
    """The first recorded event (an answered leg) with fields changed (None: removed)."""
    fields = dict(recorded_events()[4].fields)
    for name, value in changes.items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    return Message(fields.items())


def table(records: list[CdrRecord]) -> list[tuple[object, ...]]:
    return [
        (r.uniqueid, r.sequence, r.linkedid, r.disposition, str(r.billsec), r.tenant_id)
        for r in sorted(records, key=lambda r: r.sequence)
    ]


def test_recorded_events_become_one_record_per_cdr() -> None:
    records = [record_from_event(message) for message in recorded_events()]

    # uniqueid, sequence, linkedid, disposition, exact billsec, tenant
    assert table(records) == [
        ("graam-1795406879.0", 0, "graam-1795406879.0", "ANSWERED", "0.720992", 7),
        ("graam-1795406879.1", 1, "graam-1795406879.0", "ANSWERED", "0.723377", 7),
        ("graam-1795406879.2", 2, "graam-1795406879.2", "BUSY", "0.000000", None),
        ("graam-1795406879.3", 3, "graam-1795406879.2", "BUSY", "0.000000", 7),
        ("graam-1795406880.4", 4, "graam-1795406880.4", "NO ANSWER", "0.000000", 7),
        ("graam-1795406880.5", 5, "graam-1795406880.4", "NO ANSWER", "0.000000", 7),
        ("graam-1795406880.6", 6, "graam-1795406880.6", "ANSWERED", "1.040996", 7),
        ("graam-1795406880.7", 7, "graam-1795406880.6", "ANSWERED", "1.042848", 7),
        ("graam-1795406880.13", 9, "graam-1795406880.6", "ANSWERED", "0.718654", 7),
        ("graam-1795406881.19", 10, "graam-1795406881.19", "ANSWERED", "0.720834", 7),
        ("graam-1795406881.20", 11, "graam-1795406881.19", "ANSWERED", "0.720787", 7),
    ]


def test_an_answered_leg_keeps_exact_times_and_the_graam_variables() -> None:
    record = record_from_event(event())

    assert record.system_name == "graam"
    assert record.started_at == datetime(2026, 11, 23, 4, 8, 0, 1338, tzinfo=UTC)
    assert record.answered_at == datetime(2026, 11, 23, 4, 8, 0, 5301, tzinfo=UTC)
    assert record.ended_at == datetime(2026, 11, 23, 4, 8, 0, 728678, tzinfo=UTC)
    assert record.duration == Decimal("0.727340")
    # BillableSeconds says 0: the exact value is what the contract bills (every started second).
    assert event()["BillableSeconds"] == "0"
    assert record.billsec == Decimal("0.723377")
    assert billed_seconds(record.billsec) == 1
    assert (record.direction, record.did, record.queue_id, record.agent_user_id) == (
        "inbound",
        "+33123456789",
        None,
        None,
    )
    assert record.clid == '"Jo, \\"the\\" caller" <+33612345678>'
    assert record.source == "ami"


def test_queue_and_agent_of_a_dialled_leg() -> None:
    dialled = next(
        record_from_event(message)
        for message in recorded_events()
        if message["UniqueID"] == "graam-1795406880.7"
    )

    assert (dialled.queue_id, dialled.agent_user_id, dialled.peeraccount) == (3, 42, "t7")
    assert dialled.dstchannel == "Local/ann@exp-00000004;1"


def test_the_csv_log_gives_the_same_records_as_the_events() -> None:
    from_events = {r.key: r for r in map(record_from_event, recorded_events())}
    from_log = [record_from_csv(row, "graam") for row in recorded_rows()]

    assert {r.key for r in from_log} == set(from_events)
    for record in from_log:
        assert record._replace(source="ami") == from_events[record.key]


def test_decoding_a_recording_byte_by_byte_or_with_bare_lf_gives_the_same_messages() -> None:
    whole = FrameDecoder().feed(RECORDED)
    decoder = FrameDecoder()
    trickled = [
        message for i in range(len(RECORDED)) for message in decoder.feed(RECORDED[i : i + 1])
    ]
    bare_lf = FrameDecoder().feed(RECORDED.replace(b"\r\n", b"\n"))

    assert len(whole) == 11
    assert trickled == whole
    assert bare_lf == whole


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"UniqueID": None}, "missing-field"),
        ({"StartEpoch": None}, "missing-field"),
        ({"LinkedID": ""}, "bad-text"),
        ({"Disposition": ""}, "missing-field"),
        ({"Sequence": "seven"}, "bad-number"),
        ({"Sequence": "-1"}, "bad-number"),
        ({"StartEpoch": "yesterday"}, "bad-time"),
        ({"StartEpoch": "1795406880.1234567"}, "bad-time"),
        ({"StartEpoch": "\uff11\uff17\uff19\uff15"}, "bad-time"),  # fullwidth digits
        ({"EndEpoch": "12.5"}, "bad-time"),
        ({"StartEpoch": "1795406890.000000"}, "bad-time"),  # ends before it starts
        ({"AnswerEpoch": "1795406999.000000"}, "bad-time"),  # answered after the end
        ({"BillableSecondsExact": "0.5e3"}, "bad-number"),
        ({"BillableSecondsExact": "NaN"}, "bad-number"),
        ({"Channel": "PJSIP/x\x00y"}, "bad-text"),
        ({"UniqueID": "u" * 151}, "bad-text"),
    ],
)
def test_malformed_events_are_refused_with_a_reason(
    changes: dict[str, str | None], reason: str
) -> None:
    with pytest.raises(MalformedCdr) as refused:
        record_from_event(event(**changes))

    assert refused.value.reason == reason
    assert refused.value.detail


def test_attribution_that_does_not_parse_is_null_and_the_call_kept() -> None:
    record = record_from_event(
        event(
            AccountCode="acme", TenantID="t12", GraamQueue="q1", GraamAgent="99999999999999999999"
        )
    )

    assert record.tenant_id == 12  # tenantid when the accountcode is not ours
    assert (record.queue_id, record.agent_user_id) == (None, None)
    assert record_from_event(event(AccountCode="t0", TenantID="")).tenant_id is None


def test_header_names_are_case_insensitive() -> None:
    fields = [(name.lower(), value) for name, value in event().fields]

    assert record_from_event(Message(fields)) == record_from_event(event())


@pytest.mark.parametrize(
    "row",
    [
        [],
        ["graam-cdr-2", *(["x"] * 24)],
        ["graam-cdr-2", *(["x"] * 29)],  # layout 3's length under layout 2's name
        ["graam-cdr-3", *(["x"] * 28)],  # layout 2's length under layout 3's name
        ["graam-cdr-1", "too", "short"],
        ['garbage "line'],
    ],
)
def test_csv_rows_of_another_layout_are_refused(row: list[str]) -> None:
    with pytest.raises(MalformedCdr) as refused:
        record_from_csv(row, "graam")

    assert refused.value.reason == "bad-layout"


_text = st.text(max_size=30)


@given(
    fields=st.dictionaries(
        st.sampled_from(
            [
                "UniqueID",
                "Sequence",
                "LinkedID",
                "StartEpoch",
                "AnswerEpoch",
                "EndEpoch",
                "BillableSecondsExact",
                "Disposition",
                "AccountCode",
                "GraamQueue",
                "Channel",
            ]
        ),
        st.one_of(_text, st.from_regex(r"[0-9]{1,12}\.[0-9]{0,7}", fullmatch=True)),
    )
)
def test_hostile_events_are_refused_or_parsed_never_anything_else(
    fields: dict[str, str],
) -> None:
    try:
        record = record_from_event(event(**fields))
    except MalformedCdr as refused:
        assert refused.reason in {"missing-field", "bad-number", "bad-time", "bad-text"}
    else:
        assert record.ended_at >= record.started_at
        assert Decimal(0) <= record.billsec <= Decimal(10**8)


@given(
    start=st.integers(946_684_800_000_000, 7_258_000_000_000_000),
    length=st.integers(0, 86_400_000_000),
    answer_after=st.one_of(st.none(), st.integers(0, 86_400_000_000)),
)
def test_the_journal_form_gives_back_the_exact_record(
    start: int, length: int, answer_after: int | None
) -> None:
    end = start + length
    answer = None if answer_after is None else start + min(answer_after, length)

    def epoch(us: int | None) -> str:
        return "0.000000" if us is None else f"{us // 1_000_000}.{us % 1_000_000:06d}"

    record = record_from_event(
        event(
            StartEpoch=epoch(start),
            AnswerEpoch=epoch(answer),
            EndEpoch=epoch(end),
            BillableSecondsExact=None,
        )
    )

    assert record.billsec == (Decimal(end - answer) / 10**6 if answer is not None else 0)
    assert record_from_json(record_to_json(record)) == record


@given(st.integers(min_value=EARLIEST_US, max_value=LATEST_US))
def test_a_moment_reads_back_as_its_microseconds(us: int) -> None:
    assert micros(moment(us)) == us


# ---- legs: what was dialled, refusals, the agent's own answer, billable ----------------------


def leg_event(**legs: str) -> list[Message]:
    """The recorded answered leg with the headers of legs (cdr_manager.conf) after Asterisk's
    own: as framed text (the hot path) and as fields only (the general path)."""
    fields = dict(recorded_events()[4].fields)
    names = ("GraamTo", "GraamRefused", "GraamAgentAnswer", "GraamDevice", "GraamForwardedFrom")
    fields.update({name: legs.get(name, "") for name in names})
    text = "".join(f"{name}: {value}\r\n" for name, value in fields.items()) + "\r\n"
    framed = FrameDecoder().feed(text.encode() * 2)[1]  # a fresh decoder's first: no text
    return [framed, Message(fields.items())]


def test_both_paths_read_the_headers_of_legs_alike() -> None:
    recorded = record_from_event(event())
    start, end = recorded.started_us, recorded.ended_us
    agent = start + (end - start) // 2
    agent_answer = f"{agent // 1_000_000}.{agent % 1_000_000:06d}"
    framed, plain = leg_event(
        GraamTo="+33142685300", GraamAgentAnswer=agent_answer, GraamDevice="acme-ana"
    )
    assert framed.block is not None
    fast, general = record_from_event(framed), record_from_event(plain)
    assert fast == general
    assert fast.to_number == "+33142685300"
    assert fast.device == "acme-ana"
    # The agent's own answer and talk time, not the menu's.
    assert fast.answered_us == agent
    assert fast.billsec_us == end - agent
    assert fast.refusal_reason is None


def test_an_agent_answer_outside_the_cdr_is_ignored() -> None:
    recorded = record_from_event(event())
    after = recorded.ended_us + 1_000
    for message in leg_event(GraamAgentAnswer=f"{after // 1_000_000}.{after % 1_000_000:06d}"):
        record = record_from_event(message)
        assert (record.answered_us, record.billsec_us) == (
            recorded.answered_us,
            recorded.billsec_us,
        )


def test_only_answered_outbound_legs_that_lasted_are_billable() -> None:
    def billable(direction: str, **legs: str) -> set[bool]:
        return {
            record_from_event(_with(message, GraamDirection=direction)).billable
            for message in leg_event(**legs)
        }

    assert billable("outbound") == {True}
    assert billable("outbound", GraamRefused="suspended") == {False}
    assert billable("inbound") == {False}
    assert billable("internal") == {False}
    assert billable("feature") == {False}
    unanswered = event(
        GraamDirection="outbound",
        Disposition="NO ANSWER",
        AnswerEpoch="0.000000",
        BillableSecondsExact="0.000000",
    )
    assert record_from_event(unanswered).billable is False


def _with(message: Message, **changes: str) -> Message:
    fields = dict(message.fields)
    fields.update(changes)
    if message.block is None:
        return Message(fields.items())
    text = "".join(f"{name}: {value}\r\n" for name, value in fields.items()) + "\r\n"
    framed = FrameDecoder().feed(text.encode() * 2)[1]  # a fresh decoder's first: no text
    return framed


def test_the_csv_log_of_both_layouts_is_read() -> None:
    (old,) = [row for row in recorded_rows()[:1]]
    before = record_from_csv(old, "graam")
    assert (before.to_number, before.refusal_reason, before.device) == (None, None, None)
    new = ["graam-cdr-2", *old[1:], "+33145678901", "destination-not-allowed", "", ""]
    refused = record_from_csv(new, "graam")
    assert refused.to_number == "+33145678901"
    assert refused.refusal_reason == "destination-not-allowed"
    assert refused.billable is False
    with pytest.raises(MalformedCdr):
        record_from_csv(["graam-cdr-1", *new[1:]], "graam")


def test_a_record_journaled_before_legs_reads_back() -> None:
    record = record_from_event(event(GraamDirection="outbound"))
    old = record_to_json(record)[:28]
    again = record_from_json(old)
    assert again[:28] == record[:28]
    assert (again.to_number, again.refusal_reason, again.device) == (None, None, None)
    assert again.billable is record.billable


# ---- forwarded_from: the user whose forwarding rule sent the leg ------------------------------


def test_both_paths_read_the_user_who_forwarded_the_leg() -> None:
    framed, plain = leg_event(GraamForwardedFrom="42")
    assert framed.block is not None
    fast, general = record_from_event(framed), record_from_event(plain)
    assert fast == general
    assert fast.forwarded_from == 42
    # The rest of the leg is what it was without it.
    assert fast._replace(forwarded_from=None) == record_from_event(leg_event()[0])


@pytest.mark.parametrize("value", ["", "x42", "-1", "4.2", "\uff14\uff12", "9" * 20])
def test_a_forwarding_user_that_does_not_parse_is_null_and_the_leg_kept(value: str) -> None:
    records = [record_from_event(message) for message in leg_event(GraamForwardedFrom=value)]
    assert [record.forwarded_from for record in records] == [None, None]
    assert records[0] == records[1]


def test_an_event_without_the_forwarding_header_has_no_forwarding_user() -> None:
    # An Asterisk still configured as before graam_forwarded_from, with or without the
    # headers of legs: both paths agree and the leg is kept.
    framed, plain = leg_event(GraamDevice="acme-ana")
    fields = [(name, value) for name, value in plain.fields if name != "GraamForwardedFrom"]
    text = "".join(f"{name}: {value}\r\n" for name, value in fields) + "\r\n"
    without = FrameDecoder().feed(text.encode() * 2)[1]
    assert without.block is not None
    assert record_from_event(without) == record_from_event(Message(fields))
    assert record_from_event(without) == record_from_event(framed)
    assert record_from_event(without).forwarded_from is None
    assert record_from_event(event()).forwarded_from is None  # no header of legs at all


def test_the_csv_log_of_every_layout_is_read() -> None:
    (old,) = recorded_rows()[:1]
    legs = ["+33145678901", "", "", "acme-ana"]
    third = record_from_csv(["graam-cdr-3", *old[1:], *legs, "42"], "graam")
    second = record_from_csv(["graam-cdr-2", *old[1:], *legs], "graam")
    first = record_from_csv(old, "graam")

    assert (third.to_number, third.device, third.forwarded_from) == (
        "+33145678901",
        "acme-ana",
        42,
    )
    assert third._replace(forwarded_from=None) == second
    assert second.forwarded_from is None
    assert first.forwarded_from is None
    assert record_from_csv(["graam-cdr-3", *old[1:], *legs, ""], "graam") == second
    assert record_from_csv(["graam-cdr-3", *old[1:], *legs, "t42"], "graam") == second


def test_layout_3_of_the_csv_log_gives_the_same_record_as_the_event() -> None:
    (message, _) = leg_event(GraamDevice="acme-ana", GraamForwardedFrom="42")
    fields = dict(message.fields)
    row = [
        "graam-cdr-3",
        *(
            fields.get(name, "")
            for name in (
                "UniqueID", "Sequence", "LinkedID", "StartEpoch", "AnswerEpoch", "EndEpoch",
                "Disposition", "AccountCode", "PeerAccount", "TenantID", "Source",
                "Destination", "DestinationContext", "CallerID", "Channel",
                "DestinationChannel", "LastApplication", "LastData", "AMAFlags", "UserField",
                "GraamDirection", "GraamDID", "GraamQueue", "GraamAgent", "GraamTo",
                "GraamRefused", "GraamAgentAnswer", "GraamDevice", "GraamForwardedFrom",
            )
        ),
    ]  # fmt: skip
    from_log = record_from_csv(row, "graam")

    assert from_log.forwarded_from == 42
    assert from_log._replace(source="ami") == record_from_event(message)


def test_a_record_journaled_before_forwarded_from_reads_back() -> None:
    record = record_from_event(leg_event(GraamDevice="acme-ana")[0])
    old = record_to_json(record)[:-1]
    assert len(old) == 32
    assert record_from_json(old) == record
    forwarded = record._replace(forwarded_from=42)
    assert record_from_json(record_to_json(forwarded)) == forwarded
