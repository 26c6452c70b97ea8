from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graam_pbx.ami.errors import AmiInjectionError, AmiProtocolError
from graam_pbx.ami.protocol import FrameDecoder, Message, encode_action, event_time

from .scripted import GREETING, reads


def test_message_lookup_is_case_insensitive_and_keeps_repeated_headers() -> None:
    message = Message(
        [
            ("Event", "VarSet"),
            ("ChanVariable", "A=1"),
            ("chanvariable", "B=2"),
            ("ActionID", "x-1"),
        ]
    )

    assert message["CHANVARIABLE"] == "A=1"
    assert message.getall("ChanVariable") == ["A=1", "B=2"]
    assert message.get("missing") is None
    assert "actionid" in message
    assert message.name == "VarSet"
    assert message.action_id == "x-1"
    assert message.is_event and not message.is_response
    assert list(message) == ["Event", "ChanVariable", "ActionID"]
    with pytest.raises(KeyError):
        message["missing"]


def test_response_name_is_the_response_value() -> None:
    message = Message([("Response", "Success"), ("ActionID", "a")])

    assert message.name == "Success"
    assert message.is_response


def test_encode_action_writes_a_sequence_once_per_item() -> None:
    data = encode_action(
        "Originate",
        {"Channel": "PJSIP/100", "Async": True, "Timeout": 30000, "Variable": ["A=1", "B=2"]},
        "abc-1",
    )

    assert data == (
        b"Action: Originate\r\nActionID: abc-1\r\nChannel: PJSIP/100\r\nAsync: true\r\n"
        b"Timeout: 30000\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n"
    )


def test_encode_action_writes_false_and_utf8() -> None:
    data = encode_action("QueuePause", {"Paused": False, "Reason": "café"}, "1")

    assert b"Paused: false\r\n" in data
    assert "Reason: café\r\n".encode() in data


@pytest.mark.parametrize("breaker", ["\r", "\n", "\r\n", "\x00"])
def test_crlf_in_value_raises_injection_error(breaker: str) -> None:
    with pytest.raises(AmiInjectionError, match="'CallerID'"):
        encode_action("Originate", {"CallerID": f"x{breaker}Action: Hangup"}, "1")


@pytest.mark.parametrize("key", ["Caller\rID", "Caller\nID", "Caller:ID", ""])
def test_crlf_colon_or_empty_key_raises_injection_error(key: str) -> None:
    with pytest.raises(AmiInjectionError):
        encode_action("Originate", {key: "x"}, "1")


def test_crlf_in_sequence_item_raises_injection_error() -> None:
    with pytest.raises(AmiInjectionError, match="'Variable'"):
        encode_action("Originate", {"Variable": ["A=1", "B=2\r\nAction: Hangup"]}, "1")


def test_crlf_in_action_name_raises_injection_error() -> None:
    with pytest.raises(AmiInjectionError):
        encode_action("Ping\r\nAction: Hangup", {}, "1")


def test_action_id_cannot_be_overridden_by_a_field() -> None:
    with pytest.raises(AmiInjectionError, match=r"(?i)actionid"):
        encode_action("Ping", {"actionid": "other"}, "1")


def test_split_utf8_jose_arrives_whole() -> None:
    decoder = FrameDecoder()
    data = GREETING + "Event: Newchannel\r\nCallerIDName: José\r\n\r\n".encode()
    cut = data.index("é".encode()) + 1

    first = decoder.feed(data[:cut])
    second = decoder.feed(data[cut:])

    assert first == []
    assert [message["CallerIDName"] for message in second] == ["José"]


def test_greeting_is_recorded_not_emitted() -> None:
    decoder = FrameDecoder()

    assert decoder.feed(GREETING) == []
    assert decoder.greeting == "Asterisk Call Manager/11.0.0"


def test_bare_lf_line_endings_decode_like_crlf() -> None:
    decoder = FrameDecoder()

    messages = decoder.feed(b"Response: Success\nActionID: 1\nPing: Pong\n\n")

    assert messages == [Message([("Response", "Success"), ("ActionID", "1"), ("Ping", "Pong")])]


def test_command_output_lines_are_kept_in_order() -> None:
    decoder = FrameDecoder()
    data = (
        b"Response: Success\r\nActionID: 7\r\nMessage: Command output follows\r\n"
        b"Output: Name   Status\r\nOutput:   100  OK (12 ms)\r\nOutput: \r\n\r\n"
    )

    [message] = decoder.feed(data)

    assert message.getall("Output") == ["Name   Status", "  100  OK (12 ms)", ""]


def test_value_keeps_colons_after_the_first() -> None:
    [message] = FrameDecoder().feed(b"Event: X\r\nAddress: sip:100@10.0.0.1:5060\r\n\r\n")

    assert message["Address"] == "sip:100@10.0.0.1:5060"


def test_blank_lines_between_messages_are_ignored() -> None:
    messages = FrameDecoder().feed(b"\r\nEvent: A\r\n\r\n\r\n\r\nEvent: B\r\n\r\n")

    assert [message.name for message in messages] == ["A", "B"]


def test_oversized_message_raises_protocol_error() -> None:
    decoder = FrameDecoder(max_message_bytes=1024)
    lines = b"".join(b"Output: " + b"x" * 100 + b"\r\n" for _ in range(20))

    with pytest.raises(AmiProtocolError, match="1024"):
        decoder.feed(b"Response: Success\r\n" + lines)


def test_oversized_unterminated_line_raises_protocol_error() -> None:
    decoder = FrameDecoder(max_message_bytes=1024)
    decoder.feed(b"Event: X\r\nData: ")

    with pytest.raises(AmiProtocolError):
        decoder.feed(b"y" * 2048)


_keys = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters=":\r\n"),
    min_size=1,
    max_size=12,
).filter(lambda key: not key.startswith("Asterisk Call Manager"))
_values = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"),
    max_size=40,
)
_messages = st.lists(st.lists(st.tuples(_keys, _values), min_size=1, max_size=6), max_size=4)


@given(messages=_messages, data=st.data())
def test_any_split_decodes_like_the_unsplit_bytes(
    messages: list[list[tuple[str, str]]], data: st.DataObject
) -> None:
    stream = GREETING + b"".join(
        "".join(f"{key}: {value}\r\n" for key, value in fields).encode() + b"\r\n"
        for fields in messages
    )
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=8)))

    whole = FrameDecoder().feed(stream)
    decoder = FrameDecoder()
    pieces = [message for _, data in reads(stream, cuts) for message in decoder.feed(data)]

    assert pieces == whole
    assert [list(message.fields) for message in whole] == messages


@given(
    messages=_messages,
    endings=st.lists(st.sampled_from(["\r\n", "\n"]), min_size=4, max_size=4),
    data=st.data(),
)
def test_every_message_comes_out_with_the_read_that_completes_it(
    messages: list[list[tuple[str, str]]], endings: list[str], data: st.DataObject
) -> None:
    """Whatever the line endings (CRLF, bare LF, mixed) and the read boundaries, a message is
    returned by the very read that brings its blank line: nothing waits for the next read."""
    stream = GREETING
    ends: list[int] = []  # where each message's blank line ends
    for fields, eol in zip(messages, endings, strict=False):
        stream += ("".join(f"{key}: {value}{eol}" for key, value in fields) + eol).encode()
        ends.append(len(stream))
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=8)))

    decoder = FrameDecoder()
    pieces: list[Message] = []
    for cut, data in reads(stream, cuts):
        pieces.extend(decoder.feed(data))
        assert len(pieces) == sum(end <= cut for end in ends)

    assert [list(message.fields) for message in pieces] == messages


RECEIVED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("1796307771.001693", datetime(2026, 12, 3, 14, 22, 51, 1693, tzinfo=UTC)),
        ("1796307771", datetime(2026, 12, 3, 14, 22, 51, tzinfo=UTC)),
        ("1796307771.5", datetime(2026, 12, 3, 14, 22, 51, 500000, tzinfo=UTC)),
        (None, RECEIVED),
        ("", RECEIVED),
        ("-1.000000", RECEIVED),
        ("1796307771.1234567", RECEIVED),
        ("١٧٩٦٣٠٧٧٧١.0", RECEIVED),
        ("1e9", RECEIVED),
    ],
)
def test_an_events_time_is_asterisks_timestamp_else_when_it_was_received(
    stamp: str | None, expected: datetime
) -> None:
    fields = [("Event", "QueueCallerJoin")] + ([("Timestamp", stamp)] if stamp is not None else [])
    assert event_time(Message(fields), RECEIVED) == expected
