"""Which tones a stretch of audio holds: the Goertzel filter's power at one frequency, as a
share of each 50 ms block's energy (1.0: the block is that tone alone; two tones of one level
give about 0.5 each).

A tone is heard in a block where its share is at least ``SHARE``; a stretch holds a tone when
enough blocks do. Blocks are 400 samples at 8 kHz, so the tones tests speak sit 20 Hz apart or
more from each other's bins; the test's tones are hundreds of hertz apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

RATE = 8000
BLOCK = 400  # 50 ms
SHARE = 0.2


def share(block: Sequence[int], hertz: float, rate: int = RATE) -> float:
    """The part of the block's energy at ``hertz`` (0 for silence)."""
    energy = sum(sample * sample for sample in block)
    if energy == 0:
        return 0.0
    coefficient = 2 * math.cos(2 * math.pi * hertz / rate)
    previous = before = 0.0
    for sample in block:
        previous, before = sample + coefficient * previous - before, previous
    power = previous * previous + before * before - coefficient * previous * before
    return power / (energy * len(block) / 2)


class ToneLog:
    """The tones of a growing list of samples (a phone's media, as it arrives), block by
    block, each block's share of a tone computed once: a test polls it without going over
    everything heard again."""

    def __init__(self, samples: list[int]) -> None:
        self._samples = samples
        self._shares: dict[float, list[float]] = {}

    def _blocks_of(self, hertz: float) -> list[float]:
        shares = self._shares.setdefault(hertz, [])
        while (len(shares) + 1) * BLOCK <= len(self._samples):
            start = len(shares) * BLOCK
            shares.append(share(self._samples[start : start + BLOCK], hertz))
        return shares

    def count(self, hertz: float, *, since: int = 0, threshold: float = SHARE) -> int:
        """Blocks holding ``hertz`` among those wholly after sample ``since``."""
        first = -(-since // BLOCK)
        return sum(1 for part in self._blocks_of(hertz)[first:] if part >= threshold)

    def blocks(self, *, since: int = 0) -> int:
        """Whole blocks heard after sample ``since``."""
        return max(0, len(self._samples) // BLOCK - -(-since // BLOCK))
