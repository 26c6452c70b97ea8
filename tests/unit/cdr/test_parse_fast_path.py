"""The hot path (one match over the event's text) gives exactly what the general path gives.

Events framed from the stream carry their text; the CDR parser matches Asterisk's layout on
it directly. Whatever the values, the result (record or refusal) must be the one the general
path, which reads headers one by one, would give.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graam_pbx.ami import FrameDecoder, Message
from graam_pbx.cdr.parse import _CDR_TEXT, CdrRecord, MalformedCdr, record_from_event

RECORDING = Path(__file__).resolve().parents[2] / "data" / "ami_cdr_events.txt"
GREETING = b"Asterisk Call Manager/11.0.0\r\n"


def _recorded() -> list[Message]:
    return FrameDecoder().feed(GREETING + RECORDING.read_bytes())


def _framed(fields: list[tuple[str, str]]) -> Message:
    text = "".join(f"{key}: {value}\r\n" for key, value in fields) + "\r\n"
    (message,) = FrameDecoder().feed(GREETING + text.encode())
    return message


def _outcome(message: Message) -> CdrRecord | str:
    try:
        return record_from_event(message)
    except MalformedCdr as err:
        return err.reason


def test_recorded_events_take_the_hot_path_and_agree() -> None:
    messages = _recorded()
    assert len(messages) > 5
    for message in messages:
        assert message.block is not None
        general = Message(message.fields)
        assert general.block is None
        assert record_from_event(message) == record_from_event(general)


HEADERS = [key for key, _ in _recorded()[0].fields]
# Values as Asterisk could send them: anything but CR and LF.
VALUES = st.one_of(
    # Surrogates cannot come off the wire (the framing decodes UTF-8).
    st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=30),
    st.from_regex(r"[0-9]{1,13}(\.[0-9]{0,7})?", fullmatch=True),
    st.sampled_from(["", "0.000000", "t12", "t0", "ANSWERED", "99999999999999999999"]),
)


@settings(max_examples=400, deadline=None)
@given(
    index=st.integers(0, len(HEADERS) - 1),
    value=VALUES,
    event=st.integers(0, 10),
    ascii_only=st.booleans(),
)
def test_any_value_gives_the_same_result_on_both_paths(
    index: int, value: str, event: int, ascii_only: bool
) -> None:
    messages = _recorded()
    fields = list(messages[event % len(messages)].fields)
    if ascii_only:
        value = value.encode("ascii", "ignore").decode()
    name = HEADERS[index]
    if name in {"Event"}:
        return
    fields[index] = (name, value)
    framed = _framed(fields)
    assert _outcome(framed) == _outcome(Message(fields))


@settings(max_examples=100, deadline=None)
@given(drop=st.integers(2, len(HEADERS) - 1), event=st.integers(0, 10))
def test_a_missing_or_repeated_header_gives_the_same_result(drop: int, event: int) -> None:
    messages = _recorded()
    fields = list(messages[event % len(messages)].fields)
    missing = fields[:drop] + fields[drop + 1 :]
    assert _outcome(_framed(missing)) == _outcome(Message(missing))
    repeated = [*fields[: drop + 1], fields[drop], *fields[drop + 1 :]]
    assert _outcome(_framed(repeated)) == _outcome(Message(repeated))


TENANT_CODES = ["", "t7", "t007", "t0", "t", "tx", "T7", "t7 ", "t" + "9" * 18, "t" + "9" * 19]


@pytest.mark.parametrize("accountcode", TENANT_CODES)
@pytest.mark.parametrize("tenantid", ["", "t12", "t0", "t" + "0" * 17 + "3", "t" + "0" * 18 + "3"])
def test_tenant_codes_read_the_same_on_both_paths(accountcode: str, tenantid: str) -> None:
    fields = [
        (name, accountcode if name == "AccountCode" else tenantid if name == "TenantID" else value)
        for name, value in _recorded()[0].fields
    ]
    framed, general = _framed(fields), Message(fields)
    assert framed.block is not None
    assert _outcome(framed) == _outcome(general)


def test_a_framed_message_reads_like_one_built_from_headers() -> None:
    fields = [
        ("Event", "Cdr"),
        ("Privilege", "cdr,all"),
        ("actionID", "x-1"),
        ("Note", "a: b"),
        ("Note", "second"),
    ]
    framed = _framed(fields)
    built = Message(fields)
    assert framed.block is not None
    for message in (framed, built):
        assert message.event == "Cdr"
        assert message.name == "Cdr"
        assert message.is_event
        assert not message.is_response
        assert message.action_id == "x-1"
        assert message.get("NOTE") == "a: b"
        assert message.getall("note") == ["a: b", "second"]
    assert framed == built
    assert dict(framed) == dict(built)
    response = _framed([("Response", "Success"), ("ActionID", "7"), ("Message", "ok")])
    assert response.is_response
    assert not response.is_event
    assert response.event is None
    assert response.name == "Success"
    assert response.action_id == "7"
    event_without_id = _framed([("Event", "Newchannel"), ("Channel", "PJSIP/x")])
    assert event_without_id.action_id is None


def test_an_event_with_asterisks_timestamp_takes_the_hot_path() -> None:
    # manager.conf timestampevents = yes puts "Timestamp: <epoch>.<micros>" after Privilege.
    message = _recorded()[0]
    assert message.block is not None
    head, _, rest = message.block.partition("\r\n")
    privilege, _, rest = rest.partition("\r\n")
    stamped = f"{head}\r\n{privilege}\r\nTimestamp: 1796307771.123456\r\n{rest}"
    assert _CDR_TEXT.fullmatch(stamped) is not None
    assert record_from_event(Message(stamped)) == record_from_event(message)


def _queue_leg(disposition: str, device: str = "") -> list[tuple[str, str]]:
    """A recorded leg that was answered, as a queue's leg to a member's phone."""
    (fields, *_) = [
        dict(message.fields)
        for message in _recorded()
        if message.get("AnswerEpoch", "0.000000") != "0.000000"
    ]
    fields.update(
        LastApplication="Queue",
        DestinationChannel="PJSIP/t2-abc-desk202-00000001",
        Disposition=disposition,
        GraamDevice=device,
    )
    return list(fields.items())


@pytest.mark.parametrize("disposition", ["NO ANSWER", "BUSY", "FAILED"])
def test_a_queue_ring_nobody_picked_up_names_the_rung_device_and_has_no_answer(
    disposition: str,
) -> None:
    fields = _queue_leg(disposition)
    for record in (record_from_event(_framed(fields)), record_from_event(Message(fields))):
        assert record.device == "t2-abc-desk202"
        assert (record.answered_us, record.billsec_us) == (None, 0)


def test_an_answered_queue_leg_keeps_its_answer_and_the_dialplans_device() -> None:
    answered = record_from_event(_framed(_queue_leg("ANSWERED")))
    assert answered.device == "t2-abc-desk202"
    assert answered.answered_us is not None
    named = record_from_event(_framed(_queue_leg("ANSWERED", device="t2-abc-desk201")))
    assert named.device == "t2-abc-desk201"
