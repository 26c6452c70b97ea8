"""Erlang A staffing: Erlang C with callers who give up (the M/M/n+M queue).

Callers arrive at rate λ, agents handle them at rate μ each (1 / AHT), and a waiting caller
abandons at rate θ (1 / mean patience). With n agents the number of callers in the system
is a birth-death chain: births λ, deaths min(k, n)·μ + max(k - n, 0)·θ. Its stationary law π
is what an arriving caller finds (Poisson arrivals see time averages):

- fewer than n: answered at once;
- n + j (j callers ahead): answered if the j ahead leave (an answer or an abandon:
  rate n·μ + i·θ with i ahead) and an agent frees before the caller's own patience runs
  out. ``served_within`` follows that chain over time by uniformization.

The probabilities are binary floating point (they are not money); what is reported is
rounded by ``round_ratio`` like every other ratio. Mean patience is estimated from a queue's
history as the callers' total waiting time over the number of abandons (the exponential
model's maximum-likelihood estimate, answered callers counting as censored patience).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from graam_pbx.stats.erlang import MAX_AGENTS
from graam_pbx.stats.kpi import round_ratio

# Callers ahead beyond which the chain is cut: a queue that long is not a plan.
MAX_WAITING = 20_000
# Arrivals' probability mass left out when the chain is cut (far below 1/10,000).
TAIL = 1e-12
# Largest Λ·t of one uniformization step (e^-Λt stays far from underflow).
_STEP = 30.0


@dataclass(frozen=True)
class Queueing:
    """An Erlang A queue's figures with ``agents`` agents."""

    agents: int
    probability_of_waiting: float  # an arrival finds every agent busy
    probability_of_abandon: float  # an arrival gives up before an agent answers
    service_level: float  # an arrival is answered within the target


@dataclass(frozen=True)
class StaffingA:
    traffic_erlangs: Decimal
    agents: int
    service_level: Decimal  # answered within the target / offered, rounded by round_ratio
    probability_of_waiting: Decimal
    probability_of_abandon: Decimal
    occupancy: Decimal  # answered traffic / agents
    patience_seconds: Decimal


class _Saturated(Exception):
    """More than MAX_WAITING callers ahead is likely: the queue holds everyone."""


def _log_sum(logs: list[float]) -> float:
    top = max(logs)
    return top + math.log(math.fsum(math.exp(value - top) for value in logs))


def _arrivals_seeing(
    agents: int, rate: float, mu: float, theta: float
) -> tuple[float, list[float]]:
    """P(an arrival finds fewer than ``agents`` busy), and P(it finds n + j) for j = 0, 1, …"""
    traffic = rate / mu
    # Relative to π_n: Σ_{k<n} π_k / π_n = (1 - B) / B, B Erlang B's blocking (stable recursion).
    blocking = 1.0
    for n in range(1, agents + 1):
        blocking = traffic * blocking / (n + traffic * blocking)
    if blocking <= 0.0:  # every agent busy is too rare for a float: nobody waits
        return 1.0, [0.0]
    log_low = math.log1p(-blocking) - math.log(blocking) if blocking < 1.0 else -math.inf
    logs = [0.0]  # log(π_{n+j} / π_n)
    top = 0.0
    while True:
        j = len(logs)
        logs.append(logs[-1] + math.log(rate / (agents * mu + j * theta)))
        top = max(top, logs[-1])
        # The terms after j shrink at least by r each: their sum is at most term·r/(1 - r).
        ratio = rate / (agents * mu + (j + 1) * theta)
        if ratio < 1.0 and logs[-1] + math.log(ratio / (1.0 - ratio)) - top < math.log(TAIL):
            break
        if j >= MAX_WAITING:
            raise _Saturated
    total = _log_sum([log_low, *logs]) if log_low > -math.inf else _log_sum(logs)
    low = math.exp(log_low - total) if log_low > -math.inf else 0.0
    return low, [math.exp(value - total) for value in logs]


def _answered_within(
    agents: int, mu: float, theta: float, seeing: list[float], seconds: float
) -> float:
    """Mass of the arrivals that wait and are answered within ``seconds`` (forward chain:
    position i drops at n·μ + i·θ, the caller abandons at θ, position 0 is answered at n·μ)."""
    served_rate = agents * mu
    size = len(seeing)
    exit_rate = [served_rate + (i + 1) * theta for i in range(size)]
    uniform = exit_rate[-1]
    steps = max(1, math.ceil(uniform * seconds / _STEP))
    dt = seconds / steps
    mass = list(seeing)
    answered = 0.0
    for _ in range(steps):
        lam_t = uniform * dt
        weight = math.exp(-lam_t)
        cumulative = weight
        vector = mass
        # Σ_k Poisson(k; Λdt) (mass·P^k), and the answers the steps make in between.
        result = [weight * value for value in vector]
        answered_by = 0.0
        k = 0
        while 1.0 - cumulative > 1e-15 and k < 10_000:
            k += 1
            answered_by += vector[0] * served_rate / uniform  # absorbed on step k
            nxt = [0.0] * size
            for i in range(size):
                value = vector[i]
                if value:
                    nxt[i] += value * (1.0 - exit_rate[i] / uniform)
                    if i:
                        nxt[i - 1] += value * (served_rate + i * theta) / uniform
            vector = nxt
            weight *= lam_t / k
            cumulative += weight
            for i in range(size):
                result[i] += weight * vector[i]
            answered += weight * answered_by
        mass = result
    return answered


def queueing(
    agents: int, traffic: Decimal, aht: Decimal, patience: Decimal, target_seconds: Decimal
) -> Queueing:
    """Erlang A's figures with ``agents`` agents for ``traffic`` Erlangs of calls lasting
    ``aht`` seconds whose callers wait ``patience`` seconds on average."""
    if agents < 1:
        return Queueing(agents, 1.0, 1.0, 0.0)
    mu = 1.0 / float(aht)
    rate = float(traffic) * mu
    theta = 1.0 / float(patience)
    try:
        low, seeing = _arrivals_seeing(agents, rate, mu, theta)
    except _Saturated:
        # Callers pile up faster than they leave: all wait, practically none within the
        # target, and all the agents cannot answer leave.
        return Queueing(agents, 1.0, max(0.0, 1.0 - agents * mu / rate), 0.0)
    # Answered eventually with j ahead: every one of the j + 1 departures ahead of the
    # caller's own answer comes before its patience (rates n·μ + m·θ against θ).
    abandon = 0.0
    kept = 1.0
    for j, share in enumerate(seeing):
        kept *= (agents * mu + j * theta) / (agents * mu + (j + 1) * theta)
        abandon += share * (1.0 - kept)
    within = _answered_within(agents, mu, theta, seeing, float(target_seconds))
    return Queueing(agents, 1.0 - low, abandon, low + within)


def agents_needed(
    traffic: Decimal,
    aht: Decimal,
    patience: Decimal,
    target_level: Decimal,
    target_seconds: Decimal,
) -> StaffingA:
    """The fewest agents whose Erlang A service level (answered within the target over
    offered) reaches ``target_level``: the level grows with the agents, so a doubling then a
    bisection find them in a few evaluations."""
    if traffic <= 0:
        zero = Decimal(0)
        return StaffingA(zero, 0, Decimal(1), zero, zero, zero, patience)
    if traffic >= MAX_AGENTS:
        raise ValueError(f"more than {MAX_AGENTS} agents: check the volume and handling time")

    def evaluate(agents: int) -> Queueing:
        return queueing(agents, traffic, aht, patience, target_seconds)

    def enough(figures: Queueing) -> bool:
        return round_ratio(Decimal(figures.service_level)) >= target_level

    low, high = 0, 1
    best = evaluate(high)
    while not enough(best):
        if high >= MAX_AGENTS:
            raise ValueError(f"more than {MAX_AGENTS} agents: check the volume and handling time")
        low, high = high, min(2 * high, MAX_AGENTS)
        best = evaluate(high)
    while high - low > 1:
        middle = (low + high) // 2
        figures = evaluate(middle)
        if enough(figures):
            high, best = middle, figures
        else:
            low = middle
    answered = traffic * (1 - Decimal(best.probability_of_abandon))
    return StaffingA(
        traffic_erlangs=round_ratio(traffic),
        agents=best.agents,
        service_level=round_ratio(Decimal(best.service_level)),
        probability_of_waiting=round_ratio(Decimal(best.probability_of_waiting)),
        probability_of_abandon=round_ratio(Decimal(best.probability_of_abandon)),
        occupancy=round_ratio(min(answered / best.agents, Decimal(1))),
        patience_seconds=patience,
    )


def patience_estimate(total_wait_seconds: Decimal, abandons: int) -> Decimal | None:
    """Mean patience from history: every caller's waiting time over the abandons (None
    without an abandon: nothing says callers ever give up, Erlang C applies)."""
    if abandons <= 0:
        return None
    return total_wait_seconds / abandons
