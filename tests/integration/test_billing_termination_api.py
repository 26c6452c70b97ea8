"""Termination through the API and the scheduler's pass, against the real Postgres: the
30 days' notice, its withdrawal, and the end of service after the last day (status
terminated, no login, numbers back in the catalogue but for a pending port-out or a route)."""

from __future__ import annotations

import itertools
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit.models import AuditEntry
from graam_pbx.billing.models import BillingAccount, Holding
from graam_pbx.billing.termination import finish_terminations
from graam_pbx.numbers.models import PhoneNumber
from graam_pbx.settings import Settings
from graam_pbx.tenants.models import Tenant
from tests.factories import PASSWORD, TenantWorld, fields_of, make_world

Sessions = async_sessionmaker[AsyncSession]
URL = "/api/v1/billing/termination"
PARIS = ZoneInfo("Europe/Paris")
_suffix = itertools.count(secrets.randbelow(10_000) * 100)


def today() -> date:
    """Today on the billing clock (the default Europe/Paris)."""
    return datetime.now(PARIS).date()


async def make_account(sessions: Sessions, tenant_id: int) -> None:
    async with sessions() as session, session.begin():
        session.add(
            BillingAccount(
                tenant_id=tenant_id,
                legal_name=f"Client {tenant_id} SAS",
                address="1 rue de la Paix\n75002 Paris",
                country="FR",
                siren="123456789",
                vat_number="FR40123456789",
                tax_status="fr",
                billing_email=f"billing-{tenant_id}@client.example",
                locale="fr",
                subscribed_on=date(2024, 1, 1),
            )
        )


async def buy_number(client: httpx.AsyncClient, world: TenantWorld) -> dict[str, Any]:
    """A new French geographic number, loaded by the operator and bought by the admin."""
    e164 = f"+3315{next(_suffix):07d}"
    loaded = await client.post(
        "/api/v1/catalogue/numbers",
        headers=world.operator.headers,
        json=[{"e164": e164, "monthly_price": "1.50", "currency": "EUR"}],
    )
    assert loaded.status_code == 201, loaded.text
    bought = await client.post("/api/v1/numbers", headers=world.admin.headers, json={"e164": e164})
    assert bought.status_code == 201, bought.text
    body: dict[str, Any] = bought.json()
    return body


async def tenant_row(sessions: Sessions, tenant_id: int) -> Tenant:
    async with sessions() as session:
        tenant = await session.get(Tenant, tenant_id)
        assert tenant is not None
        return tenant


async def number_row(sessions: Sessions, number_id: int) -> PhoneNumber:
    async with sessions() as session:
        number = await session.get(PhoneNumber, number_id)
        assert number is not None
        return number


async def audit_actions(sessions: Sessions, tenant_id: int) -> list[str]:
    async with sessions() as session:
        rows = await session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.tenant_id == tenant_id)
            .order_by(AuditEntry.id)
        )
        return list(rows)


async def pass_last_day(sessions: Sessions, tenant_id: int) -> None:
    """Time passes: the notice's last day was yesterday."""
    yesterday = today() - timedelta(days=1)
    async with sessions() as session, session.begin():
        await session.execute(
            update(BillingAccount)
            .where(BillingAccount.tenant_id == tenant_id)
            .values(terminates_on=yesterday)
        )


async def test_notice_needs_a_billing_account(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    last_day = today() + timedelta(days=40)
    refused = await client.post(
        URL, headers=world.admin.headers, json={"last_day": last_day.isoformat()}
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["error_id"] == "no-billing-account"
    assert (await tenant_row(sessions, world.tenant_id)).status == "active"


async def test_notice_of_thirty_days_or_more_makes_the_tenant_terminating(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    await make_account(sessions, world.tenant_id)
    shown = await client.get(URL, headers=world.supervisor.headers)
    assert shown.status_code == 200, shown.text
    earliest = today() + timedelta(days=30)
    assert shown.json() == {
        "tenant_id": world.tenant_id,
        "status": "active",
        "notice_given_on": None,
        "terminates_on": None,
        "earliest_last_day": earliest.isoformat(),
    }

    too_soon = await client.post(
        URL, headers=world.admin.headers, json={"last_day": (earliest - timedelta(1)).isoformat()}
    )
    assert too_soon.status_code == 422, too_soon.text
    assert fields_of(too_soon) == {"body.last_day"}
    assert earliest.isoformat() in too_soon.text

    for role in ("supervisor", "agent"):
        forbidden = await client.post(
            URL, headers=world.headers(role), json={"last_day": earliest.isoformat()}
        )
        assert forbidden.status_code == 403, forbidden.text

    given = await client.post(
        URL, headers=world.admin.headers, json={"last_day": earliest.isoformat()}
    )
    assert given.status_code == 201, given.text
    assert given.json()["status"] == "terminating"
    assert given.json()["notice_given_on"] == today().isoformat()
    assert given.json()["terminates_on"] == earliest.isoformat()
    tenant = await tenant_row(sessions, world.tenant_id)
    assert (tenant.status, tenant.ends_on) == ("terminating", earliest)
    async with sessions() as session:
        account = await session.get(BillingAccount, world.tenant_id)
        assert account is not None
        assert (account.notice_given_on, account.terminates_on) == (today(), earliest)

    again = await client.post(
        URL, headers=world.admin.headers, json={"last_day": (earliest + timedelta(9)).isoformat()}
    )
    assert again.status_code == 409, again.text
    assert again.json()["error_id"] == "notice-already-given"
    assert (await client.get(URL, headers=world.admin.headers)).json()["terminates_on"] == (
        earliest.isoformat()
    )
    assert "give-notice" in await audit_actions(sessions, world.tenant_id)


async def test_a_notice_withdrawn_before_its_last_day_leaves_the_tenant_active(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    await make_account(sessions, world.tenant_id)
    assert (await client.delete(URL, headers=world.admin.headers)).status_code == 404
    last_day = today() + timedelta(days=45)
    # The operator acts for the tenant too.
    given = await client.post(
        URL, headers=world.operator_headers, json={"last_day": last_day.isoformat()}
    )
    assert given.status_code == 201, given.text

    assert (await client.delete(URL, headers=world.supervisor.headers)).status_code == 403
    withdrawn = await client.delete(URL, headers=world.admin.headers)
    assert withdrawn.status_code == 204, withdrawn.text
    tenant = await tenant_row(sessions, world.tenant_id)
    assert (tenant.status, tenant.ends_on) == ("active", None)
    shown = (await client.get(URL, headers=world.admin.headers)).json()
    assert (shown["notice_given_on"], shown["terminates_on"]) == (None, None)
    assert (await client.delete(URL, headers=world.admin.headers)).status_code == 404
    actions = await audit_actions(sessions, world.tenant_id)
    assert actions.index("give-notice") < actions.index("withdraw-notice")

    # On its last day the notice is final.
    again = await client.post(
        URL, headers=world.admin.headers, json={"last_day": last_day.isoformat()}
    )
    assert again.status_code == 201, again.text
    async with sessions() as session, session.begin():
        await session.execute(
            update(BillingAccount)
            .where(BillingAccount.tenant_id == world.tenant_id)
            .values(terminates_on=today())
        )
    late = await client.delete(URL, headers=world.admin.headers)
    assert late.status_code == 409, late.text
    assert late.json()["error_id"] == "termination-final"


async def test_after_the_last_day_the_tenant_is_terminated_and_its_numbers_released(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    await make_account(sessions, world.tenant_id)
    plain = await buy_number(client, world)
    ported = await buy_number(client, world)
    routed = await buy_number(client, world)
    route = await client.post(
        "/api/v1/inbound-routes",
        headers=world.admin.headers,
        json={"number_id": routed["id"], "open_destination": {"type": "hangup"}},
    )
    assert route.status_code == 201, route.text
    port_out = await client.post(
        "/api/v1/billing/port-outs", headers=world.admin.headers, json={"number_id": ported["id"]}
    )
    assert port_out.status_code == 201, port_out.text
    last_day = today() + timedelta(days=30)
    given = await client.post(
        URL, headers=world.admin.headers, json={"last_day": last_day.isoformat()}
    )
    assert given.status_code == 201, given.text

    settings = Settings()
    # Before the last day has passed, the pass leaves the tenant alone.
    await finish_terminations(sessions, settings, datetime.now(UTC))
    assert (await tenant_row(sessions, world.tenant_id)).status == "terminating"

    await pass_last_day(sessions, world.tenant_id)
    assert await finish_terminations(sessions, settings, datetime.now(UTC)) >= 1
    tenant = await tenant_row(sessions, world.tenant_id)
    assert (tenant.status, tenant.ends_on) == ("terminated", today() - timedelta(days=1))
    refused = await client.post(
        "/api/v1/auth/token",
        json={"email": world.admin.email, "password": PASSWORD, "tenant": world.slug},
    )
    assert refused.status_code == 401, refused.text

    released = await number_row(sessions, plain["id"])
    assert (released.status, released.tenant_id) == ("available", None)
    for kept in (ported, routed):
        row = await number_row(sessions, kept["id"])
        assert (row.status, row.tenant_id) == ("assigned", world.tenant_id)
    async with sessions() as session:
        holdings = (
            await session.scalars(
                select(Holding).where(Holding.ref_id == plain["id"], Holding.item == "number")
            )
        ).all()
        assert holdings and all(h.held_until is not None for h in holdings)
    # Back on sale: another tenant buys it.
    other = await make_world(client, sessions)
    bought = await client.post(
        "/api/v1/numbers", headers=other.admin.headers, json={"e164": plain["e164"]}
    )
    assert bought.status_code == 201, bought.text

    # Idempotent: a second pass terminates nothing more and writes no audit twice.
    actions = await audit_actions(sessions, world.tenant_id)
    await finish_terminations(sessions, settings, datetime.now(UTC))
    assert await audit_actions(sessions, world.tenant_id) == actions
    assert actions.count("terminate") == 1
    assert actions.count("keep-number") == 1

    # What kept the numbers goes: the next pass gives them back.
    deleted = await client.delete(
        f"/api/v1/inbound-routes/{route.json()['id']}", headers=world.operator_headers
    )
    assert deleted.status_code == 204, deleted.text
    cancelled = await client.patch(
        f"/api/v1/billing/port-outs/{port_out.json()['id']}",
        headers=world.operator.headers,
        json={"state": "cancelled"},
    )
    assert cancelled.status_code == 200, cancelled.text
    await finish_terminations(sessions, settings, datetime.now(UTC))
    for number in (ported, routed):
        row = await number_row(sessions, number["id"])
        assert (row.status, row.tenant_id) == ("available", None)
    assert (await tenant_row(sessions, world.tenant_id)).status == "terminated"

    late = await client.post(
        URL,
        headers=world.operator_headers,
        json={"last_day": (today() + timedelta(60)).isoformat()},
    )
    assert late.status_code == 409, late.text
    assert late.json()["error_id"] == "termination-final"
