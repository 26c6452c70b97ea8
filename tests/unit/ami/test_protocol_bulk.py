"""The decoder's bulk path (whole CRLF ASCII reads at once) against the plain line-by-line rules.

A busy Asterisk sends thousands of events a second (``Cdr`` for every call leg); the decoder
splits whole reads in C when it can. Whatever the bytes and however they are cut, it must
give exactly what reading line by line gives.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from graam_pbx.ami.protocol import FrameDecoder

from .scripted import GREETING, reads


def line_by_line(stream: bytes) -> list[list[tuple[str, str]]]:
    """The AMI framing rules, one line at a time (what the decoder must agree with)."""
    messages: list[list[tuple[str, str]]] = []
    fields: list[tuple[str, str]] = []
    for number, raw in enumerate(stream.split(b"\n")[:-1]):
        line = raw.removesuffix(b"\r").decode("utf-8", errors="replace")
        if number == 0 and line.startswith("Asterisk Call Manager"):
            continue
        if not line:
            if fields:
                messages.append(fields)
                fields = []
            continue
        key, separator, value = line.partition(":")
        fields.append((key, value.removeprefix(" ")) if separator else ("Output", line))
    return messages


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12)
_ascii = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
_line = st.one_of(
    st.tuples(_ascii.filter(lambda k: ":" not in k), _ascii).map(lambda kv: f"{kv[0]}: {kv[1]}"),
    _ascii,  # anything: no colon, no space after it, colons in the key
    _text,  # not ASCII: the line-by-line path
    st.just(""),  # a stray blank line
)
_messages = st.lists(st.lists(_line, min_size=1, max_size=6), max_size=5)


@given(messages=_messages, bare_lf=st.booleans(), data=st.data())
def test_any_bytes_cut_anywhere_decode_like_line_by_line(
    messages: list[list[str]], bare_lf: bool, data: st.DataObject
) -> None:
    end = "\n" if bare_lf else "\r\n"
    stream = GREETING + "".join(end.join(lines) + end + end for lines in messages).encode()
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=6)))

    decoder = FrameDecoder()
    decoded = [message for _, data in reads(stream, cuts) for message in decoder.feed(data)]

    assert [list(message.fields) for message in decoded] == line_by_line(stream)


def test_a_read_ending_between_a_message_and_its_blank_line() -> None:
    decoder = FrameDecoder()

    assert decoder.feed(GREETING + b"Event: A\r\nX: 1\r\n") == []
    [first, second] = decoder.feed(b"\r\nEvent: B\r\n\r\n")

    assert list(first.fields) == [("Event", "A"), ("X", "1")]
    assert list(second.fields) == [("Event", "B")]


def test_lookups_take_the_first_of_repeated_headers_in_any_case() -> None:
    [message] = FrameDecoder().feed(b"Event: V\r\nVariable: a\r\nvariable: b\r\n\r\n")

    assert message.get("VARIABLE") == "a"
    assert message.get("ActionID") is None
    assert message.get("ActionID", "") == ""
    assert list(message) == ["Event", "Variable"]
    assert len(message) == 2
