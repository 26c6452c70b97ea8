"""The pacing engine's decisions: preview, progressive, predictive, the cap, the fall back."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from graam_pbx.campaigns.pacing import (
    Decision,
    Pacer,
    PacingInput,
    calls_within_budget,
    free_within,
    overflow_share,
)

BASE = PacingInput(
    mode="predictive",
    agents_available=5,
    agents_busy=15,
    calls_dialing=0,
    calls_waiting=0,
    answer_rate=0.25,
    mean_ring_seconds=7.0,
    mean_handle_seconds=180.0,
    abandon_rate_short=0.0,
    abandon_rate_long=0.0,
    abandon_target=0.025,
    abandon_limit=0.03,
    cap=100,
)


def state(**changes: object) -> PacingInput:
    return dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]


def test_preview_places_no_call() -> None:
    decision = Pacer().decide(state(mode="preview", agents_available=20), 0.0)
    assert decision == Decision(0, "preview", 0.0)


def test_progressive_is_one_call_per_available_agent() -> None:
    pacer = Pacer()
    assert pacer.decide(state(mode="progressive"), 0.0) == Decision(5, "progressive", 1.0)
    # Calls already dialling or waiting for an agent count against the available agents.
    assert pacer.decide(state(mode="progressive", calls_dialing=2, calls_waiting=1), 1.0).calls == 2
    assert pacer.decide(state(mode="progressive", calls_dialing=9), 2.0).calls == 0


def test_predictive_dials_more_than_progressive() -> None:
    decision = Pacer().decide(state(), 0.0)
    assert decision.mode == "predictive"
    assert decision.ratio > 1.0
    assert decision.calls > 5


def test_busy_agents_about_to_finish_count() -> None:
    short = Pacer().decide(state(mean_handle_seconds=30.0), 0.0)
    long = Pacer().decide(state(mean_handle_seconds=3_000.0), 0.0)
    unknown = Pacer().decide(state(mean_handle_seconds=0.0), 0.0)
    assert short.calls > long.calls >= unknown.calls


def test_never_more_calls_in_progress_than_the_cap() -> None:
    assert Pacer().decide(state(cap=3), 0.0).calls == 3
    assert Pacer().decide(state(cap=3, mode="progressive"), 0.0).calls == 3
    assert Pacer().decide(state(cap=10, calls_dialing=6, calls_waiting=2), 0.0).calls <= 2
    assert Pacer().decide(state(cap=4, calls_dialing=6), 0.0).calls == 0
    assert Pacer().decide(state(cap=0), 0.0).calls == 0


def test_unmeasured_answer_rate_dials_progressively() -> None:
    assert Pacer().decide(state(answer_rate=0.0), 0.0) == Decision(5, "progressive", 1.0)


def warmed(rate: float) -> Decision:
    """The decision of a pacer that has ramped up for a while at that abandon rate."""
    pacer = Pacer(recompute_seconds=15.0)
    changes = {"agents_available": 20, "agents_busy": 0, "abandon_rate_long": rate}
    for n in range(8):
        pacer.decide(state(**changes), 15.0 * n)
    return pacer.decide(state(**changes), 120.0)


def test_slows_down_as_the_abandon_rate_approaches_the_target() -> None:
    calls = [warmed(rate) for rate in (0.0, 0.01, 0.02, 0.024)]
    assert [c.calls for c in calls] == sorted((c.calls for c in calls), reverse=True)
    assert [c.ratio for c in calls] == sorted((c.ratio for c in calls), reverse=True)
    assert calls[0].calls > calls[-1].calls
    assert all(c.mode == "predictive" for c in calls)


def test_falls_back_to_progressive_when_either_rate_reaches_the_target() -> None:
    pacer = Pacer()
    assert pacer.decide(state(), 0.0).mode == "predictive"
    for rates in ({"abandon_rate_short": 0.025}, {"abandon_rate_long": 0.025}):
        decision = pacer.decide(state(**rates), 1.0)
        assert decision == Decision(5, "progressive", 1.0)
    # A legal limit under the target wins.
    decision = pacer.decide(
        state(abandon_target=0.05, abandon_limit=0.03, abandon_rate_short=0.03), 2.0
    )
    assert decision.mode == "progressive"


def test_the_ratio_is_kept_between_recomputations() -> None:
    pacer = Pacer(recompute_seconds=15.0)
    first = pacer.decide(state(), 100.0)
    # A better answer rate measured meanwhile changes nothing until 15 s have passed.
    kept = pacer.decide(state(answer_rate=0.5), 114.9)
    assert kept.ratio == first.ratio
    recomputed = pacer.decide(state(answer_rate=0.5), 115.0)
    assert recomputed.ratio != first.ratio


def test_the_ratio_ramps_up() -> None:
    pacer = Pacer(recompute_seconds=15.0)
    ratios = [pacer.decide(state(answer_rate=0.1), 15.0 * n).ratio for n in range(6)]
    assert ratios[0] <= 1.5
    assert ratios == sorted(ratios)
    assert ratios[-1] > ratios[0]


def test_recomputes_on_return_from_progressive() -> None:
    pacer = Pacer(recompute_seconds=15.0)
    before = pacer.decide(state(), 0.0)
    pacer.decide(state(abandon_rate_short=0.03), 1.0)
    after = pacer.decide(state(abandon_rate_short=0.02), 2.0)
    assert after.mode == "predictive"
    assert after.ratio <= before.ratio


def test_the_model() -> None:
    assert free_within(0, 10.0, 180.0) == 0.0
    assert free_within(10, 0.0, 180.0) == 0.0
    assert 0.5 < free_within(10, 10.0, 180.0) < 0.6  # 10 x (1 - e^(-1/18))
    assert overflow_share(0, 0.25, 3.0) == 0.0
    assert overflow_share(4, 1.0, 2.0) == 0.5  # 4 answers, 2 agents
    assert overflow_share(40, 0.25, 5.0) > overflow_share(20, 0.25, 5.0)
    assert calls_within_budget(0.0, 0.25, 0.02) == 0
    fits = calls_within_budget(10.0, 0.25, 0.02)
    assert overflow_share(fits, 0.25, 10.0) <= 0.02 < overflow_share(fits + 1, 0.25, 10.0)


@given(
    mode=st.sampled_from(["preview", "progressive", "predictive"]),
    available=st.integers(-2, 60),
    busy=st.integers(-2, 60),
    dialing=st.integers(-2, 300),
    waiting=st.integers(-2, 20),
    answer_rate=st.floats(-1.0, 2.0),
    ring=st.floats(-5.0, 60.0),
    handle=st.floats(-5.0, 3_600.0),
    short=st.floats(0.0, 1.0),
    long=st.floats(0.0, 1.0),
    cap=st.integers(-5, 500),
    now=st.floats(0.0, 1e6),
)
def test_any_input_gives_a_sane_decision(
    mode: str,
    available: int,
    busy: int,
    dialing: int,
    waiting: int,
    answer_rate: float,
    ring: float,
    handle: float,
    short: float,
    long: float,
    cap: int,
    now: float,
) -> None:
    decision = Pacer().decide(
        PacingInput(
            mode, available, busy, dialing, waiting, answer_rate, ring, handle, short, long,
            0.025, 0.03, cap,
        ),
        now,
    )  # fmt: skip
    assert 0 <= decision.calls <= max(0, cap - max(0, dialing) - max(0, waiting))
    if mode == "preview":
        assert decision.calls == 0
    if max(short, long) >= 0.025:
        assert decision.mode in ("preview", "progressive")
        assert decision.calls <= max(0, available - max(0, dialing) - max(0, waiting))
