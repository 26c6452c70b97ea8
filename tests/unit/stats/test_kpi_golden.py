"""KPI formulas on synthetic event logs, against values computed by hand (tests/golden/stats)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from graam_pbx.stats.kpi import (
    Interval,
    OutboundSums,
    QueueCallFact,
    QueueSums,
    StateInterval,
    Thresholds,
    agent_kpis,
    buckets,
    queue_kpis,
    sum_agent_states,
    sum_queue_calls,
)

GOLDEN = Path(__file__).parents[2] / "golden" / "stats"
PARIS = ZoneInfo("Europe/Paris")


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GOLDEN / name).read_text())
    return data


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _calls(data: dict[str, Any]) -> list[QueueCallFact]:
    return [
        QueueCallFact(
            queue_id=c["queue_id"],
            entered_at=_at(c["entered_at"]),
            outcome=c["outcome"],
            wait_seconds=Decimal(c["wait_seconds"]),
            agent_id=c.get("agent_id"),
            talk_seconds=Decimal(c.get("talk_seconds", "0")),
            hold_seconds=Decimal(c.get("hold_seconds", "0")),
            wrapup_seconds=Decimal(c.get("wrapup_seconds", "0")),
        )
        for c in data["calls"]
    ]


def _thresholds(data: dict[str, Any]) -> dict[int, Thresholds]:
    return {int(k): Thresholds(**v) for k, v in data["thresholds"].items()}


def _plain(value: Any) -> Any:
    return None if value is None else (str(value) if isinstance(value, Decimal) else value)


def test_queue_kpis_of_an_ordinary_day() -> None:
    data = _load("queue_calls_day.json")
    sums = sum_queue_calls(
        _calls(data),
        interval=Interval(data["interval"]),
        zone=ZoneInfo(data["timezone"]),
        thresholds=_thresholds(data),
    )
    assert len(sums) == len(data["expected"])
    for expected in data["expected"]:
        kpis = queue_kpis(sums[(_at(expected["bucket"]), expected["queue_id"])])
        got = {name: _plain(getattr(kpis, name)) for name in expected["kpis"]}
        assert got == expected["kpis"], expected["why"]


@pytest.mark.parametrize("interval", ["hour", "15min", "day", "month"])
def test_queue_buckets_across_midnight_and_clock_changes(interval: str) -> None:
    data = _load("queue_calls_dst.json")
    sums = sum_queue_calls(_calls(data), interval=Interval(interval), zone=PARIS)
    got = sorted((start, s.offered, s.answered) for (start, _), s in sums.items())
    expected = sorted(
        (_at(e["bucket"]), e["offered"], e["answered"]) for e in data["expected"][interval]
    )
    assert got == expected


def test_queue_kpis_of_the_25_hour_day() -> None:
    data = _load("queue_calls_dst.json")
    sums = sum_queue_calls(_calls(data), interval=Interval.DAY, zone=PARIS)
    expected = data["day_of_2026_10_25"]
    kpis = queue_kpis(sums[(_at("2026-10-25T00:00:00+02:00"), 2)])
    got = {name: _plain(getattr(kpis, name)) for name in expected if name != "why"}
    assert got == {k: v for k, v in expected.items() if k != "why"}, expected["why"]


def test_agent_states_split_at_bucket_bounds() -> None:
    data = _load("agent_states.json")
    intervals = [
        StateInterval(
            agent_id=i["agent_id"],
            state=i["state"],
            started_at=_at(i["started_at"]),
            ended_at=_at(i["ended_at"]) if i["ended_at"] else None,
            pause_reason_code=i.get("pause_reason_code"),
        )
        for i in data["intervals"]
    ]
    for case in data["cases"]:
        since, until = _at(case["since"]), _at(case["until"])
        interval = Interval(case["interval"])
        if "bucket_count" in case:
            assert len(buckets(since, until, interval, PARIS)) == case["bucket_count"]
        sums = sum_agent_states(
            intervals, since=since, until=until, now=_at(data["now"]), interval=interval, zone=PARIS
        )
        assert len(sums) == len(case["expected"]), case["why"]
        for expected in case["expected"]:
            states = sums[(_at(expected["bucket"]), expected["agent_id"])]
            assert states.seconds == {k: Decimal(v) for k, v in expected["seconds"].items()}
            assert states.paused_by_reason == {
                k: Decimal(v) for k, v in expected["paused_by_reason"].items()
            }
            occupancy = agent_kpis(QueueSums(), states, OutboundSums()).occupancy
            assert _plain(occupancy) == expected["occupancy"], case["why"]


@pytest.mark.parametrize(
    ("since", "until", "interval", "count", "hours"),
    [
        ("2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", "day", 1, 23),
        ("2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00", "day", 1, 25),
        ("2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", "hour", 23, 23),
        ("2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00", "hour", 25, 25),
        ("2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", "15min", 92, 23),
        ("2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00", "month", 1, 743),
        ("2026-10-01T00:00:00+02:00", "2026-11-01T00:00:00+01:00", "month", 1, 745),
    ],
)
def test_buckets_follow_the_wall_clock(
    since: str, until: str, interval: str, count: int, hours: int
) -> None:
    starts = buckets(_at(since), _at(until), Interval(interval), PARIS)
    assert len(starts) == count
    assert starts[0] == _at(since)
    assert (_at(until) - starts[0]).total_seconds() == hours * 3600


def test_hourly_labels_of_the_repeated_hour() -> None:
    starts = buckets(
        _at("2026-10-25T01:00:00+02:00"), _at("2026-10-25T04:00:00+01:00"), Interval.HOUR, PARIS
    )
    assert [s.astimezone(PARIS).isoformat() for s in starts] == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_no_call_is_no_service_level() -> None:
    kpis = queue_kpis(QueueSums())
    assert kpis.service_level_answered is None
    assert kpis.average_speed_of_answer is None
    assert kpis.longest_wait == Decimal("0.000")


def test_unknown_outcome_is_refused() -> None:
    fact = QueueCallFact(1, datetime(2026, 1, 1, tzinfo=UTC), "lost", Decimal(1))
    with pytest.raises(ValueError, match="unknown outcome"):
        QueueSums().add(fact, Thresholds())


def test_kpis_are_never_floats() -> None:
    data = _load("queue_calls_day.json")
    sums = sum_queue_calls(_calls(data), interval=Interval.DAY, zone=PARIS)
    for value in vars(queue_kpis(next(iter(sums.values())))).values():
        assert not isinstance(value, float)
