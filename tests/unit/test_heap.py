"""The collector's settings for a running server, and their release at shutdown."""

from __future__ import annotations

import gc

from graam_pbx import heap


def test_settle_collects_the_young_generation_less_often_and_release_restores_it() -> None:
    before = gc.get_threshold()
    try:
        heap.settle_after_startup()
        assert gc.get_threshold() == (heap.YOUNG_GENERATION_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
        heap.settle_after_startup()  # a second start keeps what the first saved
        heap.release()
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0
    finally:
        heap.release()
        gc.set_threshold(*before)
