"""The pacing on a simulated campaign (no telephony, fixed seed) keeps within the law."""

from __future__ import annotations

import pytest

from graam_pbx.campaigns.simulation import SimulationResult, max_window_rate, simulate

LAW_LIMIT = 0.03  # abandoned calls per call answered by a person, over 24 h and 30 days


def campaign(mode: str, seed: int = 18) -> SimulationResult:
    return simulate(mode, agents=20, handle_seconds=180.0, answer_rate=0.25, hours=8.0, seed=seed)


@pytest.mark.parametrize("seed", [18, 19, 20])
def test_predictive_keeps_agents_busier_within_the_abandon_limit(seed: int) -> None:
    progressive = campaign("progressive", seed)
    predictive = campaign("predictive", seed)
    for result in (progressive, predictive):
        assert result.attempts > 1_000
        assert result.answered > 0
        assert result.abandon_rate <= LAW_LIMIT
        assert result.max_window_abandon_rate <= LAW_LIMIT
        assert 0.0 < result.occupancy < 1.0
        assert result.max_in_flight <= 20 * 5  # the default cap
    assert predictive.occupancy > progressive.occupancy
    # One call per free agent never abandons anyone.
    assert progressive.abandoned == 0
    # Predictive places more calls than progressive, and has its people answered by agents.
    assert predictive.attempts > progressive.attempts
    assert predictive.answered > progressive.answered


def test_the_run_is_reproducible() -> None:
    assert campaign("predictive") == campaign("predictive")
    assert campaign("predictive", 18) != campaign("predictive", 21)


def test_per_minute_figures_add_up() -> None:
    result = campaign("predictive")
    assert len(result.minutes) == 8 * 60
    assert sum(m.attempts for m in result.minutes) == result.attempts
    assert sum(m.answered for m in result.minutes) == result.answered
    assert sum(m.abandoned for m in result.minutes) == result.abandoned
    mean = sum(m.occupancy for m in result.minutes) / len(result.minutes)
    assert mean == pytest.approx(result.occupancy, abs=0.02)


def test_preview_places_nothing_by_itself() -> None:
    result = simulate(
        "preview", agents=5, handle_seconds=180.0, answer_rate=0.25, hours=0.5, seed=1
    )
    assert result.attempts == 0
    assert result.occupancy == 0.0


def test_a_cap_bounds_the_calls_in_progress() -> None:
    result = simulate(
        "predictive", agents=20, handle_seconds=180.0, answer_rate=0.25, hours=1.0, seed=3, cap=8
    )
    assert 0 < result.max_in_flight <= 8


def test_every_24_hour_window_is_checked() -> None:
    hour = 3_600.0
    # 100 answers spread over three days, all the abandons within one day's end and the
    # next day's start: the whole run is at 10 %, one window at 40 %.
    events = [(n * 0.72 * hour, False) for n in range(100)]
    lost = {40, 41, 42, 43}
    events = [(at, n in lost) for n, (at, _) in enumerate(events)]
    assert max_window_rate(events, 24 * hour, 72 * hour) == pytest.approx(4 / 34, abs=0.01)
    # A run shorter than a window is one window.
    assert max_window_rate(events[:10], 24 * hour, 8 * hour) == 0.0
    assert max_window_rate([(1.0, True), (2.0, False)], 24 * hour, 8 * hour) == 0.5
    assert max_window_rate([], 24 * hour, 72 * hour) == 0.0


def test_windows_with_few_answers_count() -> None:
    # A window of 25 s holds two answers at least: at worst the abandoned one and one more.
    events = [(0.0, False), (10.0, False), (20.0, True), (30.0, False), (40.0, False)]
    assert max_window_rate(events, 25.0, 40.0) == 0.5
    assert max_window_rate(events, 5.0, 40.0) == 1.0  # the abandoned one alone
