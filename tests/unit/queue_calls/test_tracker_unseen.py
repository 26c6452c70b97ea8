"""Calls that entered a queue before the tracker listened (a control plane started again
after ``kill -9``): their end is noticed, so that the writer reads queue_log at once instead
of at its next periodic backfill."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from graam_pbx.queue_calls.tracker import Tracker, event_from_ami

DATA = Path(__file__).resolve().parents[2] / "data" / "queue_calls"
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def blocks(name: str) -> list[dict[str, str]]:
    text = "\n".join(
        line for line in (DATA / name).read_text().splitlines() if not line.startswith("#")
    )
    found = []
    for block in text.strip().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.strip().splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        found.append(fields)
    return found


def feed(tracker: Tracker, recorded: list[dict[str, str]]) -> int:
    """Feed the events; the rows the tracker finished."""
    rows = 0
    for fields in recorded:
        fields = dict(fields)
        at = START + timedelta(seconds=float(fields.pop("At")))
        event = event_from_ami(fields, at)
        if event is not None:
            rows += len(tracker.feed(event))
    return rows


@pytest.mark.parametrize(
    "name", ["abandoned.ami", "timeout.ami", "answered_after_ring_no_answer.ami"]
)
def test_the_end_of_a_call_entered_before_the_tracker_is_counted_unseen(name: str) -> None:
    recorded = blocks(name)
    late = [fields for fields in recorded if fields.get("Event") != "QueueCallerJoin"]
    assert len(late) < len(recorded)
    tracker = Tracker()
    assert feed(tracker, late) == 0
    assert tracker.unseen_ends >= 1


@pytest.mark.parametrize(
    "name", ["abandoned.ami", "timeout.ami", "answered_after_ring_no_answer.ami"]
)
def test_a_call_seen_from_its_entry_leaves_nothing_unseen(name: str) -> None:
    tracker = Tracker()
    assert feed(tracker, blocks(name)) == 1
    assert tracker.unseen_ends == 0


def test_a_refused_or_closed_call_is_never_unseen() -> None:
    tracker = Tracker()
    feed(tracker, blocks("joinempty_then_reentry.ami"))
    assert tracker.unseen_ends == 0
