"""Erlang C staffing: how many agents a queue needs for a service-level target.

A small function of our own, in ``Decimal``: the PyPI packages found were unmaintained or
float-only. Erlang C assumes callers never abandon (it overstaffs a queue whose callers
give up); ``erlang_a`` models their patience.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext

from graam_pbx.stats.kpi import round_ratio

# Beyond this many agents a target is not worth computing (and the loop must end).
MAX_AGENTS = 10_000


def traffic_erlangs(calls: Decimal | int, period_seconds: Decimal | int, aht: Decimal) -> Decimal:
    """Offered traffic A = calls x AHT / period length (Erlangs)."""
    return Decimal(calls) * aht / Decimal(period_seconds)


def _next_blocking(agents: int, traffic: Decimal, blocking: Decimal) -> Decimal:
    # Erlang B's recursion B(0) = 1, B(n) = A*B(n-1) / (n + A*B(n-1)): it never overflows.
    return traffic * blocking / (agents + traffic * blocking)


def _waiting(agents: int, traffic: Decimal, blocking: Decimal) -> Decimal:
    # Erlang C from Erlang B: C = n*B / (n - A*(1 - B)).
    return agents * blocking / (agents - traffic * (1 - blocking))


def _level(
    agents: int, traffic: Decimal, waits: Decimal, aht: Decimal, target_seconds: Decimal
) -> Decimal:
    return 1 - waits * (-(agents - traffic) * target_seconds / aht).exp()


def erlang_c(agents: int, traffic: Decimal) -> Decimal:
    """Probability that a caller waits (Erlang C), for ``agents`` > ``traffic``; else 1.

    Through Erlang B's recursion B(0) = 1, B(n) = A*B(n-1) / (n + A*B(n-1)), which never
    overflows, then C = n*B / (n - A*(1 - B)).
    """
    if agents <= traffic:
        return Decimal(1)
    with localcontext() as ctx:
        ctx.prec = 40
        b = Decimal(1)
        for n in range(1, agents + 1):
            b = _next_blocking(n, traffic, b)
        return _waiting(agents, traffic, b)


def service_level(agents: int, traffic: Decimal, aht: Decimal, target_seconds: Decimal) -> Decimal:
    """Fraction of callers answered within ``target_seconds``: 1 - C*e^(-(n-A)*T/AHT)."""
    if agents <= traffic:
        return Decimal(0)
    with localcontext() as ctx:
        ctx.prec = 40
        return _level(agents, traffic, erlang_c(agents, traffic), aht, target_seconds)


@dataclass(frozen=True)
class Staffing:
    traffic_erlangs: Decimal
    agents: int
    service_level: Decimal  # with that many agents, rounded by round_ratio
    probability_of_waiting: Decimal
    occupancy: Decimal


def agents_needed(
    traffic: Decimal, aht: Decimal, target_level: Decimal, target_seconds: Decimal
) -> Staffing:
    """The fewest agents whose Erlang C service level reaches ``target_level``.

    Erlang B's recursion is carried from one candidate to the next: the search costs as
    many steps as agents, never their square.
    """
    if traffic <= 0:
        return Staffing(Decimal(0), 0, Decimal(1), Decimal(0), Decimal(0))
    if traffic >= MAX_AGENTS:
        raise ValueError(f"more than {MAX_AGENTS} agents: check the volume and handling time")
    with localcontext() as ctx:
        ctx.prec = 40
        blocking = Decimal(1)
        agents = 0
        while True:
            agents += 1
            blocking = _next_blocking(agents, traffic, blocking)
            if agents <= traffic:
                continue
            waits = _waiting(agents, traffic, blocking)
            level = _level(agents, traffic, waits, aht, target_seconds)
            if level >= target_level:
                break
            if agents >= MAX_AGENTS:
                raise ValueError(
                    f"more than {MAX_AGENTS} agents: check the volume and handling time"
                )
    return Staffing(
        traffic_erlangs=round_ratio(traffic),
        agents=agents,
        service_level=round_ratio(level),
        probability_of_waiting=round_ratio(waits),
        occupancy=round_ratio(traffic / agents),
    )
