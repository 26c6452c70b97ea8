"""The interpreter's garbage collector, set for a long-running server."""

from __future__ import annotations

import gc

# Allocations (of objects that can hold references) between two collections of the youngest
# generation; the interpreter's default is 700. Under a busy AMI stream every event makes a
# few such objects that live a few milliseconds (its message, its match, its record until the
# batch commits): at 700, a collection came every event or so of net growth and walked the
# thousands of events queued on the bus again and again, about a tenth of the CPU per event
# (bench/cdr_ingest.py: 0.25 s of 200,000 events' 2.6 to 3.1 s); at 10,000, most of them are
# gone before one comes (0.01 s). A collection of 10,000 young objects takes a millisecond or
# two.
YOUNG_GENERATION_THRESHOLD = 10_000

_saved_thresholds: tuple[int, int, int] | None = None
_collected = False  # whether a start of this process collected already


def settle_after_startup() -> None:
    """Collect what startup left behind, exempt every object alive now from later
    collections, and collect the youngest generation less often.

    What imports and startup make (modules, classes, SQLAlchemy and pydantic metadata, the
    rendered templates) lives as long as the process, yet every full collection walked it
    again: under a busy AMI stream, full collections come every second or two (each CDR
    batch survives into the oldest generation) and cost about a fifth of the CPU per event
    (bench/cdr_ingest.py, 23 → 18 µs of Python per event).

    The full collection runs at the process's first start only: a process that starts the
    application again (tests start one per test) would walk its whole heap each time, which
    grows with every test (a tenth of the test suite's time went there). What a later start
    exempts without collecting first is given back at its ``release``.
    """
    global _saved_thresholds, _collected
    if not _collected:
        gc.collect()
        _collected = True
    gc.freeze()
    if _saved_thresholds is None:
        _saved_thresholds = gc.get_threshold()
        _, middle, oldest = _saved_thresholds
        gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, oldest)


def release() -> None:
    """Give what ``settle_after_startup`` exempted back to the collector, and its thresholds
    back to what they were (at shutdown: the process may start the application again, as
    tests do)."""
    global _saved_thresholds
    gc.unfreeze()
    if _saved_thresholds is not None:
        gc.set_threshold(*_saved_thresholds)
        _saved_thresholds = None
