"""The call records API over CDRs that went through the real pipeline (bus → worker → Postgres)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami.protocol import Message
from graam_pbx.fields import MAX_ID
from tests.cdr_events import cdr_event, wait_for_rows
from tests.conftest import RunningApp
from tests.factories import TenantWorld, fields_of, make_world

Sessions = async_sessionmaker[AsyncSession]
T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)


async def ingest(running_app: RunningApp, database_url: str, events: list[Message]) -> None:
    """Publish events on the app's bus, as its AMI client does, and wait for their rows."""
    ids = [event["UniqueID"] for event in events]
    for event in events:
        running_app.runtime.bus.publish(event)
    await wait_for_rows(database_url, len(set(ids)), "uniqueid = ANY($1::text[])", ids)


async def pages(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[dict]:
    """Every item of a list, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/v1/cdrs", headers=headers, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items


@pytest.fixture(scope="module")
async def calls(
    running_app: RunningApp, database_url: str, client: httpx.AsyncClient, sessions: Sessions
) -> tuple[TenantWorld, TenantWorld]:
    """Two tenants; the first has 8 legs on two days, the second 1."""
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    agent = world.agent.user_id
    t = world.tenant_id
    events = [
        cdr_event(t, T0, talk=61.25, did="+33100000001", queue_id=5, agent_id=agent),
        cdr_event(t, T0 + timedelta(minutes=1), talk=1.9, did="+33100000001"),
        cdr_event(t, T0 + timedelta(minutes=2), talk=None, did="+33100000002"),
        cdr_event(t, T0 + timedelta(minutes=3), talk=30, direction="outbound", did=None,
                  src="201", dst="+442071234567", agent_id=agent),
        cdr_event(t, T0 + timedelta(minutes=4), talk=5, direction="internal", did=None,
                  src="201", dst="202", disposition="ANSWERED"),
        cdr_event(t, T0 + timedelta(minutes=5), talk=None, disposition="BUSY"),
        # 23:30 UTC is the next day in Paris (the tenant's zone)
        cdr_event(t, datetime(2026, 3, 10, 23, 30, tzinfo=UTC), talk=12, linkedid="call-x"),
        cdr_event(t, datetime(2026, 3, 10, 23, 30, 1, tzinfo=UTC), talk=11, linkedid="call-x",
                  src="=HYPERLINK(1)"),
        cdr_event(other.tenant_id, T0, talk=99),
    ]  # fmt: skip
    await ingest(running_app, database_url, events)
    return world, other


async def test_a_tenant_sees_its_legs_oldest_first_and_never_another_tenants(
    client: httpx.AsyncClient, calls: tuple[TenantWorld, TenantWorld]
) -> None:
    world, other = calls

    items = await pages(client, world.admin.headers, limit=3)
    theirs = await pages(client, other.supervisor.headers)
    as_operator = await pages(client, world.operator_headers)

    assert len(items) == 8
    starts = [item["started_at"] for item in items]
    assert starts == sorted(starts)
    assert [item["billsec"] for item in items[:3]] == ["61.250000", "1.900000", "0.000000"]
    assert [item["billed_seconds"] for item in items[:3]] == [62, 2, 0]
    assert items[2]["disposition"] == "no-answer"
    assert items[2]["answered_at"] is None
    assert [item["billsec"] for item in theirs] == ["99.000000"]
    assert as_operator == items


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"direction": "outbound"}, ["30.000000"]),
        ({"from": "201"}, ["30.000000", "5.000000"]),
        ({"to": "+442071234567"}, ["30.000000"]),
        ({"did": "+33100000001"}, ["61.250000", "1.900000"]),
        ({"queue_id": 5}, ["61.250000"]),
        ({"disposition": "busy"}, ["0.000000"]),
        ({"disposition": "answered", "min_billsec": "11"}, ["61.250000", "30.000000", "12.000000",
          "11.000000"]),
        ({"min_duration": "32"}, ["61.250000", "30.000000"]),
        ({"since": "2026-03-10T08:03:00Z", "until": "2026-03-10T08:05:00+00:00"}, ["30.000000",
          "5.000000"]),
        ({"linkedid": "call-x"}, ["12.000000", "11.000000"]),
    ],
)  # fmt: skip
async def test_filters(
    client: httpx.AsyncClient,
    calls: tuple[TenantWorld, TenantWorld],
    params: dict[str, str],
    expected: list[str],
) -> None:
    world, _ = calls

    items = await pages(client, world.supervisor.headers, **params)

    assert [item["billsec"] for item in items] == expected


async def test_an_agent_sees_only_the_calls_it_took(
    client: httpx.AsyncClient, calls: tuple[TenantWorld, TenantWorld]
) -> None:
    world, _ = calls

    own = await pages(client, world.agent.headers)
    asking_for_others = await pages(client, world.agent.headers, agent_id=world.admin.user_id)

    assert [item["billsec"] for item in own] == ["61.250000", "30.000000"]
    assert {item["agent_id"] for item in own} == {world.agent.user_id}
    assert asking_for_others == []


def forwarded(event: Message, user_id: int) -> Message:
    """``event`` with the user who forwarded the leg (cdr_manager.conf's GraamForwardedFrom)."""
    return Message([*event.fields, ("GraamForwardedFrom", str(user_id))])


async def test_a_leg_a_user_forwarded_names_the_user_and_the_filter_finds_it(
    running_app: RunningApp, database_url: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    user = world.agent.user_id
    start = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    # The caller's leg, then the leg the agent's forwarding rule sent to a colleague's
    # extension, and in another tenant a leg forwarded by a user of its own.
    events = [
        cdr_event(world.tenant_id, start, talk=20, linkedid="fwd-call"),
        forwarded(
            cdr_event(world.tenant_id, start + timedelta(seconds=1), talk=19,
                      direction="internal", did=None, src="+33612345678", dst="202",
                      linkedid="fwd-call"),
            user,
        ),
        forwarded(cdr_event(other.tenant_id, start, talk=3), other.agent.user_id),
    ]  # fmt: skip
    await ingest(running_app, database_url, events)

    every = await pages(client, world.admin.headers)
    by_user = await pages(client, world.supervisor.headers, forwarded_from=user)
    by_another = await pages(client, world.admin.headers, forwarded_from=world.admin.user_id)
    by_foreign_user = await pages(client, world.admin.headers, forwarded_from=other.agent.user_id)
    across = await pages(client, world.operator.headers, forwarded_from=other.agent.user_id)
    export = await client.get(
        "/api/v1/cdrs/export.csv", headers=world.admin.headers, params={"linkedid": "fwd-call"}
    )
    bad = [
        await client.get("/api/v1/cdrs", headers=world.admin.headers, params={"forwarded_from": v})
        for v in ("0", "ana", str(MAX_ID + 1))
    ]

    assert [(item["billsec"], item["forwarded_from"]) for item in every] == [
        ("20.000000", None),
        ("19.000000", user),
    ]
    assert [item["uniqueid"] for item in by_user] == [events[1]["UniqueID"]]
    assert by_user[0]["to_number"] == "202"
    assert by_another == []
    assert by_foreign_user == []  # another tenant's user: never another tenant's legs
    assert [(item["tenant_id"], item["forwarded_from"]) for item in across] == [
        (other.tenant_id, other.agent.user_id)
    ]
    assert export.status_code == 200, export.text
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert list(rows[0])[-1] == "forwarded_from"
    assert [row["forwarded_from"] for row in rows] == ["", str(user)]
    for response in bad:
        assert response.status_code == 422, response.text
        assert fields_of(response) == {"query.forwarded_from"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2026-03-10T08:00:00"}, "query.since"),
        ({"since": "2026-03-10T08:00:00Z", "until": "2026-03-10T07:00:00Z"}, "query.until"),
        ({"cursor": "bm90LWEtY3Vyc29y"}, "query.cursor"),
        ({"cursor": "%%%"}, "query.cursor"),
        ({"direction": "sideways"}, "query.direction"),
        ({"min_billsec": "-1"}, "query.min_billsec"),
        ({"limit": "0"}, "query.limit"),
    ],
)
async def test_bad_queries_are_422_naming_the_field(
    client: httpx.AsyncClient,
    calls: tuple[TenantWorld, TenantWorld],
    params: dict[str, str],
    field: str,
) -> None:
    world, _ = calls

    response = await client.get("/api/v1/cdrs", headers=world.admin.headers, params=params)

    assert response.status_code == 422, response.text
    assert field in {error["field"] for error in response.json()["details"]["errors"]}


async def test_no_credentials_no_records(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/cdrs", "/api/v1/cdrs/export.csv", "/api/v1/cdrs/summary"):
        assert (await client.get(path)).status_code == 401


async def test_export_streams_every_matching_leg_as_csv(
    client: httpx.AsyncClient, calls: tuple[TenantWorld, TenantWorld]
) -> None:
    world, _ = calls

    async with client.stream(
        "GET", "/api/v1/cdrs/export.csv", headers=world.admin.headers, params={"from": "201"}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        text = "".join([chunk async for chunk in response.aiter_text()])
    everything = (await client.get("/api/v1/cdrs/export.csv", headers=world.admin.headers)).text

    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["from_number"], r["billsec"], r["direction"]) for r in rows] == [
        ("201", "30.000000", "outbound"),
        ("201", "5.000000", "internal"),
    ]
    all_rows = list(csv.DictReader(io.StringIO(everything)))
    assert len(all_rows) == 8
    # What a caller sends must not become a spreadsheet formula; numbers stay numbers.
    assert all_rows[-1]["from_number"] == "'=HYPERLINK(1)"
    assert all_rows[0]["from_number"] == "+33612345678"


async def test_export_of_more_than_one_chunk(
    running_app: RunningApp, database_url: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    start = datetime(2026, 4, 1, tzinfo=UTC)
    events = [
        cdr_event(world.tenant_id, start + timedelta(seconds=i), talk=1) for i in range(12_001)
    ]
    await ingest(running_app, database_url, events)

    response = await client.get("/api/v1/cdrs/export.csv", headers=world.admin.headers)

    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 12_001
    assert len({row["id"] for row in rows}) == 12_001
    assert [row["started_at"] for row in rows] == sorted(row["started_at"] for row in rows)


async def test_summary_by_day_in_the_tenants_zone_and_direction(
    client: httpx.AsyncClient, calls: tuple[TenantWorld, TenantWorld]
) -> None:
    world, _ = calls

    response = await client.get(
        "/api/v1/cdrs/summary",
        headers=world.supervisor.headers,
        params={"since": "2026-03-01T00:00:00Z", "until": "2026-03-31T00:00:00Z"},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["timezone"] == "Europe/Paris"
    summary = [
        (r["day"], r["direction"], r["legs"], r["calls"], r["answered"], r["total_billsec"],
         r["average_billsec"])
        for r in body["items"]
    ]  # fmt: skip
    assert summary == [
        ("2026-03-10", "inbound", 4, 4, 2, "63.150000", "31.575000"),
        ("2026-03-10", "internal", 1, 1, 1, "5.000000", "5.000000"),
        ("2026-03-10", "outbound", 1, 1, 1, "30.000000", "30.000000"),
        ("2026-03-11", "inbound", 2, 1, 2, "23.000000", "11.500000"),
    ]
    assert sum(Decimal(r[5]) for r in summary) == Decimal("121.15")


async def test_summary_ranges_are_bounded(
    client: httpx.AsyncClient, calls: tuple[TenantWorld, TenantWorld]
) -> None:
    world, _ = calls

    response = await client.get(
        "/api/v1/cdrs/summary",
        headers=world.admin.headers,
        params={"since": "2020-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    )

    assert response.status_code == 422


MARCH_10 = {"since": "2026-03-10T00:00:00Z", "until": "2026-03-12T00:00:00Z"}


@pytest.fixture(scope="module")
async def unattributed(running_app: RunningApp, database_url: str) -> Message:
    """A leg Asterisk named no tenant for (a call to a number nobody holds)."""
    event = cdr_event(None, T0 + timedelta(seconds=30), talk=7, did="+33100000099")
    await ingest(running_app, database_url, [event])
    return event


async def test_an_operator_naming_no_tenant_reads_every_tenants_legs(
    client: httpx.AsyncClient,
    calls: tuple[TenantWorld, TenantWorld],
    unattributed: Message,
) -> None:
    world, other = calls
    operator = world.operator.headers  # no X-Graam-Tenant

    everything = await pages(client, operator, limit=3, **MARCH_10)
    one_tenant = await pages(client, operator, tenant_id=other.tenant_id, **MARCH_10)
    as_admin = await pages(client, world.admin.headers)
    filtered_to_world = await pages(client, operator, tenant_id=world.tenant_id, **MARCH_10)

    assert [(item["tenant_id"], item["billsec"]) for item in everything] == [
        # Two legs start at T0: the keyset (start, id) orders them and pages between them.
        (world.tenant_id, "61.250000"),
        (other.tenant_id, "99.000000"),
        (None, "7.000000"),
        (world.tenant_id, "1.900000"),
        (world.tenant_id, "0.000000"),
        (world.tenant_id, "30.000000"),
        (world.tenant_id, "5.000000"),
        (world.tenant_id, "0.000000"),
        (world.tenant_id, "12.000000"),
        (world.tenant_id, "11.000000"),
    ]
    assert everything[2]["uniqueid"] == unattributed["UniqueID"]
    assert [(item["tenant_id"], item["billsec"]) for item in one_tenant] == [
        (other.tenant_id, "99.000000")
    ]
    assert {item["tenant_id"] for item in as_admin} == {world.tenant_id}
    assert filtered_to_world == as_admin


async def test_an_operator_exports_every_tenants_legs_with_their_tenant(
    client: httpx.AsyncClient,
    calls: tuple[TenantWorld, TenantWorld],
    unattributed: Message,
) -> None:
    world, other = calls

    everything = await client.get(
        "/api/v1/cdrs/export.csv", headers=world.operator.headers, params=MARCH_10
    )
    filtered = await client.get(
        "/api/v1/cdrs/export.csv",
        headers=world.operator.headers,
        params={**MARCH_10, "tenant_id": other.tenant_id},
    )

    assert everything.status_code == 200, everything.text
    rows = list(csv.DictReader(io.StringIO(everything.text)))
    tenants = [row["tenant_id"] for row in rows]
    assert tenants.count(str(world.tenant_id)) == 8
    assert tenants.count(str(other.tenant_id)) == 1
    assert tenants.count("") == 1
    assert [row["uniqueid"] for row in rows if not row["tenant_id"]] == [unattributed["UniqueID"]]
    filtered_rows = list(csv.DictReader(io.StringIO(filtered.text)))
    assert [(r["tenant_id"], r["billsec"]) for r in filtered_rows] == [
        (str(other.tenant_id), "99.000000")
    ]


async def test_an_operators_summary_across_tenants_is_by_utc_day(
    client: httpx.AsyncClient,
    calls: tuple[TenantWorld, TenantWorld],
    unattributed: Message,
) -> None:
    world, _ = calls
    summary_range = {"since": "2026-03-01T00:00:00Z", "until": "2026-03-31T00:00:00Z"}

    across = await client.get(
        "/api/v1/cdrs/summary", headers=world.operator.headers, params=summary_range
    )
    one = await client.get(
        "/api/v1/cdrs/summary",
        headers=world.operator.headers,
        params={**summary_range, "tenant_id": world.tenant_id},
    )
    as_supervisor = await client.get(
        "/api/v1/cdrs/summary", headers=world.supervisor.headers, params=summary_range
    )

    assert across.status_code == 200, across.text
    body = across.json()
    assert (body["tenant_id"], body["timezone"]) == (None, "UTC")
    # 23:30 UTC stays on the 10th in UTC (it is the 11th in the tenant's Paris).
    assert [
        (r["day"], r["direction"], r["legs"], r["calls"], r["answered"], r["total_billsec"],
         r["average_billsec"])
        for r in body["items"]
    ] == [
        ("2026-03-10", "inbound", 8, 7, 6, "192.150000", "32.025000"),
        ("2026-03-10", "internal", 1, 1, 1, "5.000000", "5.000000"),
        ("2026-03-10", "outbound", 1, 1, 1, "30.000000", "30.000000"),
    ]  # fmt: skip
    assert one.status_code == 200, one.text
    assert (one.json()["tenant_id"], one.json()["timezone"]) == (world.tenant_id, "Europe/Paris")
    assert one.json() == as_supervisor.json()


@pytest.mark.parametrize(
    "path", ["/api/v1/cdrs", "/api/v1/cdrs/export.csv", "/api/v1/cdrs/summary"]
)
async def test_a_tenant_user_may_name_only_its_own_tenant(
    client: httpx.AsyncClient, calls: tuple[TenantWorld, TenantWorld], path: str
) -> None:
    world, other = calls

    for role in ("admin", "supervisor", "agent"):
        headers = world.actor(role).headers
        own = await client.get(
            path, headers=headers, params={**MARCH_10, "tenant_id": world.tenant_id}
        )
        plain = await client.get(path, headers=headers, params=MARCH_10)
        assert own.status_code == 200, (role, own.text)
        assert own.text == plain.text, role
        for foreign in (other.tenant_id, MAX_ID):
            response = await client.get(path, headers=headers, params={"tenant_id": foreign})
            assert response.status_code == 422, (role, response.text)
            assert fields_of(response) == {"query.tenant_id"}, role


async def test_an_operators_filter_must_agree_with_its_tenant_header(
    client: httpx.AsyncClient, calls: tuple[TenantWorld, TenantWorld]
) -> None:
    world, other = calls

    agreeing = await pages(client, world.operator_headers, tenant_id=world.tenant_id)
    differing = await client.get(
        "/api/v1/cdrs", headers=world.operator_headers, params={"tenant_id": other.tenant_id}
    )
    no_such_tenant = await client.get(
        "/api/v1/cdrs", headers={**world.operator.headers, "X-Graam-Tenant": str(MAX_ID)}
    )
    beyond_a_bigint = await client.get(
        "/api/v1/cdrs", headers=world.operator.headers, params={"tenant_id": str(MAX_ID + 1)}
    )
    nobodys = await client.get(
        "/api/v1/cdrs", headers=world.operator.headers, params={"tenant_id": MAX_ID}
    )

    assert agreeing == await pages(client, world.admin.headers)
    assert differing.status_code == 422, differing.text
    assert fields_of(differing) == {"query.tenant_id"}
    assert no_such_tenant.status_code == 404
    assert beyond_a_bigint.status_code == 422
    assert fields_of(beyond_a_bigint) == {"query.tenant_id"}
    # A filter names tenants that were, too: no tenant, no legs.
    assert nobodys.status_code == 200
    assert nobodys.json()["items"] == []
