"""Tones as WAV files: audio that is certainly not silence, for music on hold, prompts and
browsers' fake microphones."""

from __future__ import annotations

import io
import math
import struct
import wave


def tone_wav(hertz: float, seconds: float = 2.0, rate: int = 8000, level: int = 8000) -> bytes:
    """A sine tone at ``level`` (of 32,767): 16-bit mono PCM at ``rate``."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(
            b"".join(
                struct.pack("<h", int(level * math.sin(2 * math.pi * hertz * i / rate)))
                for i in range(int(rate * seconds))
            )
        )
    return out.getvalue()
