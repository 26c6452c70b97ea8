"""How far the stored event ids are final, from observations of Postgres' snapshots."""

from __future__ import annotations

import pytest

from graam_pbx.webhooks.watermark import Snapshot, Watermark

IDLE = Snapshot(frozenset())


def running(*xids: int) -> Snapshot:
    return Snapshot(frozenset(xids))


def test_a_snapshot_is_read_from_postgres_text() -> None:
    assert Snapshot.parse("740:745:740,742") == running(740, 742)
    assert Snapshot.parse("745:745:") == IDLE
    with pytest.raises(ValueError, match="not a snapshot"):
        Snapshot.parse("745")


def test_nothing_is_final_until_the_first_observation_settled() -> None:
    mark = Watermark(settle=1.0)
    assert mark.observe(IDLE, 10, [], now=0.0) is None
    assert mark.waiting
    # A second later no writer runs: every id up to the highest seen at the start is final.
    assert mark.observe(IDLE, 12, [], now=1.0) == 10
    # And the visible ids that follow it without a gap.
    assert mark.observe(IDLE, 12, [11, 12], now=1.1) == 12
    assert not mark.waiting


def test_the_start_waits_for_the_writers_running_a_second_later() -> None:
    mark = Watermark(settle=1.0)
    mark.observe(running(7), 10, [], now=0.0)
    assert mark.observe(running(7, 8), 10, [], now=1.0) is None  # witnesses: 7 and 8
    assert mark.observe(running(8, 9), 10, [], now=1.5) is None  # 8 still runs
    assert mark.observe(running(9), 10, [], now=2.0) == 10  # 9 began after: not waited for


def test_a_gap_holds_the_ids_after_it_until_it_is_filled() -> None:
    mark = Watermark(settle=1.0)
    mark.observe(IDLE, 5, [], now=0.0)
    assert mark.observe(IDLE, 5, [], now=1.0) == 5
    # 6 is taken by a transaction still running (xid 40); 7 committed first.
    assert mark.observe(running(40), 7, [7], now=2.0) == 5
    assert mark.observe(running(40), 7, [7], now=2.5) == 5
    # 40 commits: 6 is visible, and both are final, in their order.
    assert mark.observe(IDLE, 7, [6, 7], now=2.6) == 7
    assert not mark.waiting


def test_a_gap_left_by_a_rollback_is_passed_once_its_writers_ended() -> None:
    mark = Watermark(settle=1.0)
    mark.observe(IDLE, 5, [], now=0.0)
    mark.observe(IDLE, 5, [], now=1.0)
    assert mark.observe(running(40), 8, [8], now=2.0) == 5  # 6 and 7 missing
    assert mark.observe(running(40, 41), 8, [8], now=3.0) == 5  # witnesses: 40, 41
    assert mark.observe(running(41), 8, [8], now=3.2) == 5  # 41 still runs
    # Both ended and 6, 7 never came: rolled back. 8 and 9 follow.
    assert mark.observe(running(42), 9, [8, 9], now=3.4) == 9


def test_a_writer_open_too_long_is_not_waited_for_beyond_the_hold() -> None:
    mark = Watermark(settle=1.0, hold=10.0)
    mark.observe(IDLE, 5, [], now=0.0)
    mark.observe(IDLE, 5, [], now=1.0)
    assert mark.observe(running(40), 7, [7], now=2.0) == 5
    assert mark.observe(running(40), 7, [7], now=11.9) == 5
    assert mark.observe(running(40), 7, [7], now=12.0) == 7


def test_reset_forgets_everything() -> None:
    mark = Watermark(settle=0.0)
    assert mark.observe(IDLE, 3, [], now=0.0) == 3
    mark.reset()
    assert mark.final is None and not mark.waiting
