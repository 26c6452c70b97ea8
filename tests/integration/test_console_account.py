"""The Account and operator Tenants pages over HTTP: roles, CSRF, form errors, nothing
half-written, the same audit as the API."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit.models import AuditEntry
from tests.factories import TenantWorld, make_world, unique
from tests.integration.test_console_auth import console_client, log_in, page_csrf

Sessions = async_sessionmaker[AsyncSession]
ALERT = re.compile(r'role="alert"[^>]*>([^<]*)<')


async def licences(client: httpx.AsyncClient, world: TenantWorld) -> dict[str, int | None]:
    seen = await client.get(
        f"/api/v1/tenants/{world.tenant_id}/licences", headers=world.admin.headers
    )
    assert seen.status_code == 200, seen.text
    body: dict[str, int | None] = seen.json()
    return body


async def licence_changes(sessions: Sessions, tenant_id: int) -> int:
    async with sessions() as session:
        count = await session.scalar(
            select(func.count()).where(
                AuditEntry.tenant_id == tenant_id, AuditEntry.action == "set-licences"
            )
        )
    return int(count or 0)


async def held_number(client: httpx.AsyncClient, world: TenantWorld) -> str:
    """A number of the catalogue the tenant buys."""
    e164 = f"+3314268{secrets.randbelow(10_000):04d}"
    loaded = await client.post(
        "/api/v1/catalogue/numbers",
        headers=world.operator.headers,
        json=[{"e164": e164, "monthly_price": "1.50", "currency": "EUR"}],
    )
    assert loaded.status_code == 201, loaded.text
    bought = await client.post("/api/v1/numbers", headers=world.admin.headers, json={"e164": e164})
    assert bought.status_code == 201, bought.text
    return e164


async def set_ceiling(client: httpx.AsyncClient, world: TenantWorld, ceiling: int) -> None:
    answer = await client.patch(
        f"/api/v1/tenants/{world.tenant_id}",
        headers=world.operator.headers,
        json={"licence_ceiling": ceiling},
    )
    assert answer.status_code == 200, answer.text


async def test_the_admin_changes_licences_and_every_refusal_changes_nothing(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=3)
    await set_ceiling(client, world, 6)
    e164 = await held_number(client, world)
    title = f"Maintenance {unique('n')}"
    published = await client.post(
        "/api/v1/notices",
        headers=world.operator.headers,
        json={
            "title": title,
            "body": "Calls may drop for a minute.",
            "effective_on": (datetime.now(UTC).date() + timedelta(days=40)).isoformat(),
            "tenant_ids": [world.tenant_id],
        },
    )
    assert published.status_code == 201, published.text
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "admin")).status_code == 303
        shown = await browser.get("/account")
        assert shown.status_code == 200
        for text in ("Licences held", "Up to 6", world.admin.email, e164, "1.50 EUR", title):
            assert text in shown.text, text
        token = await page_csrf(browser, "/account")
        refusals = {
            "many": (422, "Enter a whole number of licences."),
            "-2": (422, "Enter 0 or more licences."),
            "100001": (422, "Enter at most 100,000 licences."),
            "7": (409, "At most 6 licences: the ceiling set by your operator."),
        }
        for typed, (status, message) in refusals.items():
            answer = await browser.post(
                "/account/licences", data={"csrf_token": token, "licences": typed}
            )
            assert answer.status_code == status, (typed, answer.text[:300])
            assert ALERT.findall(answer.text) == [message], typed
            # The form is shown again with what was typed, the field marked invalid.
            assert f'value="{typed}"' in answer.text and 'aria-invalid="true"' in answer.text
        assert (await licences(client, world))["licences"] == 3
        assert await licence_changes(sessions, world.tenant_id) == 0
        # Without its CSRF token, nothing happens either.
        forged = await browser.post("/account/licences", data={"licences": "5"})
        assert forged.status_code == 403
        done = await browser.post("/account/licences", data={"csrf_token": token, "licences": "6"})
        assert done.status_code == 303 and done.headers["location"] == "/account?saved=1"
        after = await browser.get(done.headers["location"])
        assert "Licences changed: 6 held from now on." in after.text
    assert (await licences(client, world))["licences"] == 6
    assert await licence_changes(sessions, world.tenant_id) == 1


async def test_only_admins_and_operators_see_the_account(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions, licences=2)
    await set_ceiling(client, world, 4)
    for role in ("supervisor", "agent"):
        async with console_client(client) as browser:
            assert (await log_in(browser, world, role)).status_code == 303
            assert (await browser.get("/account")).status_code == 403
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "operator")).status_code == 303
        # The operator names the tenant it acts in, and may go above the ceiling.
        shown = await browser.get(f"/account?tenant={world.tenant_id}")
        assert shown.status_code == 200 and "As the operator, you may go above it." in shown.text
        token = await page_csrf(browser, f"/account?tenant={world.tenant_id}")
        done = await browser.post(
            f"/account/licences?tenant={world.tenant_id}",
            data={"csrf_token": token, "licences": "9"},
        )
        assert done.status_code == 303
        assert done.headers["location"] == f"/account?saved=1&tenant={world.tenant_id}"
        # Not a tenant id: refused naming the query, never a server error ("²" is a digit
        # Python's int() does not read; 5000 digits are past its limit).
        for asked in ("abc", "0", "\u00b2", "9" * 5000):
            refused = await browser.get("/account", params={"tenant": asked})
            assert refused.status_code == 422, (asked[:10], refused.status_code)
    assert (await licences(client, world))["licences"] == 9


async def test_the_operator_creates_sets_the_ceiling_suspends_and_reactivates(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    for role in ("admin", "supervisor"):
        async with console_client(client) as browser:
            assert (await log_in(browser, world, role)).status_code == 303
            assert (await browser.get("/operator/tenants")).status_code == 403
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "operator")).status_code == 303
        token = await page_csrf(browser, "/operator/tenants")
        slug = unique("web")
        form = {
            "csrf_token": token,
            "slug": slug,
            "name": "Web Co",
            "country": "FR",
            "timezone": "Europe/Paris",
            "plan": "",
            "licences": "4",
            "licence_ceiling": "",
        }
        bad = await browser.post(
            "/operator/tenants",
            data={**form, "slug": "-X", "country": "XX", "timezone": "Mars/Base", "licences": "a"},
        )
        assert bad.status_code == 422
        for field in ("slug", "country", "timezone", "licences"):
            assert f'id="{field}-error"' in bad.text, field
        assert 'id="name-error"' not in bad.text
        assert 'value="Mars/Base"' in bad.text
        made = await browser.post("/operator/tenants", data=form)
        assert made.status_code == 303, made.text[:500]
        tenant_id = int(made.headers["location"].rsplit("=", 1)[1])
        again = await browser.post("/operator/tenants", data=form)
        assert again.status_code == 409 and 'id="slug-error"' in again.text
        listed = await browser.get(made.headers["location"])
        assert "Tenant Web Co created." in listed.text and slug in listed.text

        ceiling = f"/operator/tenants/{tenant_id}/ceiling"
        refused = await browser.post(ceiling, data={"csrf_token": token, "licence_ceiling": "-1"})
        assert refused.status_code == 422
        assert f'id="ceiling-{tenant_id}-error"' in refused.text
        assert (await browser.post(ceiling, data={"licence_ceiling": "8"})).status_code == 403
        set_ = await browser.post(ceiling, data={"csrf_token": token, "licence_ceiling": "8"})
        assert set_.status_code == 303

        status = f"/operator/tenants/{tenant_id}/status"
        suspended = await browser.post(status, data={"csrf_token": token, "status": "suspended"})
        assert suspended.status_code == 303
        # A second click from a stale page: the tenant is no longer active, nothing changes.
        stale = await browser.post(status, data={"csrf_token": token, "status": "suspended"})
        assert stale.status_code == 409
        seen = await client.get(f"/api/v1/tenants/{tenant_id}", headers=world.operator.headers)
        assert seen.json()["status"] == "suspended"
        back = await browser.post(status, data={"csrf_token": token, "status": "active"})
        assert back.status_code == 303
    seen = await client.get(f"/api/v1/tenants/{tenant_id}", headers=world.operator.headers)
    assert seen.json()["status"] == "active"
    assert seen.json()["licence_ceiling"] == 8
    assert seen.json()["licences"] == 4 and seen.json()["plan"] == "standard"
    async with sessions() as session:
        actions = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.tenant_id == tenant_id)
                .order_by(AuditEntry.id)
            )
        )
    assert actions == ["create", "update", "update", "update"]
