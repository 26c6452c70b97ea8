"""Erlang A against what is known of it: Erlang C when callers never give up, the infinite-
server queue when patience equals handling time, and its own limits."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from graam_pbx.stats import erlang, erlang_a

AHT = Decimal(180)


def test_callers_who_never_give_up_are_erlang_c() -> None:
    traffic = erlang.traffic_erlangs(100, 1800, AHT)  # 10 Erlangs
    figures = erlang_a.queueing(14, traffic, AHT, Decimal(10**9), Decimal(20))
    assert figures.probability_of_waiting == pytest.approx(float(erlang.erlang_c(14, traffic)))
    assert figures.probability_of_abandon == pytest.approx(0, abs=1e-6)
    assert figures.service_level == pytest.approx(
        float(erlang.service_level(14, traffic, AHT, Decimal(20))), abs=1e-6
    )
    plan = erlang_a.agents_needed(traffic, AHT, Decimal(10**9), Decimal("0.8"), Decimal(20))
    assert plan.agents == 14  # Erlang C's published answer
    assert plan.service_level == Decimal("0.8884")


def _poisson(traffic: float, k: int) -> float:
    return math.exp(-traffic + k * math.log(traffic) - math.lgamma(k + 1))


@pytest.mark.parametrize(("agents", "traffic"), [(3, 2.5), (10, 10.0), (20, 25.0)])
def test_patience_equal_to_handling_time_is_the_infinite_server_queue(
    agents: int, traffic: float
) -> None:
    # θ = μ: every caller leaves at the same rate, waiting or served: Poisson(A) in the system.
    figures = erlang_a.queueing(agents, Decimal(traffic), AHT, AHT, Decimal(20))
    busy = 1 - math.fsum(_poisson(traffic, k) for k in range(agents))
    assert figures.probability_of_waiting == pytest.approx(busy, rel=1e-9)
    # Abandons per second θ·E[waiting] over arrivals per second λ (θ = μ, λ/μ = A).
    waiting = math.fsum((k - agents) * _poisson(traffic, k) for k in range(agents, 400))
    assert figures.probability_of_abandon == pytest.approx(waiting / traffic, rel=1e-9)


def test_a_long_enough_target_answers_everyone_who_does_not_give_up() -> None:
    figures = erlang_a.queueing(9, Decimal(10), AHT, Decimal(60), Decimal(3600))
    assert figures.service_level == pytest.approx(1 - figures.probability_of_abandon, abs=1e-9)


def test_the_level_grows_with_the_agents_and_the_target() -> None:
    levels = [
        erlang_a.queueing(n, Decimal(10), AHT, Decimal(60), Decimal(20)).service_level
        for n in range(1, 20)
    ]
    assert levels == sorted(levels)
    short = erlang_a.queueing(11, Decimal(10), AHT, Decimal(60), Decimal(5)).service_level
    assert short < levels[10]


def test_impatient_callers_need_no_more_agents_than_erlang_c_says() -> None:
    traffic = erlang.traffic_erlangs(360, 3600, Decimal(240))
    c = erlang.agents_needed(traffic, Decimal(240), Decimal("0.8"), Decimal(20))
    a = erlang_a.agents_needed(traffic, Decimal(240), Decimal(60), Decimal("0.8"), Decimal(20))
    assert a.agents <= c.agents
    assert a.service_level >= Decimal("0.8")
    fewer = erlang_a.queueing(a.agents - 1, traffic, Decimal(240), Decimal(60), Decimal(20))
    assert erlang.round_ratio(Decimal(fewer.service_level)) < Decimal("0.8")
    assert Decimal(0) < a.probability_of_abandon < Decimal(1)


def test_an_overloaded_queue_is_stable_with_abandons() -> None:
    # Twice the traffic the agents can take: Erlang C has no answer, Erlang A has one.
    figures = erlang_a.queueing(5, Decimal(10), AHT, Decimal(30), Decimal(20))
    # The agents answer at most half the callers: the other half at least give up.
    assert 0.5 <= figures.probability_of_abandon < 1
    assert 0.5 < figures.probability_of_waiting < 1
    # Callers who never give up, too few agents: the queue grows without end.
    endless = erlang_a.queueing(5, Decimal(10), AHT, Decimal(10**9), Decimal(20))
    assert (endless.probability_of_waiting, endless.service_level) == (1.0, 0.0)
    assert endless.probability_of_abandon == pytest.approx(0.5)


def test_no_traffic_needs_no_agent_and_patience_needs_abandons() -> None:
    plan = erlang_a.agents_needed(Decimal(0), AHT, Decimal(60), Decimal("0.8"), Decimal(20))
    assert plan.agents == 0
    assert erlang_a.patience_estimate(Decimal(600), 0) is None
    assert erlang_a.patience_estimate(Decimal(600), 4) == 150
