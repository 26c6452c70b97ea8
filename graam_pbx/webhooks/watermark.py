"""Up to which event id the stored events are final: what a stream may read past for good.

Event ids come from one sequence, taken when a row is inserted, but transactions commit in
their own order: id 101 may be visible while 100, taken just before by a transaction still
running, is not yet. A reader that moved its position past 101 would never see 100. So the
streams read only up to ``final``: every id at or below it is either visible or never will be.

Each observation is one statement's snapshot (``pg_current_snapshot()``), the highest visible
id and the visible ids above ``final``:

- visible ids that follow ``final`` without a gap move it on (a visible row is final);
- a gap (ids taken by transactions running, or rolled back) is waited for. Every id below the
  highest id visible at an observation was taken before it; ``settle`` seconds later its
  transaction has written its row, so it holds a transaction id, and is among the writers
  running then (the *witness*), unless it already ended. Once every witness has ended, an id
  of the gap still not visible never will be: ``final`` moves past the gap.

Rolled back inserts leave gaps; they cost a stream ``settle`` seconds and a few observations.
A writer that stays open longer than ``hold`` seconds is not waited for beyond: the gap is then
given up on (an event it commits later, below ``final``, is not streamed live; it is stored,
and a stream reading again from before it would get it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SETTLE = 1.0  # seconds for a writer that took an id to hold a transaction id (far more)
HOLD = 10.0  # seconds a gap is waited for at most


@dataclass(frozen=True)
class Snapshot:
    """The writers running at a snapshot (their transaction ids)."""

    running: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        """From Postgres' text form ``xmin:xmax:xip,xip,…``."""
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError(f"not a snapshot: {text!r}")
        return cls(frozenset(int(xid) for xid in parts[2].split(",") if xid))


@dataclass
class _Marker:
    bound: int  # every id below it was taken before ``seen``
    seen: float  # monotonic seconds
    witness: frozenset[int] | None = None  # the writers running ``settle`` seconds later


class Watermark:
    """``final``: every event id at or below it is visible, or never will be (None: not known
    yet, until the first observations settle)."""

    def __init__(self, *, settle: float = SETTLE, hold: float = HOLD) -> None:
        self.final: int | None = None
        self._settle = settle
        self._hold = hold
        self._markers: list[_Marker] = []

    @property
    def waiting(self) -> bool:
        """Whether a gap (or the start) is waited for: observe again shortly."""
        return bool(self._markers)

    def reset(self) -> None:
        """Forget everything (nobody reads: nothing is observed meanwhile)."""
        self.final = None
        self._markers.clear()

    def observe(self, snapshot: Snapshot, top: int, ids: Sequence[int], now: float) -> int | None:
        """Take one observation: ``top``, the highest id visible (0: none), and ``ids``, the
        visible ids above ``final`` in order (any number of the first ones), all in the
        snapshot ``snapshot`` at monotonic time ``now``. Returns ``final``."""
        if not self._markers or top + 1 > self._markers[-1].bound:
            self._markers.append(_Marker(top + 1, now))
        settled = None
        for index, marker in enumerate(self._markers):
            if marker.witness is None and now - marker.seen >= self._settle:
                marker.witness = snapshot.running
            if marker.witness is not None and (
                not marker.witness & snapshot.running or now - marker.seen >= self._hold
            ):
                settled = index
        if settled is not None:
            bound = self._markers[settled].bound
            self.final = max(self.final or 0, bound - 1)
            del self._markers[: settled + 1]
        if self.final is not None:
            for event_id in ids:
                if event_id <= self.final:
                    continue
                if event_id != self.final + 1:
                    break
                self.final = event_id
            final = self.final
            self._markers = [marker for marker in self._markers if marker.bound - 1 > final]
        return self.final
