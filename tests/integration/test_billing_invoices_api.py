"""Invoices through the API: who sees which, a run by the operator, credit notes, isolation."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.billing.models import BillingAccount, BillingPlan, Price
from graam_pbx.tenants.models import Tenant
from tests.factories import TenantWorld, fields_of, make_world, unique

URL = "/api/v1/billing"
OCTOBER = "2026-10-01"


async def billed_world(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    tax_status: str = "outside_eu",
) -> TenantWorld:
    """A tenant with a priced plan of its own, subscribed since 1 October 2026."""
    world = await make_world(client, sessions)
    plan = unique("plan")
    async with sessions() as session, session.begin():
        session.add(BillingPlan(code=plan, name=plan))
        await session.flush()
        session.add(
            Price(
                item="plan",
                plan_code=plan,
                amount=Decimal("19.99"),
                effective_on=date(2000, 1, 1),
                published_by="test",
            )
        )
        tenant = await session.get(Tenant, world.tenant_id)
        assert tenant is not None
        tenant.plan = plan
        session.add(
            BillingAccount(
                tenant_id=world.tenant_id,
                legal_name="Client Ltd",
                address="1 Main Street, Toronto",
                country="CA",
                tax_status=tax_status,
                billing_email="billing@client.example",
                locale="en",
                subscribed_on=date(2026, 10, 1),
            )
        )
    return world


async def october_invoice(client: httpx.AsyncClient, world: TenantWorld) -> dict[str, Any]:
    """Run October's invoicing as the operator; the tenant's October invoice."""
    run = await client.post(
        f"{URL}/invoicing-runs", headers=world.operator.headers, json={"month": OCTOBER}
    )
    assert run.status_code == 200, run.text
    listed = await client.get(
        f"{URL}/invoices",
        headers=world.operator.headers,
        params={"tenant_id": world.tenant_id, "kind": "invoice"},
    )
    assert listed.status_code == 200, listed.text
    [invoice] = [i for i in listed.json()["items"] if i["period_start"] == OCTOBER]
    assert invoice["id"] in run.json()["invoice_ids"] or run.json()["invoice_ids"] == []
    return invoice  # type: ignore[no-any-return]


async def test_the_operator_runs_the_month_end_and_the_tenants_admin_reads_its_invoice(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await billed_world(client, sessions)
    invoice = await october_invoice(client, world)
    assert invoice["number"].startswith("F2026-")
    assert (invoice["period_start"], invoice["period_end"]) == (OCTOBER, "2026-10-31")
    assert Decimal(invoice["total"]) == Decimal("19.99")
    assert invoice["vat_mention"] == (
        "VAT not applicable — Article 259-1 of the French General Tax Code"
    )

    # Run again: nothing new for this tenant.
    again = await client.post(
        f"{URL}/invoicing-runs", headers=world.operator.headers, json={"month": OCTOBER}
    )
    assert again.status_code == 200
    assert invoice["id"] not in again.json()["invoice_ids"]

    detail = await client.get(f"{URL}/invoices/{invoice['id']}", headers=world.admin.headers)
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert [(ln["kind"], Decimal(ln["amount"])) for ln in body["lines"]] == [
        ("plan", Decimal("19.99"))
    ]
    assert body["buyer"]["legal_name"] == "Client Ltd"
    assert Decimal(body["vat_rate"]) == 0
    assert body["vat_mention"] == invoice["vat_mention"]

    mine = await client.get(f"{URL}/invoices", headers=world.admin.headers)
    assert mine.status_code == 200
    assert {i["tenant_id"] for i in mine.json()["items"]} == {world.tenant_id}
    for role in ("supervisor", "agent"):
        refused = await client.get(f"{URL}/invoices", headers=world.headers(role))
        assert refused.status_code == 403, refused.text
        refused = await client.get(f"{URL}/invoices/{invoice['id']}", headers=world.headers(role))
        assert refused.status_code == 403, refused.text


async def test_another_tenants_invoice_is_not_found(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await billed_world(client, sessions, tax_status="fr")
    other = await make_world(client, sessions)
    invoice = await october_invoice(client, world)
    assert invoice["vat_mention"] is None
    assert Decimal(invoice["vat_total"]) == Decimal("4.00")  # 20 % of 19.99, rounded once
    seen = await client.get(f"{URL}/invoices/{invoice['id']}", headers=other.admin.headers)
    assert seen.status_code == 404
    listed = await client.get(
        f"{URL}/invoices", headers=other.admin.headers, params={"tenant_id": world.tenant_id}
    )
    assert listed.status_code == 200
    assert listed.json()["items"] == []
    credited = await client.post(
        f"{URL}/invoices/{invoice['id']}/credit-notes",
        headers=other.admin.headers,
        json={"reason": "mine now"},
    )
    assert credited.status_code == 403


async def test_a_credit_note_cancels_an_invoice_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await billed_world(client, sessions)
    invoice = await october_invoice(client, world)
    path = f"{URL}/invoices/{invoice['id']}/credit-notes"

    refused = await client.post(path, headers=world.admin.headers, json={"reason": "Too dear"})
    assert refused.status_code == 403
    blank = await client.post(path, headers=world.operator.headers, json={"reason": ""})
    assert blank.status_code == 422
    assert fields_of(blank) == {"body.reason"}

    made = await client.post(path, headers=world.operator.headers, json={"reason": "Wrong plan"})
    assert made.status_code == 201, made.text
    note = made.json()
    assert note["number"].startswith("A2026-")
    assert (note["kind"], note["credits_invoice_id"]) == ("credit_note", invoice["id"])
    assert Decimal(note["total"]) == -Decimal(invoice["total"])
    assert [Decimal(ln["amount"]) for ln in note["lines"]] == [Decimal("-19.99")]

    twice = await client.post(path, headers=world.operator.headers, json={"reason": "Again"})
    assert twice.status_code == 409
    assert twice.json()["error_id"] == "invoice-already-credited"
    of_note = await client.post(
        f"{URL}/invoices/{note['id']}/credit-notes",
        headers=world.operator.headers,
        json={"reason": "Again"},
    )
    assert of_note.status_code == 409
    missing = await client.post(
        f"{URL}/invoices/999999999/credit-notes",
        headers=world.operator.headers,
        json={"reason": "Nothing"},
    )
    assert missing.status_code == 404

    notes = await client.get(
        f"{URL}/invoices", headers=world.admin.headers, params={"kind": "credit_note"}
    )
    assert [n["id"] for n in notes.json()["items"]] == [note["id"]]


async def test_a_run_is_the_operators_and_names_a_first_day(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    refused = await client.post(
        f"{URL}/invoicing-runs", headers=world.admin.headers, json={"month": OCTOBER}
    )
    assert refused.status_code == 403
    bad = await client.post(
        f"{URL}/invoicing-runs", headers=world.operator.headers, json={"month": "2026-10-15"}
    )
    assert bad.status_code == 422
    assert fields_of(bad) == {"body.month"}
    everything = await client.post(f"{URL}/invoicing-runs", headers=world.operator.headers, json={})
    assert everything.status_code == 200, everything.text
    assert set(everything.json()) == {"invoice_ids", "unrated_calls", "warnings", "failed"}
