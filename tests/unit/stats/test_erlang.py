"""Erlang C staffing against the published vectors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from graam_pbx.stats.erlang import agents_needed, erlang_c, service_level, traffic_erlangs


def test_ten_erlangs_need_fourteen_agents() -> None:
    traffic = traffic_erlangs(100, 1800, Decimal(180))
    assert traffic == 10
    plan = agents_needed(traffic, Decimal(180), Decimal("0.8"), Decimal(20))
    assert plan.agents == 14
    assert plan.service_level == Decimal("0.8884")  # 88.8 %
    thirteen = service_level(13, traffic, Decimal(180), Decimal(20))
    assert round(thirteen, 3) == Decimal("0.796")  # 79.6 %: short of 80 %


def test_360_calls_an_hour_need_29_agents() -> None:
    traffic = traffic_erlangs(360, 3600, Decimal(240))
    plan = agents_needed(traffic, Decimal(240), Decimal("0.8"), Decimal(20))
    assert plan.agents == 29
    assert round(plan.service_level, 3) == Decimal("0.840")  # 84.0 %


def test_too_few_agents_always_wait() -> None:
    assert erlang_c(10, Decimal(10)) == 1
    assert service_level(9, Decimal(10), Decimal(180), Decimal(20)) == 0


def test_no_traffic_needs_no_agent() -> None:
    assert agents_needed(Decimal(0), Decimal(180), Decimal("0.8"), Decimal(20)).agents == 0


@pytest.mark.parametrize("traffic", [Decimal("0.5"), Decimal(3), Decimal(50), Decimal(400)])
def test_one_agent_less_misses_the_target(traffic: Decimal) -> None:
    plan = agents_needed(traffic, Decimal(200), Decimal("0.9"), Decimal(15))
    assert service_level(plan.agents, traffic, Decimal(200), Decimal(15)) >= Decimal("0.9")
    assert service_level(plan.agents - 1, traffic, Decimal(200), Decimal(15)) < Decimal("0.9")


def test_an_absurd_load_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="more than 10000 agents"):
        agents_needed(Decimal(96_000_000), Decimal(86400), Decimal("0.8"), Decimal(20))
