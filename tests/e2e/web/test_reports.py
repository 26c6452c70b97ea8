"""The Reports page in the browser: a working day's figures equal the API's, the charts are
drawn, the CSV downloads are the API's, agents are kept out, French, axe."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.web.i18n import Texts
from tests.e2e.web.browser import (
    SEEN_WITHIN_MS,
    assert_accessible,
    log_in,
    save_screenshot,
    screenshot_path,
)
from tests.factories import PASSWORD, TenantWorld, make_world
from tests.report_data import PARIS, ReportDay, write_report_day

Sessions = async_sessionmaker[AsyncSession]
DAY = date(2026, 11, 18)
API_DAY = {"since": "2026-11-18T00:00:00", "until": "2026-11-19T00:00:00"}
ENGLISH = Texts("en", PARIS)


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def queue_cells(texts: Texts, kpis: dict[str, Any]) -> list[str]:
    """A per-interval row's figures as the page writes them."""
    return [
        texts.number(kpis["offered"]),
        texts.number(kpis["answered"]),
        texts.number(kpis["abandoned"]),
        texts.number(kpis["short_abandoned"]),
        texts.percent(_decimal(kpis["service_level_answered"])),
        texts.percent(_decimal(kpis["abandon_rate"])),
        texts.duration(_decimal(kpis["average_speed_of_answer"])),
        texts.duration(_decimal(kpis["average_handling_time"])),
        texts.duration(_decimal(kpis["longest_wait"])),
    ]


async def api(client: httpx.AsyncClient, world: TenantWorld, path: str, **params: Any) -> Any:
    answer = await client.get(path, params=params, headers=world.headers("supervisor"))
    assert answer.status_code == 200, answer.text
    return answer.json() if path.endswith(("/queues", "/agents")) else answer.text


async def cells(page: Page, row_selector: str) -> list[str]:
    texts: list[str] = await page.locator(f"{row_selector} td").all_inner_texts()
    return [text.strip() for text in texts]


async def show_day(page: Page, *, interval: str, queue: str | None = None) -> None:
    await page.get_by_label("Period", exact=True).select_option("custom")
    await page.get_by_label("From", exact=True).fill(DAY.isoformat())
    await page.get_by_label("To (included)").fill(DAY.isoformat())
    await page.get_by_label("Interval", exact=True).select_option(interval)
    choice = page.get_by_label("Queue", exact=True)
    if queue is not None:
        await choice.select_option(label=queue)
    asked = f"queue={await choice.input_value()}"
    await page.get_by_role("button", name="Show the report").click()
    # The report asked for, not the one on screen before (it has the same table).
    await expect(page).to_have_url(re.compile(rf"interval={interval}&{re.escape(asked)}$"))
    await expect(page.locator("#intervals-table")).to_be_visible(timeout=SEEN_WITHIN_MS)


async def test_a_days_report_shows_the_apis_figures_charts_and_csv(
    page: Page,
    console: str,
    client: httpx.AsyncClient,
    sessions: Sessions,
    tmp_path: Path,
) -> None:
    world = await make_world(client, sessions)
    day: ReportDay = await write_report_day(client, sessions, world, DAY)
    await log_in(page, console, world.slug, world.supervisor.email, PASSWORD)
    await page.get_by_role("link", name="Reports").click()
    await expect(page.get_by_role("heading", name="Reports", level=1)).to_be_visible()
    await show_day(page, interval="hour")
    await expect(page).to_have_url(
        f"{console}/reports?period=custom&from=2026-11-18&to=2026-11-18&interval=hour&queue="
    )

    # Per queue: the API's totals, figure by figure.
    queues = await api(client, world, "/api/v1/stats/queues", **API_DAY, interval="hour")
    assert sum(total["offered"] for total in queues["totals"]) == day.calls
    for total in queues["totals"]:
        row = f"#queues-table tr[data-queue='{total['queue_id']}']"
        expected = [
            ENGLISH.number(total["offered"]),
            ENGLISH.number(total["answered"]),
            ENGLISH.number(total["abandoned"]),
            ENGLISH.number(total["short_abandoned"]),
            ENGLISH.percent(_decimal(total["service_level_answered"])),
            ENGLISH.percent(_decimal(total["service_level_offered"])),
            ENGLISH.percent(_decimal(total["abandon_rate"])),
            ENGLISH.duration(_decimal(total["average_speed_of_answer"])),
            ENGLISH.duration(_decimal(total["average_time_to_abandon"])),
            ENGLISH.duration(_decimal(total["average_handling_time"])),
            ENGLISH.duration(_decimal(total["longest_wait"])),
        ]
        assert await cells(page, row) == expected
    # All queues per hour: each hour's calls are the queues' for that hour.
    offered_by_hour: dict[str, int] = {}
    for bucket in queues["buckets"]:
        offered_by_hour[bucket["bucket_start"]] = (
            offered_by_hour.get(bucket["bucket_start"], 0) + bucket["offered"]
        )
    shown = await page.locator("#intervals-table tbody tr td:first-of-type").all_inner_texts()
    assert [int(text.replace(",", "")) for text in shown] == list(offered_by_hour.values())

    # Every chart is drawn.
    for chart in ("volumes", "service", "abandons", "handling"):
        await expect(page.locator(f"#chart-{chart} canvas")).to_have_count(1)
    await assert_accessible(page)

    # One queue: every hour's row is the API's.
    queue_id = day.queue_ids[0]
    queue_name = await page.locator(f"#queues-table tr[data-queue='{queue_id}'] th").inner_text()
    assert queue_name.startswith("sales")
    await show_day(page, interval="hour", queue=queue_name)
    one = await api(
        client, world, "/api/v1/stats/queues", **API_DAY, interval="hour", queue_id=queue_id
    )
    rows = page.locator("#intervals-table tbody tr")
    await expect(rows).to_have_count(len(one["buckets"]))
    for index, bucket in enumerate(one["buckets"]):
        row = f"#intervals-table tbody tr:nth-child({index + 1})"
        assert await cells(page, row) == queue_cells(ENGLISH, bucket), bucket["bucket_start"]

    # The CSV download is the API's file.
    async with page.expect_download() as waiting:
        await page.get_by_role("link", name="Queues, CSV").click()
    download = await waiting.value
    saved = tmp_path / "queues.csv"
    await download.save_as(saved)
    assert saved.read_bytes().decode("utf-8") == await api(
        client,
        world,
        "/api/v1/stats/queues/export.csv",
        **API_DAY,
        interval="hour",
        queue_id=queue_id,
    )

    # An agent's tab: its totals and its hours are the API's.
    agents = await api(client, world, "/api/v1/stats/agents", **API_DAY, interval="hour")
    agent_id = day.agent_ids[1]
    (total,) = [t for t in agents["totals"] if t["agent_id"] == agent_id]
    agent_row = f"#agents-table tr[data-agent='{agent_id}']"
    shown_agent = await cells(page, agent_row)
    assert shown_agent[:4] == [
        ENGLISH.number(total["answered"]),
        ENGLISH.duration(_decimal(total["talk_seconds"])),
        ENGLISH.duration(_decimal(total["average_handling_time"])),
        ENGLISH.percent(_decimal(total["occupancy"])),
    ]
    assert ENGLISH.duration(_decimal(total["paused_seconds_by_reason"]["lunch"])) in shown_agent[-2]
    await (
        page.get_by_role("navigation", name="Agent detail")
        .get_by_role("link", name="Camille Martin")
        .click()
    )
    await expect(page.get_by_role("heading", name="Camille Martin, per interval")).to_be_visible()
    answered = await page.locator(
        "#agent-intervals-table tbody tr td:first-of-type"
    ).all_inner_texts()
    assert [int(n) for n in answered] == [
        b["answered"] for b in agents["buckets"] if b["agent_id"] == agent_id
    ]
    await assert_accessible(page)

    # The screenshot: the whole day, every queue, by hour.
    await show_day(page, interval="hour", queue="All queues")
    await expect(page.locator("#chart-volumes canvas")).to_have_count(1)
    await save_screenshot(page, "report")


async def test_an_agent_may_not_open_the_reports(
    page: Page, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    await log_in(page, console, world.slug, world.agent.email, PASSWORD)
    answer = await page.goto(f"{console}/reports")
    assert answer is not None and answer.status == 403
    await expect(page.get_by_role("link", name="Reports")).to_have_count(0)
    download = await page.request.get(f"{console}/reports/queues.csv")
    assert download.status == 403


async def test_the_report_in_french_and_a_refused_interval(
    browser: Browser, console: str, client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    await write_report_day(client, sessions, world, DAY, seed=7)
    context = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        await log_in(page, console, world.slug, world.admin.email, PASSWORD, language="fr")
        await page.goto(
            f"{console}/reports?period=custom&from=2026-11-18&to=2026-11-18&interval=day"
        )
        await expect(page.get_by_role("heading", name="Rapports", level=1)).to_be_visible()
        await expect(page.locator("html")).to_have_attribute("lang", "fr")
        queues = await api(client, world, "/api/v1/stats/queues", **API_DAY, interval="day")
        french = Texts("fr", PARIS)
        (first,) = await page.locator("#intervals-table tbody tr th").all_inner_texts()
        assert first == french.date(DAY)
        total = queues["totals"][0]
        shown = await cells(page, f"#queues-table tr[data-queue='{total['queue_id']}']")
        assert shown[4] == french.percent(_decimal(total["service_level_answered"]))
        await expect(page.locator("#chart-handling canvas")).to_have_count(1)
        await assert_accessible(page)
        await page.screenshot(path=str(screenshot_path("report_fr")), full_page=True)

        # A year by quarters of an hour: refused next to the interval, in French.
        await page.get_by_label("Période", exact=True).select_option("custom")
        await page.get_by_label("Du", exact=True).fill("2025-01-01")
        await page.get_by_label("Au (inclus)").fill("2025-12-31")
        await page.get_by_label("Intervalle", exact=True).select_option("15min")
        await page.get_by_role("button", name="Afficher le rapport").click()
        await expect(page.get_by_role("alert")).to_contain_text("Trop d'intervalles")
        await expect(page.get_by_label("Intervalle", exact=True)).to_have_attribute(
            "aria-invalid", "true"
        )
        await assert_accessible(page)
    finally:
        await context.close()
