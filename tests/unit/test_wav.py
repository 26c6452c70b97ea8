"""Greeting validation: which WAVs Asterisk will play, and a clear reason for the others."""

from __future__ import annotations

import io
import re
import struct
import wave

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graam_pbx.prompts.wav import MAX_BYTES, WavInfo, inspect_greeting


def make_wav(*, rate: int = 8000, channels: int = 1, width: int = 2, seconds: float = 1.0) -> bytes:
    """A WAV of silence written by the stdlib writer."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(b"\x00" * int(rate * seconds) * channels * width)
    return out.getvalue()


def with_format_code(data: bytes, code: int) -> bytes:
    """The same file claiming another audio format (3: IEEE float, 0xFFFE: extensible)."""
    return data[:20] + struct.pack("<H", code) + data[22:]


def with_bits(data: bytes, bits: int) -> bytes:
    return data[:34] + struct.pack("<H", bits) + data[36:]


def test_8k_mono_16_bit_is_accepted() -> None:
    assert inspect_greeting(make_wav(rate=8000, seconds=1.5)) == WavInfo(8000, 1500)


def test_16k_mono_16_bit_is_accepted() -> None:
    assert inspect_greeting(make_wav(rate=16000, seconds=2)) == WavInfo(16000, 2000)


def test_shortest_and_longest_greetings_are_accepted() -> None:
    assert inspect_greeting(make_wav(seconds=0.1)).duration_ms == 100
    assert inspect_greeting(make_wav(rate=16000, seconds=600)).duration_ms == 600_000


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (make_wav(channels=2), "stereo audio: greetings must be mono"),
        (make_wav(channels=3), "3-channel audio: greetings must be mono"),
        (make_wav(rate=44100), "44100 Hz: greetings must be 8000 or 16000 Hz"),
        (make_wav(rate=48000), "48000 Hz: greetings must be 8000 or 16000 Hz"),
        (make_wav(width=1), "8-bit samples: greetings must be 16-bit PCM"),
        (make_wav(width=3), "24-bit samples: greetings must be 16-bit PCM"),
        (with_bits(make_wav(), 12), "12-bit samples: greetings must be 16-bit PCM"),
        (with_format_code(make_wav(), 3), "not plain PCM audio (format 3)"),
        (with_format_code(make_wav(), 0xFFFE), "not plain PCM audio (format 65534)"),
        (make_wav(seconds=0.05), "too short"),
        (make_wav(seconds=600.5), "too long"),
        (make_wav()[:-100], "truncated"),
        (make_wav()[:30], "format chunk is truncated"),
        (make_wav()[:40], "not a readable WAV file"),
        (b"", "not a WAV file"),
        (b"hello, this is not audio at all", "not a WAV file"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" * 200, "not a WAV file"),
        (b"\xff\xfb\x90\x64" + bytes(400), "not a WAV file"),
        (b"RIFF\x24\x00\x00\x00WAVE", "no format chunk"),
        (b"RIFF\x24\x00\x00\x00AVI LIST", "not a WAV file"),
    ],
    ids=[
        "stereo",
        "3-channels",
        "44.1k",
        "48k",
        "8-bit",
        "24-bit",
        "12-bit",
        "float",
        "extensible",
        "too-short",
        "too-long",
        "truncated-data",
        "truncated-fmt",
        "truncated-header",
        "empty",
        "text",
        "mp3-id3",
        "mp3-frames",
        "riff-without-chunks",
        "avi",
    ],
)
def test_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        inspect_greeting(data)


def test_too_large_is_refused_before_parsing() -> None:
    with pytest.raises(ValueError, match="file too large"):
        inspect_greeting(b"RIFF" + bytes(MAX_BYTES))


_valid = make_wav(seconds=0.2)


@st.composite
def mutated_wavs(draw: st.DrawFn) -> bytes:
    """A valid greeting with a few bytes overwritten, cut or appended."""
    data = bytearray(_valid)
    for _ in range(draw(st.integers(0, 6))):
        position = draw(st.integers(0, 60))
        data[position] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=64))


@settings(max_examples=600, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=256),
        st.binary(max_size=256).map(lambda tail: b"RIFF\x00\x01\x00\x00WAVE" + tail),
        st.binary(max_size=256).map(lambda tail: b"RIFF\xff\xff\xff\xffWAVEfmt " + tail),
        mutated_wavs(),
    )
)
def test_arbitrary_bytes_never_raise_anything_but_value_error(data: bytes) -> None:
    try:
        info = inspect_greeting(data)
    except ValueError as err:
        assert str(err)
    else:
        assert info.sample_rate in (8000, 16000)
        assert 100 <= info.duration_ms <= 600_000
