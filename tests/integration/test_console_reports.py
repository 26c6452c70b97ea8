"""The Reports page over HTTP with a console cookie: its CSV files equal the API's, its form's
errors, its roles and tenants."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import TenantWorld, make_world
from tests.integration.test_console_auth import console_client, log_in
from tests.report_data import ReportDay, write_report_day

Sessions = async_sessionmaker[AsyncSession]
DAY = date(2026, 11, 18)
ONE_DAY = {"period": "custom", "from": "2026-11-18", "to": "2026-11-18"}
API_DAY = {"since": "2026-11-18T00:00:00", "until": "2026-11-19T00:00:00"}


@pytest.fixture(scope="module")
async def world(client: httpx.AsyncClient, sessions: Sessions) -> TenantWorld:
    return await make_world(client, sessions)


@pytest.fixture(scope="module")
async def report_day(
    client: httpx.AsyncClient, sessions: Sessions, world: TenantWorld
) -> ReportDay:
    return await write_report_day(client, sessions, world, DAY)


async def _api(client: httpx.AsyncClient, world: TenantWorld, path: str, **params: Any) -> str:
    answer = await client.get(path, params=params, headers=world.headers("supervisor"))
    assert answer.status_code == 200, answer.text
    return answer.text


@pytest.mark.parametrize("interval", ["hour", "15min", "day"])
async def test_the_csv_files_are_the_apis(
    client: httpx.AsyncClient, world: TenantWorld, report_day: ReportDay, interval: str
) -> None:
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "supervisor")).status_code == 303
        queues = await browser.get("/reports/queues.csv", params={**ONE_DAY, "interval": interval})
        assert queues.status_code == 200
        assert queues.headers["content-type"].startswith("text/csv")
        assert "attachment" in queues.headers["content-disposition"]
        api = await _api(
            client, world, "/api/v1/stats/queues/export.csv", **API_DAY, interval=interval
        )
        assert queues.text == api
        assert len(queues.text.splitlines()) > 2
        agents = await browser.get("/reports/agents.csv", params={**ONE_DAY, "interval": interval})
        assert agents.status_code == 200
        assert agents.text == await _api(
            client, world, "/api/v1/stats/agents/export.csv", **API_DAY, interval=interval
        )
        # One queue, one agent: the API's filters.
        queue_id, agent_id = report_day.queue_ids[1], report_day.agent_ids[1]
        one_queue = await browser.get(
            "/reports/queues.csv", params={**ONE_DAY, "interval": interval, "queue": queue_id}
        )
        assert one_queue.text == await _api(
            client,
            world,
            "/api/v1/stats/queues/export.csv",
            **API_DAY,
            interval=interval,
            queue_id=queue_id,
        )
        one_agent = await browser.get(
            "/reports/agents.csv", params={**ONE_DAY, "interval": interval, "agent": agent_id}
        )
        assert one_agent.text == await _api(
            client,
            world,
            "/api/v1/stats/agents/export.csv",
            **API_DAY,
            interval=interval,
            agent_id=agent_id,
        )


async def test_the_page_links_its_csv_files_and_shows_the_apis_totals(
    client: httpx.AsyncClient, world: TenantWorld, report_day: ReportDay
) -> None:
    async with console_client(client) as browser:
        await log_in(browser, world, "admin")
        page = await browser.get("/reports", params={**ONE_DAY, "interval": "hour"})
        assert page.status_code == 200
        links = re.findall(r'href="(/reports/(?:queues|agents)\.csv\?[^"]*)"', page.text)
        assert len(links) == 2
        for link in links:
            download = await browser.get(link.replace("&amp;", "&"))
            assert download.status_code == 200 and download.text.startswith("bucket_start")
        api = (
            await client.get(
                "/api/v1/stats/queues",
                params={**API_DAY, "interval": "hour"},
                headers=world.headers("admin"),
            )
        ).json()
        offered = sum(total["offered"] for total in api["totals"])
        assert offered == report_day.calls
        # The summary's first figure: every queue's calls offered.
        summary = re.search(r'id="summary">\s*<div><dt>[^<]*</dt><dd>([^<]*)</dd>', page.text)
        assert summary is not None and summary.group(1) == f"{offered:,}"


async def test_a_bad_period_or_interval_is_said_next_to_its_field(
    client: httpx.AsyncClient, world: TenantWorld
) -> None:
    async with console_client(client) as browser:
        await log_in(browser, world, "supervisor")
        backwards = await browser.get(
            "/reports", params={"period": "custom", "from": "2026-11-18", "to": "2026-11-10"}
        )
        assert backwards.status_code == 422
        assert 'id="to-error"' in backwards.text and 'role="alert"' in backwards.text
        assert "The end date is before the start date." in backwards.text
        # A year by quarters of an hour is refused by the API's own limit (3,000 buckets).
        year = await browser.get(
            "/reports",
            params={
                "period": "custom",
                "from": "2025-01-01",
                "to": "2025-12-31",
                "interval": "15min",
            },
        )
        assert year.status_code == 422
        assert 'id="interval-error"' in year.text and 'aria-invalid="true"' in year.text
        assert 'id="report-data"' not in year.text  # no figures for a refused form
        for params in (
            {"period": "someday"},
            {"interval": "week"},
            {"queue": "x"},
            {"queue": "²"},  # a digit int() does not read
            {"period": "custom", "from": "18/11/2026", "to": "2026-11-18"},
            {"period": "custom", "from": "9999-12-31", "to": "9999-12-31"},
            {"period": "custom"},
        ):
            answer = await browser.get("/reports", params=params)
            assert answer.status_code == 422, params
            assert 'class="field-error" role="alert"' in answer.text
        refused = await browser.get(
            "/reports/queues.csv", params={"period": "custom", "from": "2026-11-18"}
        )
        assert refused.status_code == 422


async def test_agents_may_not_and_other_tenants_queues_are_not_found(
    client: httpx.AsyncClient, sessions: Sessions, world: TenantWorld, report_day: ReportDay
) -> None:
    async with console_client(client) as browser:
        await log_in(browser, world, "agent")
        for path in ("/reports", "/reports/queues.csv", "/reports/agents.csv"):
            assert (await browser.get(path)).status_code == 403, path
    other = await make_world(client, sessions)
    async with console_client(client) as browser:
        await log_in(browser, other, "supervisor")
        foreign = report_day.queue_ids[0]
        page = await browser.get("/reports", params={**ONE_DAY, "queue": foreign})
        assert page.status_code == 404
        csv_answer = await browser.get("/reports/queues.csv", params={**ONE_DAY, "queue": foreign})
        assert csv_answer.status_code == 404
        own = await browser.get("/reports/queues.csv", params=ONE_DAY)
        assert own.status_code == 200
        assert len(own.text.splitlines()) == 1  # its own tenant has no queue call: a header
    # An operator reports on the tenant it acts in.
    async with console_client(client) as browser:
        await log_in(browser, world, "operator")
        page = await browser.get("/reports", params={**ONE_DAY, "tenant": world.tenant_id})
        assert page.status_code == 200
        assert f'name="tenant" value="{world.tenant_id}"' in page.text
        assert (await browser.get("/reports")).status_code == 422  # no tenant named
