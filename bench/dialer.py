"""The dialer: the predictive engine alone, then real calls through Asterisk.

python -m bench.dialer [--quick] [--engine-only]

Prints one JSON line.

The engine: CAMPAIGNS predictive campaigns of AGENTS agents each (handling 180 s on average,
25 % of calls answered by a person), simulated without telephony
(``graam_pbx.campaigns.simulation.SimulatedCampaign``: calls ringing, answered, abandoned
after 2 s without an agent, agents finishing), each with its own ``Pacer`` deciding every
simulated second for SIMULATED_HOURS (--quick: a tenth). Only the ``decide`` calls are timed:
``decisions_per_s`` is the decisions over their summed time, ``decision_p99_ms`` the 99th
percentile of one decision, ``round_p99_ms`` that of one second's decisions for every
campaign (the dialer's tick); ``engine_abandon_rate`` and ``engine_occupancy`` are the
campaigns' abandon rate (abandoned per call answered by a person) and agents' occupancy.

The limit, in the same run: the same number of calls, with the same inputs, to a function
that only builds a constant decision (the cost of a Python call taking a ``PacingInput`` and
returning a ``Decision``, the least any pacer costs); ``limit_decisions_per_s`` and
``ratio_to_limit`` (decisions_per_s / limit_decisions_per_s).

The real run: ``bench.dialer_calls.real_run`` (a campaign through the real Asterisk with sipp
far ends at the highest rate it sustains); its keys are merged in (at least
``real_attempts_per_s``, ``double_calls``, ``abandon_rate``). ``--engine-only`` skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
from typing import Any

from bench.readings import percentile
from graam_pbx.campaigns.pacing import Decision, Pacer, PacingInput
from graam_pbx.campaigns.simulation import SimulatedCampaign

CAMPAIGNS = 100
AGENTS = 50
HANDLE_SECONDS = 180.0
ANSWER_RATE = 0.25
SIMULATED_HOURS = 1.0
SEED = 18


def _constant(state: PacingInput, now: float) -> Decision:
    return Decision(0, state.mode, 1.0)


def engine(hours: float) -> dict[str, Any]:
    """Every campaign's pacer deciding each simulated second; the decisions timed alone."""
    campaigns = [
        SimulatedCampaign(
            "predictive",
            agents=AGENTS,
            handle_seconds=HANDLE_SECONDS,
            answer_rate=ANSWER_RATE,
            hours=hours,
            seed=SEED + n,
        )
        for n in range(CAMPAIGNS)
    ]
    pacers = [Pacer() for _ in campaigns]
    timings: list[float] = []  # nanoseconds per decision
    states: list[tuple[PacingInput, float]] = []  # for the limit, the same inputs
    clock = time.perf_counter_ns
    # The collector is off while timing: this process keeps every input for the limit, and the
    # pauses of collecting them are the bench's, not the engine's.
    gc.disable()
    now = 0.0
    end = hours * 3600.0
    rounds: list[float] = []  # nanoseconds deciding for every campaign, each second
    while now < end:
        round_started = len(timings)
        for campaign, pacer in zip(campaigns, pacers, strict=True):
            state = campaign.observe(now)
            started = clock()
            decision = pacer.decide(state, now)
            timings.append(clock() - started)
            states.append((state, now))
            campaign.apply(decision, now)
        rounds.append(sum(timings[round_started:]))
        now += 1.0
    results = [campaign.result() for campaign in campaigns]
    decide_s = sum(timings) / 1e9

    # The limit: the same calls to a function doing nothing, timed the same way.
    limit_timings: list[float] = []
    for state, at in states:
        started = clock()
        _constant(state, at)
        limit_timings.append(clock() - started)
    limit_s = sum(limit_timings) / 1e9
    gc.enable()

    live = sum(r.answered + r.abandoned for r in results)
    decisions = len(timings)
    return {
        "campaigns": CAMPAIGNS,
        "agents_per_campaign": AGENTS,
        "simulated_hours": hours,
        "decisions": decisions,
        "decisions_per_s": round(decisions / decide_s),
        "decision_p50_ms": round(percentile(timings, 0.5) / 1e6, 4),
        "decision_p99_ms": round(percentile(timings, 0.99) / 1e6, 4),
        "decision_max_ms": round(max(timings) / 1e6, 3),
        "round_p99_ms": round(percentile(rounds, 0.99) / 1e6, 3),
        "limit_decisions_per_s": round(decisions / limit_s),
        "limit_p99_ms": round(percentile(limit_timings, 0.99) / 1e6, 4),
        "ratio_to_limit": round(limit_s / decide_s, 3),
        "engine_attempts": sum(r.attempts for r in results),
        "engine_abandon_rate": round(sum(r.abandoned for r in results) / live, 4) if live else 0,
        "engine_max_abandon_rate": round(max(r.abandon_rate for r in results), 4),
        "engine_occupancy": round(sum(r.occupancy for r in results) / len(results), 3),
    }


def main(quick: bool, engine_only: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"bench": "dialer"}
    result.update(engine(SIMULATED_HOURS / 10 if quick else SIMULATED_HOURS))
    if not engine_only:
        # Written beside this file; imported here so that --engine-only runs without it.
        try:
            from bench.dialer_calls import real_run
        except ModuleNotFoundError as err:
            if err.name != "bench.dialer_calls":
                raise
            raise SystemExit(
                "bench/dialer_calls.py is missing: --engine-only runs without it"
            ) from err
        result.update(asyncio.run(real_run(quick)))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="6 simulated minutes; a short real run"
    )
    parser.add_argument("--engine-only", action="store_true", help="no real calls")
    args = parser.parse_args()
    print(json.dumps(main(args.quick, args.engine_only)))
