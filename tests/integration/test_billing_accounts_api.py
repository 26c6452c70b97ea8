"""Billing accounts through the API: the admin's own, the operator's fields, ETags, tax
consistency."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit.models import AuditEntry
from graam_pbx.billing import dunning
from graam_pbx.billing.accounts import get_account
from graam_pbx.tenants.models import Tenant
from tests.factories import fields_of, make_world

URL = "/api/v1/billing/account"


def french(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "legal_name": "Acme SAS",
        "address": "1 rue de la Paix\n75002 Paris",
        "country": "FR",
        "siren": "732829320",
        "vat_number": "FR44732829320",
        "tax_status": "fr",
        "billing_email": "Billing@Acme.example",
        "locale": "fr",
    }
    body.update(changes)
    return body


async def test_an_admin_writes_its_account_and_the_operator_its_dates(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    none_yet = await client.get(URL, headers=world.admin.headers)
    assert none_yet.status_code == 404

    made = await client.put(URL, headers=world.admin.headers, json=french())
    assert made.status_code == 201, made.text
    account = made.json()
    assert account["tenant_id"] == world.tenant_id
    assert account["billing_email"] == "billing@acme.example"
    assert account["grace_days"] == 15
    # Without the operator's day, the subscription started when the tenant was created.
    paris_today = datetime.now(ZoneInfo("Europe/Paris")).date()
    assert date.fromisoformat(account["subscribed_on"]) in {
        paris_today,
        paris_today - timedelta(days=1),
    }
    etag = made.headers["ETag"]
    assert etag == f'"{world.tenant_id}.1"'

    read = await client.get(URL, headers=world.admin.headers)
    assert read.status_code == 200 and read.json() == account
    assert read.headers["ETag"] == etag

    # The subscription day and the grace are the operator's.
    for field, value in (("subscribed_on", "2026-01-15"), ("grace_days", 3)):
        refused = await client.put(URL, headers=world.admin.headers, json=french(**{field: value}))
        assert refused.status_code == 403, refused.text
    op = {**world.operator.headers}
    by_operator = await client.put(
        URL,
        headers={**op, "If-Match": etag},
        params={"tenant_id": world.tenant_id},
        json=french(subscribed_on="2026-01-15", grace_days=5, locale="en"),
    )
    assert by_operator.status_code == 200, by_operator.text
    assert by_operator.json()["subscribed_on"] == "2026-01-15"
    assert by_operator.json()["grace_days"] == 5
    new_etag = by_operator.headers["ETag"]
    assert new_etag == f'"{world.tenant_id}.2"'

    # A stale ETag is refused; the admin may resend the operator's values unchanged.
    stale = await client.put(URL, headers={**world.admin.headers, "If-Match": etag}, json=french())
    assert stale.status_code == 412, stale.text
    resent = await client.put(
        URL,
        headers={**world.admin.headers, "If-Match": new_etag},
        json=french(subscribed_on="2026-01-15", grace_days=5, legal_name="Acme SA"),
    )
    assert resent.status_code == 200, resent.text
    assert resent.json()["legal_name"] == "Acme SA"
    assert resent.json()["locale"] == "fr"
    kept = await client.put(URL, headers=world.admin.headers, json=french(legal_name="Acme"))
    assert kept.status_code == 200
    assert (kept.json()["subscribed_on"], kept.json()["grace_days"]) == ("2026-01-15", 5)

    async with sessions() as session:
        stored = await get_account(session, world.tenant_id)
        assert stored is not None and stored.legal_name == "Acme"
        actions = (
            await session.scalars(
                select(AuditEntry.action).where(
                    AuditEntry.tenant_id == world.tenant_id,
                    AuditEntry.object_type == "billing_account",
                )
            )
        ).all()
    assert list(actions) == ["create", "update", "update", "update"]


async def test_who_may_read_and_write_an_account(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    assert (await client.put(URL, headers=other.admin.headers, json=french())).status_code == 201
    for role in ("supervisor", "agent"):
        assert (await client.get(URL, headers=world.actor(role).headers)).status_code == 403
        assert (
            await client.put(URL, headers=world.actor(role).headers, json=french())
        ).status_code == 403
    # Another tenant's account does not exist for an admin.
    peek = await client.get(URL, headers=world.admin.headers, params={"tenant_id": other.tenant_id})
    assert peek.status_code == 404
    # Operators name the tenant.
    unnamed = await client.get(URL, headers=world.operator.headers)
    assert unnamed.status_code == 422
    assert fields_of(unnamed) == {"query.tenant_id"}
    theirs = await client.get(
        URL, headers=world.operator.headers, params={"tenant_id": other.tenant_id}
    )
    assert theirs.status_code == 200 and theirs.json()["tenant_id"] == other.tenant_id
    nobody = await client.put(
        URL, headers=world.operator.headers, params={"tenant_id": 2**40}, json=french()
    )
    assert nobody.status_code == 404
    # If-Match on an account that does not exist yet matches nothing.
    early = await client.put(
        URL, headers={**world.admin.headers, "If-Match": f'"{world.tenant_id}.1"'}, json=french()
    )
    assert early.status_code == 412


async def test_tax_status_country_and_numbers_must_agree(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    eu = {"siren": None, "tax_status": "eu_business"}
    cases: list[tuple[dict[str, Any], str]] = [
        (french(siren="732829321"), "body.siren"),
        (french(vat_number="FR45732829320"), "body.vat_number"),
        (french(vat_number="XX123"), "body.vat_number"),
        (french(country="XX"), "body.country"),
        (french(tax_status="eu"), "body.tax_status"),
        (french(locale="de"), "body.locale"),
        (french(billing_email="nobody"), "body.billing_email"),
        (french(legal_name=""), "body.legal_name"),
        (french(country="DE"), "body.siren"),
        (french(**eu, country="FR"), "body.country"),
        (french(**eu, country="DE", vat_number=None), "body.vat_number"),
        (french(**eu, country="DE", vat_number="IT12345678901"), "body.vat_number"),
        (french(siren=None, vat_number=None, tax_status="outside_eu"), "body.country"),
        (french(grace_days=-1), "body.grace_days"),
    ]
    for body, field in cases:
        answer = await client.put(
            URL, headers=world.operator.headers, params={"tenant_id": world.tenant_id}, json=body
        )
        assert answer.status_code == 422, (body, answer.text)
        assert field in fields_of(answer), (body, answer.text)
    async with sessions() as session:
        assert await get_account(session, world.tenant_id) is None

    german = await client.put(
        URL,
        headers=world.admin.headers,
        json=french(**eu, country="DE", vat_number="DE123456789", locale="en"),
    )
    assert german.status_code == 201, german.text
    swiss = await client.put(
        URL,
        headers=world.admin.headers,
        json=french(siren=None, vat_number=None, country="CH", tax_status="outside_eu"),
    )
    assert swiss.status_code == 200, swiss.text
    assert swiss.json()["tax_status"] == "outside_eu"


async def test_an_account_write_takes_the_rows_in_the_dunning_passs_order(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    made = await client.put(URL, headers=world.admin.headers, json=french())
    assert made.status_code == 201, made.text
    async with sessions() as session, session.begin():
        # A dunning pass (or a payment) holds the account's row first...
        await dunning.lock_account(session, world.tenant_id)
        writer = asyncio.create_task(
            client.put(URL, headers=world.admin.headers, json=french(locale="en"))
        )
        async with asyncio.timeout(30), sessions() as watcher:
            # ...while the write waits for a row lock...
            while not await watcher.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            ):
                await asyncio.sleep(0.01)
        # ...then the tenant's: the waiting write must not hold it (a deadlock, one aborted).
        async with asyncio.timeout(30):
            await session.get(Tenant, world.tenant_id, with_for_update=True)
    written = await writer
    assert written.status_code == 200, written.text
    assert written.json()["locale"] == "en"
