"""Checks an uploaded greeting is a WAV Asterisk plays without transcoding surprises.

Accepted: RIFF/WAVE, plain 16-bit PCM, mono, 8000 or 16000 Hz, 0.1 s to 10 minutes, at most
20 MB. Anything else raises ``ValueError`` with a reason written for the person uploading.
"""

from __future__ import annotations

import io
import struct
import wave
from typing import NamedTuple

MAX_BYTES = 20 * 1024 * 1024
SAMPLE_RATES = (8000, 16000)
MIN_DURATION_MS = 100
MAX_DURATION_MS = 10 * 60 * 1000

_WAVE_FORMAT_PCM = 1
# What the stdlib parser raises on malformed input, besides its own wave.Error.
_PARSE_ERRORS = (wave.Error, EOFError, RuntimeError, struct.error, ValueError, OverflowError)


class WavInfo(NamedTuple):
    sample_rate: int
    duration_ms: int


def inspect_greeting(data: bytes) -> WavInfo:
    """The sample rate and duration of an acceptable greeting, or ValueError saying why not."""
    if len(data) > MAX_BYTES:
        raise ValueError(f"file too large: greetings may have at most {MAX_BYTES // 2**20} MB")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV file (RIFF/WAVE header expected)")
    _check_format_chunk(data)
    try:
        with wave.open(io.BytesIO(data), "rb") as reader:
            channels = reader.getnchannels()
            sample_width = reader.getsampwidth()
            rate = reader.getframerate()
            frames = reader.getnframes()
            audio = reader.readframes(frames)
    except _PARSE_ERRORS as err:
        raise ValueError(f"not a readable WAV file: {_describe(err)}") from None
    if channels != 1:
        label = "stereo" if channels == 2 else f"{channels}-channel"
        raise ValueError(f"{label} audio: greetings must be mono")
    if sample_width != 2:
        raise ValueError(f"{8 * sample_width}-bit samples: greetings must be 16-bit PCM")
    if rate not in SAMPLE_RATES:
        raise ValueError(f"{rate} Hz: greetings must be 8000 or 16000 Hz")
    if len(audio) < frames * channels * sample_width:
        raise ValueError("truncated: the audio data is shorter than the header says")
    duration_ms = frames * 1000 // rate
    if duration_ms < MIN_DURATION_MS:
        raise ValueError("too short: greetings last at least 0.1 s")
    if duration_ms > MAX_DURATION_MS:
        raise ValueError("too long: greetings last at most 10 minutes")
    return WavInfo(sample_rate=rate, duration_ms=duration_ms)


def _check_format_chunk(data: bytes) -> None:
    # The wave module rounds bits up to whole bytes (12-bit reads as 16-bit): look at the
    # declared sample size ourselves.
    offset = 12
    while offset + 8 <= len(data):
        name = data[offset : offset + 4]
        (size,) = struct.unpack_from("<L", data, offset + 4)
        if name == b"fmt ":
            body = data[offset + 8 : offset + 8 + size]
            if len(body) < 16:
                raise ValueError("not a readable WAV file: the format chunk is truncated")
            audio_format, _, _, _, _, bits = struct.unpack_from("<HHLLHH", body)
            if audio_format != _WAVE_FORMAT_PCM:
                raise ValueError(
                    f"not plain PCM audio (format {audio_format}): save it as 16-bit PCM WAV"
                )
            if bits != 16:
                raise ValueError(f"{bits}-bit samples: greetings must be 16-bit PCM")
            return
        offset += 8 + size + (size & 1)  # chunks are padded to an even size
    raise ValueError("not a readable WAV file: no format chunk")


def _describe(err: BaseException) -> str:
    text = str(err)
    if isinstance(err, EOFError | struct.error) or not text:
        return "it ends too early"
    return text
