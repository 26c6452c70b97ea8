"""The support and notices pages over HTTP: the API's rules of who sees what, CSRF, and a
refused form shown again with its errors and nothing written."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import make_world
from tests.integration.test_console_auth import console_client, log_in, page_csrf


async def test_a_tenant_never_reaches_another_tenants_request_nor_the_operator_pages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a = await make_world(client, sessions)
    b = await make_world(client, sessions)
    filed = await client.post(
        "/api/v1/support-requests",
        headers=a.admin.headers,
        json={"subject": "A's secret", "body": "x", "priority": "low"},
    )
    request_id = filed.json()["id"]
    async with console_client(client) as browser:
        assert (await log_in(browser, b, "admin")).status_code == 303
        page = await browser.get(f"/support/{request_id}")
        assert page.status_code == 404
        assert "A&#39;s secret" not in page.text and "A's secret" not in page.text
        listed = await browser.get("/support")
        assert listed.status_code == 200
        assert "A&#39;s secret" not in listed.text
        csrf = await page_csrf(browser, "/support")
        reply = await browser.post(
            f"/support/{request_id}/messages", data={"csrf_token": csrf, "body": "peek"}
        )
        assert reply.status_code == 404
        for path in ("/operator/support", f"/operator/support/{request_id}", "/operator/notices"):
            assert (await browser.get(path)).status_code == 403, path
        without_token = await browser.post(
            "/support", data={"subject": "s", "body": "b", "priority": "low"}
        )
        assert without_token.status_code == 403
    async with console_client(client) as browser:
        assert (await log_in(browser, a, "agent")).status_code == 303
        assert (await browser.get("/support")).status_code == 403


async def test_a_refused_form_is_shown_again_and_files_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "supervisor")).status_code == 303
        csrf = await page_csrf(browser, "/support")
        refused = await browser.post(
            "/support",
            data={"csrf_token": csrf, "subject": "ok", "body": "   ", "priority": "urgent"},
        )
        assert refused.status_code == 422
        assert 'id="body-error"' in refused.text and 'id="priority-error"' in refused.text
        assert 'id="subject-error"' not in refused.text
        assert 'value="ok"' in refused.text
        filed = await browser.post(
            "/support",
            data={"csrf_token": csrf, "subject": "ok", "body": "Help", "priority": "medium"},
        )
        assert filed.status_code == 303
    listed = await client.get("/api/v1/support-requests", headers=world.admin.headers)
    assert [i["subject"] for i in listed.json()["items"]] == ["ok"]
