"""The KPIs API on facts written straight into real Postgres: SQL buckets equal the pure ones.

The queue calls and state intervals are those of tests/golden/stats, put in one tenant (its
time zone Europe/Paris), read back through /api/v1/stats/... by each role and by another tenant.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents.models import AgentStateInterval
from graam_pbx.cdr.models import Cdr
from graam_pbx.queue_calls.models import QueueCall
from graam_pbx.stats import erlang_a
from graam_pbx.stats.erlang import agents_needed, traffic_erlangs
from graam_pbx.stats.kpi import (
    Interval,
    QueueCallFact,
    Thresholds,
    bucket_start,
    queue_kpis,
    sum_queue_calls,
)
from tests.factories import TenantWorld, make_world, unique

Sessions = async_sessionmaker[AsyncSession]
GOLDEN = Path(__file__).parents[1] / "golden" / "stats"
PARIS = ZoneInfo("Europe/Paris")
DAY_25H = {"since": "2026-10-25T00:00:00", "until": "2026-10-26T00:00:00"}


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


async def _queue(client: httpx.AsyncClient, world: TenantWorld, **extra: Any) -> int:
    made = await client.post(
        "/api/v1/queues",
        headers=world.headers("admin"),
        json={"name": unique("q"), **extra},
    )
    assert made.status_code == 201, made.text
    queue_id: int = made.json()["id"]
    return queue_id


async def _insert_calls(
    sessions: Sessions, world: TenantWorld, queue_id: int, calls: list[dict[str, Any]]
) -> list[QueueCallFact]:
    facts = []
    async with sessions() as session, session.begin():
        for number, call in enumerate(calls):
            entered = _at(call["entered_at"])
            fact = QueueCallFact(
                queue_id=queue_id,
                entered_at=entered,
                outcome=call["outcome"],
                wait_seconds=Decimal(call["wait_seconds"]),
                agent_id=world.agent.user_id if call.get("agent_id") else None,
                talk_seconds=Decimal(call.get("talk_seconds", "0")),
                hold_seconds=Decimal(call.get("hold_seconds", "0")),
                wrapup_seconds=Decimal(call.get("wrapup_seconds", "0")),
            )
            facts.append(fact)
            uniqueid = unique("u")
            session.add(
                QueueCall(
                    tenant_id=world.tenant_id,
                    queue_id=queue_id,
                    queue_name="golden",
                    entry=1,
                    linkedid=uniqueid,
                    caller_uniqueid=uniqueid,
                    caller_number=f"+3314268{number:04d}",
                    entered_at=entered,
                    agent_id=fact.agent_id,
                    ended_at=entered + timedelta(minutes=1),
                    wait_seconds=fact.wait_seconds,
                    talk_seconds=fact.talk_seconds,
                    hold_seconds=fact.hold_seconds,
                    wrapup_seconds=fact.wrapup_seconds,
                    outcome=fact.outcome,
                    source="ami",
                )
            )
    return facts


@pytest.fixture(scope="module")
async def tenant_a(client: httpx.AsyncClient, sessions: Sessions) -> dict[str, Any]:
    world = await make_world(client, sessions)
    queue_id = await _queue(client, world, service_level_seconds=20, short_abandon_seconds=5)
    golden = json.loads((GOLDEN / "queue_calls_dst.json").read_text())
    facts = await _insert_calls(sessions, world, queue_id, golden["calls"])
    states = json.loads((GOLDEN / "agent_states.json").read_text())
    async with sessions() as session, session.begin():
        for item in states["intervals"]:
            if item["agent_id"] != 7:
                continue
            session.add(
                AgentStateInterval(
                    tenant_id=world.tenant_id,
                    agent_id=world.agent.user_id,
                    state=item["state"],
                    pause_reason_code=item.get("pause_reason_code"),
                    started_at=_at(item["started_at"]),
                    ended_at=_at(item["ended_at"]),
                )
            )
        started = _at("2026-03-10T21:00:00+01:00")
        await session.execute(
            text("SELECT cdrs_ensure_partition(:at)"),
            {"at": started},
        )
        for n, (billable, billsec) in enumerate([(True, "42.5"), (False, "0"), (True, "7.5")]):
            session.add(
                Cdr(
                    started_at=started + timedelta(minutes=n),
                    system_name="test",
                    uniqueid=unique("cdr"),
                    sequence=n,
                    linkedid=unique("l"),
                    ended_at=started + timedelta(minutes=n + 1),
                    duration=Decimal(60),
                    billsec=Decimal(billsec),
                    disposition="ANSWERED" if billable else "NO ANSWER",
                    billable=billable,
                    tenant_id=world.tenant_id,
                    direction="outbound",
                    agent_user_id=world.agent.user_id,
                    src="201",
                    dst="+33142685300",
                    dcontext="x",
                    clid="x",
                    channel="PJSIP/x",
                    dstchannel="",
                    lastapp="Dial",
                    lastdata="",
                    accountcode=f"t{world.tenant_id}",
                    peeraccount="",
                    amaflags="DOCUMENTATION",
                    userfield="",
                    source="ami",
                )
            )
    return {"world": world, "queue_id": queue_id, "facts": facts}


def _bucket_key(row: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(row["bucket_start"]).astimezone(UTC)


@pytest.mark.parametrize("interval", ["15min", "hour", "day"])
async def test_sql_buckets_equal_the_pure_ones_on_a_25_hour_day(
    client: httpx.AsyncClient, tenant_a: dict[str, Any], interval: str
) -> None:
    world: TenantWorld = tenant_a["world"]
    answer = await client.get(
        "/api/v1/stats/queues",
        headers=world.headers("supervisor"),
        params={**DAY_25H, "interval": interval},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["timezone"] == "Europe/Paris"
    rows = body["buckets"]
    assert len(rows) == {"15min": 100, "hour": 25, "day": 1}[interval]
    expected = sum_queue_calls(
        [f for f in tenant_a["facts"] if f.entered_at.date().isoformat().startswith("2026-10")],
        interval=Interval(interval),
        zone=PARIS,
        thresholds={tenant_a["queue_id"]: Thresholds(20, 5)},
    )
    for row in rows:
        assert row["queue_id"] == tenant_a["queue_id"]
        sums = expected.get((_bucket_key(row), tenant_a["queue_id"]))
        if sums is None:
            assert row["offered"] == 0
            continue
        kpis = queue_kpis(sums)
        for name, value in vars(kpis).items():
            got = row[name]
            assert (Decimal(got) if isinstance(value, Decimal) else got) == value, (row, name)
    assert sum(row["offered"] for row in rows) == 3
    total = body["totals"][0]
    assert total["service_level_perf2"] == "0.6667"
    assert total["average_handling_time"] == "35.625"


async def test_repeated_hour_is_two_buckets(
    client: httpx.AsyncClient, tenant_a: dict[str, Any]
) -> None:
    world: TenantWorld = tenant_a["world"]
    answer = await client.get(
        "/api/v1/stats/queues",
        headers=world.headers("admin"),
        params={**DAY_25H, "interval": "hour", "queue_id": tenant_a["queue_id"]},
    )
    labels = [(r["bucket_start"], r["offered"]) for r in answer.json()["buckets"]][1:5]
    assert labels == [
        ("2026-10-25T01:00:00+02:00", 0),
        ("2026-10-25T02:00:00+02:00", 1),
        ("2026-10-25T02:00:00+01:00", 2),
        ("2026-10-25T03:00:00+01:00", 0),
    ]


async def test_month_buckets_and_csv(client: httpx.AsyncClient, tenant_a: dict[str, Any]) -> None:
    world: TenantWorld = tenant_a["world"]
    params = {"since": "2026-01-01T00:00:00", "until": "2027-01-01T00:00:00", "interval": "month"}
    answer = await client.get(
        "/api/v1/stats/queues", headers=world.headers("supervisor"), params=params
    )
    offered = {r["bucket_start"][:7]: r["offered"] for r in answer.json()["buckets"]}
    assert len(offered) == 12
    assert offered["2026-03"] == 4
    assert offered["2026-10"] == 3
    exported = await client.get(
        "/api/v1/stats/queues/export.csv", headers=world.headers("supervisor"), params=params
    )
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(lines) == 12
    assert lines[2]["bucket_start"] == "2026-03-01T00:00:00+01:00"
    assert lines[2]["offered"] == "4"


async def test_agent_figures_and_roles(client: httpx.AsyncClient, tenant_a: dict[str, Any]) -> None:
    world: TenantWorld = tenant_a["world"]
    params = {
        "since": "2026-03-10T00:00:00",
        "until": "2026-03-12T00:00:00",
        "interval": "day",
    }
    for role in ("supervisor", "agent"):
        answer = await client.get(
            "/api/v1/stats/agents", headers=world.headers(role), params=params
        )
        assert answer.status_code == 200, answer.text
        rows = answer.json()["buckets"]
        assert {r["agent_id"] for r in rows} == {world.agent.user_id}
        first = rows[0]
        assert first["bucket_start"] == "2026-03-10T00:00:00+01:00"
        assert first["seconds_by_state"]["on-call"] == "600.000"
        assert first["seconds_by_state"]["available"] == "1800.000"
        assert first["paused_seconds_by_reason"] == {"12": "300.000"}
        assert first["occupancy"] == "0.2846"
        assert first["outbound_attempts"] == 3
        assert first["outbound_answered"] == 2
        assert first["outbound_talk_seconds"] == "50.000"
        assert rows[1]["seconds_by_state"]["on-call"] == "1200.000"
    # An agent reads only its own figures, and no queue's.
    other = await client.get(
        "/api/v1/stats/agents",
        headers=world.headers("agent"),
        params={**params, "agent_id": world.supervisor.user_id},
    )
    assert other.status_code == 403
    for path in ("/api/v1/stats/queues", f"/api/v1/stats/queues/{tenant_a['queue_id']}/staffing"):
        assert (await client.get(path, headers=world.headers("agent"))).status_code == 403
    exported = await client.get(
        "/api/v1/stats/agents/export.csv", headers=world.headers("agent"), params=params
    )
    lines = list(csv.DictReader(io.StringIO(exported.text)))
    assert [line["seconds_on-call"] for line in lines] == ["600.000", "1200.000"]
    assert lines[0]["paused_seconds_12"] == "300.000"


async def test_another_tenant_sees_none_of_it(
    client: httpx.AsyncClient, sessions: Sessions, tenant_a: dict[str, Any]
) -> None:
    a: TenantWorld = tenant_a["world"]
    b = await make_world(client, sessions)
    params = {"since": "2026-01-01T00:00:00", "until": "2027-01-01T00:00:00", "interval": "month"}
    for role in ("admin", "supervisor"):
        queues = await client.get("/api/v1/stats/queues", headers=b.headers(role), params=params)
        assert queues.status_code == 200
        assert queues.json()["buckets"] == [] and queues.json()["totals"] == []
        agents = await client.get("/api/v1/stats/agents", headers=b.headers(role), params=params)
        assert {r["agent_id"] for r in agents.json()["buckets"]} <= {b.agent.user_id}
        assert agents.json()["buckets"] == []
    named = [
        ("/api/v1/stats/queues", {"queue_id": tenant_a["queue_id"]}),
        ("/api/v1/stats/queues/export.csv", {"queue_id": tenant_a["queue_id"]}),
        ("/api/v1/stats/agents", {"agent_id": a.agent.user_id}),
        ("/api/v1/stats/agents/export.csv", {"agent_id": a.agent.user_id}),
        (f"/api/v1/stats/queues/{tenant_a['queue_id']}/staffing", {"calls": 10}),
    ]
    for path, extra in named:
        answer = await client.get(path, headers=b.headers("admin"), params={**params, **extra})
        assert answer.status_code == 404, (path, answer.text)
    exported = await client.get(
        "/api/v1/stats/queues/export.csv", headers=b.headers("admin"), params=params
    )
    assert exported.text.count("\n") == 1  # the header only


async def test_staffing_vectors(client: httpx.AsyncClient, tenant_a: dict[str, Any]) -> None:
    world: TenantWorld = tenant_a["world"]
    path = f"/api/v1/stats/queues/{tenant_a['queue_id']}/staffing"
    cases = [(200, 180, 14, "0.8884"), (360, 240, 29, "0.8403")]  # 10 and 24 Erlangs, 80/20
    for calls, aht, agents, level in cases:
        answer = await client.get(
            path,
            headers=world.headers("supervisor"),
            params={"interval": "hour", "calls": calls, "aht_seconds": aht, "target_level": 0.8},
        )
        assert answer.status_code == 200, answer.text
        plan = answer.json()
        assert plan["model"] == "erlang-c"
        assert plan["target_seconds"] == 20  # the queue's own service level
        assert plan["agents"] == agents
        assert plan["service_level"] == level


async def test_staffing_from_recent_calls(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    queue_id = await _queue(client, world, service_level_seconds=30)
    current = bucket_start(datetime.now(UTC), Interval.QUARTER, PARIS)
    calls = [
        {
            "entered_at": (current - timedelta(minutes=5 + 10 * n)).isoformat(),
            "outcome": "answered",
            "wait_seconds": "4",
            "agent_id": 1,
            "talk_seconds": "150",
            "hold_seconds": "10",
            "wrapup_seconds": "20",
        }
        for n in range(6)
    ]
    await _insert_calls(sessions, world, queue_id, calls)
    answer = await client.get(
        f"/api/v1/stats/queues/{queue_id}/staffing",
        headers=world.headers("supervisor"),
        params={"target_level": 0.9},
    )
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    # 6 calls over the last 4 quarters: 1.5 a quarter, AHT 180 s: 0.3 Erlang.
    assert Decimal(plan["calls"]) == Decimal("1.5")
    assert Decimal(plan["aht_seconds"]) == 180
    assert plan["target_seconds"] == 30
    expected = agents_needed(
        traffic_erlangs(Decimal("1.5"), 900, Decimal(180)),
        Decimal(180),
        Decimal("0.9"),
        Decimal(30),
    )
    assert plan["agents"] == expected.agents
    assert Decimal(plan["traffic_erlangs"]) == Decimal("0.3")
    assert datetime.fromisoformat(plan["for_start"]) == current + timedelta(minutes=15)


async def test_staffing_with_callers_who_give_up(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    queue_id = await _queue(client, world, service_level_seconds=20)
    current = bucket_start(datetime.now(UTC), Interval.QUARTER, PARIS)
    answered = {"outcome": "answered", "agent_id": 1, "talk_seconds": "170", "wrapup_seconds": "10"}
    calls = [
        {
            "entered_at": (current - timedelta(seconds=10 + 40 * n)).isoformat(),
            **(answered if n % 3 else {"outcome": "abandoned"}),
            "wait_seconds": "30",
        }
        for n in range(18)
    ]
    await _insert_calls(sessions, world, queue_id, calls)
    path = f"/api/v1/stats/queues/{queue_id}/staffing"
    headers = world.headers("supervisor")

    async def plan_of(**params: Any) -> dict[str, Any]:
        answer = await client.get(path, headers=headers, params={"history": 1, **params})
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    # 18 callers waited 30 s each, 6 gave up: a mean patience of 90 s. 12 answered, AHT 180.
    plan = await plan_of(model="erlang-a")
    assert plan["model"] == "erlang-a"
    assert Decimal(plan["patience_seconds"]) == 90
    traffic = traffic_erlangs(Decimal(18), 900, Decimal(180))
    expected = erlang_a.agents_needed(
        traffic, Decimal(180), Decimal(90), Decimal("0.8"), Decimal(20)
    )
    assert plan["agents"] == expected.agents
    assert Decimal(plan["probability_of_abandon"]) == expected.probability_of_abandon
    assert plan["agents"] <= (await plan_of())["agents"]  # Erlang C: nobody gives up
    given = await plan_of(model="erlang-a", patience_seconds=600)
    assert Decimal(given["patience_seconds"]) == 600

    # Nobody gave up on another queue: no patience to model, Erlang C answers.
    quiet = await _queue(client, world, service_level_seconds=20)
    await _insert_calls(
        sessions,
        world,
        quiet,
        [
            {
                "entered_at": (current - timedelta(minutes=5)).isoformat(),
                **answered,
                "wait_seconds": "3",
            }
        ],
    )
    answer = await client.get(
        f"/api/v1/stats/queues/{quiet}/staffing",
        headers=headers,
        params={"history": 1, "model": "erlang-a"},
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["model"], answer.json()["patience_seconds"]) == ("erlang-c", None)


async def test_bad_input_is_422(client: httpx.AsyncClient, tenant_a: dict[str, Any]) -> None:
    world: TenantWorld = tenant_a["world"]
    headers = world.headers("admin")
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/api/v1/stats/queues", {"interval": "week"}, "query.interval"),
        ("/api/v1/stats/queues", {"since": "2026-01-02", "until": "2026-01-01"}, "query.until"),
        (
            "/api/v1/stats/queues",
            {"since": "2020-01-01T00:00:00", "until": "2026-01-01T00:00:00", "interval": "15min"},
            "query.interval",
        ),
        (
            f"/api/v1/stats/queues/{tenant_a['queue_id']}/staffing",
            {"interval": "day", "calls": 1, "aht_seconds": 1},
            "query.interval",
        ),
        (
            f"/api/v1/stats/queues/{tenant_a['queue_id']}/staffing",
            {"target_level": 1.5},
            "query.target_level",
        ),
        (
            f"/api/v1/stats/queues/{tenant_a['queue_id']}/staffing",
            {"interval": "15min", "calls": 1000000, "aht_seconds": 86400},
            "query.calls",
        ),
        ("/api/v1/stats/agents", {"since": "0001-01-01T00:00:00"}, "query.since"),
        ("/api/v1/stats/agents", {"until": "9999-12-31T23:59:59+00:00"}, "query.until"),
    ]
    for path, params, field in cases:
        answer = await client.get(path, headers=headers, params=params)
        assert answer.status_code == 422, (path, params, answer.text)
        body = answer.json()
        assert body["error_id"] == "validation-failed"
        assert field in [e["field"] for e in body["details"]["errors"]], body
    bad_queue = await client.patch(
        f"/api/v1/queues/{tenant_a['queue_id']}",
        headers=headers,
        json={"service_level_seconds": 0},
    )
    assert bad_queue.status_code == 422
    changed = await client.patch(
        f"/api/v1/queues/{tenant_a['queue_id']}", headers=headers, json={"short_abandon_seconds": 3}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["short_abandon_seconds"] == 3
    assert changed.json()["service_level_seconds"] == 20
    # Restored: the other tests read the queue with its first thresholds.
    await client.patch(
        f"/api/v1/queues/{tenant_a['queue_id']}", headers=headers, json={"short_abandon_seconds": 5}
    )


async def test_the_queue_call_export_never_hands_a_spreadsheet_a_formula(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    queue_id = await _queue(client, world, service_level_seconds=20)
    entered = datetime.now(UTC) - timedelta(hours=1)
    await _insert_calls(
        sessions,
        world,
        queue_id,
        [{"entered_at": entered.isoformat(), "outcome": "abandoned", "wait_seconds": "9"}],
    )
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE queue_calls SET caller_number = :number WHERE tenant_id = :tenant"),
            {"number": '=HYPERLINK("http://example.invalid")', "tenant": world.tenant_id},
        )
    answer = await client.get("/api/v1/queue-calls/export.csv", headers=world.headers("admin"))
    assert answer.status_code == 200, answer.text
    (row,) = list(csv.DictReader(io.StringIO(answer.text)))
    assert row["caller_number"] == '\'=HYPERLINK("http://example.invalid")'
