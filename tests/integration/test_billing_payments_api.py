"""Payments, invoice states, disputes, the statement and dunning against the real Postgres:
partial payments add up, an overpayment or a payment on a credited invoice is refused, a
dispute is accepted within 30 days of issue only, the statement carries the late charges,
and the dunning pass suspends past the grace and a payment in full reactivates."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email import message_from_bytes
from email.message import Message
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit.models import AuditEntry
from graam_pbx.billing.dunning import half_year_of, run_dunning
from graam_pbx.billing.models import BillingAccount, DunningStep, Invoice, Payment
from graam_pbx.mail import SmtpRelay
from graam_pbx.settings import Settings
from graam_pbx.tenants.models import Tenant
from tests.dunning_rows import make_account, make_credit_note, make_invoice
from tests.factories import TenantWorld, fields_of, make_world

Sessions = async_sessionmaker[AsyncSession]
BILLING = "/api/v1/billing"
PARIS = ZoneInfo("Europe/Paris")


def today() -> date:
    """Today on the billing clock (the default Europe/Paris)."""
    return datetime.now(PARIS).date()


async def pay(
    client: httpx.AsyncClient, world: TenantWorld, invoice_id: int, amount: str, **more: str
) -> httpx.Response:
    return await client.post(
        f"{BILLING}/invoices/{invoice_id}/payments",
        headers=world.operator.headers,
        json={"amount": amount, "received_on": today().isoformat(), **more},
    )


async def payments_of(
    client: httpx.AsyncClient, world: TenantWorld, invoice_id: int
) -> dict[str, Any]:
    answer = await client.get(
        f"{BILLING}/invoices/{invoice_id}/payments", headers=world.admin.headers
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def stored(sessions: Sessions, invoice_id: int) -> Invoice:
    async with sessions() as session:
        invoice = await session.get(Invoice, invoice_id)
        assert invoice is not None
        return invoice


async def test_partial_payments_add_up_until_paid(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    invoice = await make_invoice(sessions, world.tenant_id, total="1200.00", issued_on=today())
    assert (await payments_of(client, world, invoice.id))["status"] == "issued"

    first = await pay(client, world, invoice.id, "200.50", reference="SEPA 1")
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "partly_paid"
    assert first.json()["paid_amount"] == "200.5000"
    assert first.json()["paid_on"] is None

    second = await pay(client, world, invoice.id, "999.50", reference="SEPA 2")
    assert second.status_code == 201, second.text
    body = second.json()
    assert body["status"] == "paid"
    assert Decimal(body["paid_amount"]) == Decimal("1200.00")
    assert body["paid_on"] == today().isoformat()
    assert [(Decimal(p["amount"]), p["reference"]) for p in body["payments"]] == [
        (Decimal("200.50"), "SEPA 1"),
        (Decimal("999.50"), "SEPA 2"),
    ]
    assert all(p["recorded_by"] == world.operator.email for p in body["payments"])
    assert (await payments_of(client, world, invoice.id))["status"] == "paid"

    async with sessions() as session:
        actions = (
            await session.scalars(
                select(AuditEntry.action).where(
                    AuditEntry.object_type == "invoice", AuditEntry.object_id == str(invoice.id)
                )
            )
        ).all()
    assert actions == ["record-payment", "record-payment"]


async def test_an_overpayment_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    invoice = await make_invoice(sessions, world.tenant_id, total="100.00", issued_on=today())
    assert (await pay(client, world, invoice.id, "60.00")).status_code == 201

    over = await pay(client, world, invoice.id, "40.01")
    assert over.status_code == 409, over.text
    assert over.json()["error_id"] == "overpayment"
    assert (await stored(sessions, invoice.id)).paid_amount == Decimal("60.00")
    async with sessions() as session:
        count = len(
            (await session.scalars(select(Payment).where(Payment.invoice_id == invoice.id))).all()
        )
    assert count == 1
    assert (await pay(client, world, invoice.id, "40.00")).status_code == 201
    assert (await pay(client, world, invoice.id, "0.01")).status_code == 409


async def test_a_credited_invoice_takes_no_payment(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    invoice = await make_invoice(sessions, world.tenant_id, total="100.00", issued_on=today())
    await make_credit_note(sessions, invoice, issued_on=today())
    refused = await pay(client, world, invoice.id, "10.00")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error_id"] == "invoice-credited"
    assert (await payments_of(client, world, invoice.id))["status"] == "credited"


@pytest.mark.parametrize(
    ("amount", "field"),
    [
        ("0", "amount"),
        ("-5.00", "amount"),
        ("1.234", "amount"),
        (12.5, "amount"),
        ("NaN", "amount"),
        ("ten", "amount"),
    ],
)
async def test_a_bad_amount_is_refused(
    client: httpx.AsyncClient, sessions: Sessions, amount: object, field: str
) -> None:
    world = await make_world(client, sessions)
    invoice = await make_invoice(sessions, world.tenant_id, total="100.00", issued_on=today())
    answer = await client.post(
        f"{BILLING}/invoices/{invoice.id}/payments",
        headers=world.operator.headers,
        json={"amount": amount, "received_on": today().isoformat()},
    )
    assert answer.status_code == 422, answer.text
    assert any(field in f for f in fields_of(answer)), answer.text


async def test_only_operators_record_payments_and_tenants_see_their_own(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world, other = await make_world(client, sessions), await make_world(client, sessions)
    invoice = await make_invoice(sessions, world.tenant_id, total="100.00", issued_on=today())
    by_admin = await client.post(
        f"{BILLING}/invoices/{invoice.id}/payments",
        headers=world.admin.headers,
        json={"amount": "10.00", "received_on": today().isoformat()},
    )
    assert by_admin.status_code == 403
    future = await pay(
        client, world, invoice.id, "10.00", received_on=(today() + timedelta(days=2)).isoformat()
    )
    assert future.status_code == 422 and fields_of(future) == {"body.received_on"}
    elsewhere = await client.get(
        f"{BILLING}/invoices/{invoice.id}/payments", headers=other.admin.headers
    )
    assert elsewhere.status_code == 404
    for role in ("supervisor", "agent"):
        hidden = await client.get(
            f"{BILLING}/invoices/{invoice.id}/payments", headers=world.headers(role)
        )
        assert hidden.status_code == 403


async def test_states_overdue_and_disputed(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    late = await make_invoice(
        sessions,
        world.tenant_id,
        total="100.00",
        issued_on=today() - timedelta(days=25),
        due_on=today() - timedelta(days=2),
    )
    assert (await payments_of(client, world, late.id))["status"] == "overdue"
    assert (await pay(client, world, late.id, "10.00")).json()["status"] == "overdue"
    opened = await client.post(
        f"{BILLING}/invoices/{late.id}/disputes",
        headers=world.admin.headers,
        json={"reason": "Not our calls."},
    )
    assert opened.status_code == 201, opened.text
    assert (await payments_of(client, world, late.id))["status"] == "disputed"


async def test_a_dispute_within_thirty_days_of_issue_only(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    in_time = await make_invoice(
        sessions, world.tenant_id, total="100.00", issued_on=today() - timedelta(days=30)
    )
    too_late_issue = today() - timedelta(days=31)
    too_late = await make_invoice(
        sessions, world.tenant_id, total="100.00", issued_on=too_late_issue
    )
    url = f"{BILLING}/invoices/{{}}/disputes"

    by_supervisor = await client.post(
        url.format(in_time.id), headers=world.supervisor.headers, json={"reason": "Wrong."}
    )
    assert by_supervisor.status_code == 403
    opened = await client.post(
        url.format(in_time.id), headers=world.admin.headers, json={"reason": " Wrong calls. "}
    )
    assert opened.status_code == 201, opened.text
    dispute = opened.json()
    assert dispute["state"] == "open" and dispute["reason"] == "Wrong calls."
    assert dispute["opened_by"] == world.admin.email
    again = await client.post(
        url.format(in_time.id), headers=world.admin.headers, json={"reason": "Again."}
    )
    assert again.status_code == 409 and again.json()["error_id"] == "dispute-open"

    late = await client.post(
        url.format(too_late.id), headers=world.admin.headers, json={"reason": "Wrong."}
    )
    assert late.status_code == 422, late.text
    ended_on = (too_late_issue + timedelta(days=30)).isoformat()
    assert late.json()["details"]["errors"] == [
        {"field": "invoice", "reason": f"contest period ended on {ended_on}"}
    ]

    listed = await client.get(f"{BILLING}/disputes", headers=world.admin.headers)
    assert [d["id"] for d in listed.json()["items"]] == [dispute["id"]]
    by_operator = await client.get(
        f"{BILLING}/disputes",
        headers=world.operator.headers,
        params={"tenant_id": world.tenant_id, "state": "open"},
    )
    assert [d["id"] for d in by_operator.json()["items"]] == [dispute["id"]]
    hidden = await client.get(f"{BILLING}/disputes", headers=world.supervisor.headers)
    assert hidden.status_code == 403

    resolve = f"{BILLING}/disputes/{dispute['id']}"
    by_admin = await client.patch(
        resolve, headers=world.admin.headers, json={"state": "accepted", "resolution": "Yes."}
    )
    assert by_admin.status_code == 403
    accepted = await client.patch(
        resolve,
        headers=world.operator.headers,
        json={"state": "accepted", "resolution": "Credit note follows."},
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["state"] == "accepted"
    assert accepted.json()["resolution"] == "Credit note follows."
    assert accepted.json()["resolved_at"] is not None
    twice = await client.patch(
        resolve, headers=world.operator.headers, json={"state": "rejected", "resolution": "No."}
    )
    assert twice.status_code == 409
    # Resolved: a new dispute may be opened within the period.
    reopened = await client.post(
        url.format(in_time.id), headers=world.admin.headers, json={"reason": "Still wrong."}
    )
    assert reopened.status_code == 201, reopened.text


async def set_rate(client: httpx.AsyncClient, world: TenantWorld, day: date, rate: str) -> None:
    answer = await client.put(
        f"{BILLING}/legal-interest-rates/{half_year_of(day).isoformat()}",
        headers=world.operator.headers,
        json={"professional_rate": rate, "individual_rate": "6.65"},
    )
    assert answer.status_code == 200, answer.text


async def test_legal_rates_are_the_operators(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    seeded = await client.get(
        f"{BILLING}/legal-interest-rates/2025-07-01", headers=world.operator.headers
    )
    assert seeded.status_code == 200, seeded.text
    assert Decimal(seeded.json()["professional_rate"]) == Decimal("2.76")
    assert Decimal(seeded.json()["individual_rate"]) == Decimal("6.65")
    mid = await client.put(
        f"{BILLING}/legal-interest-rates/2026-03-01",
        headers=world.operator.headers,
        json={"professional_rate": "3.00", "individual_rate": "6.00"},
    )
    assert mid.status_code == 422 and fields_of(mid) == {"path.starts_on"}
    by_admin = await client.get(
        f"{BILLING}/legal-interest-rates/2025-07-01", headers=world.admin.headers
    )
    assert by_admin.status_code == 403
    listed = await client.get(f"{BILLING}/legal-interest-rates", headers=world.operator.headers)
    assert [r["starts_on"] for r in listed.json()][:4] == [
        "2024-01-01",
        "2024-07-01",
        "2025-01-01",
        "2025-07-01",
    ]


async def test_the_statement_carries_balances_and_late_charges(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world, other = await make_world(client, sessions), await make_world(client, sessions)
    day = today()
    due = day - timedelta(days=10)
    # Every day from the due date to today at 2.76 % (set for each half-year they span).
    for each in {due + timedelta(days=1), day}:
        await set_rate(client, world, each, "2.76")
    late = await make_invoice(
        sessions, world.tenant_id, total="1200.00", issued_on=due - timedelta(days=30), due_on=due
    )
    paid = await make_invoice(sessions, world.tenant_id, total="240.00", issued_on=day)
    partly = await make_invoice(sessions, world.tenant_id, total="120.00", issued_on=day)
    assert (await pay(client, world, paid.id, "240.00")).status_code == 201
    assert (await pay(client, world, partly.id, "20.00")).status_code == 201

    answer = await client.get(f"{BILLING}/statement", headers=world.admin.headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    lines = {line["invoice_id"]: line for line in body["invoices"]}
    # 1200 * 3 * 2.76 % * 10 / 365 = 993.6 / 365 = 2.72219... -> 2.72
    assert lines[late.id]["status"] == "overdue"
    assert lines[late.id]["days_late"] == 10
    assert Decimal(lines[late.id]["late_interest"]) == Decimal("2.72")
    assert Decimal(lines[late.id]["indemnity"]) == Decimal("40.00")
    assert Decimal(lines[late.id]["balance"]) == Decimal("1200.00")
    assert lines[paid.id]["status"] == "paid"
    assert Decimal(lines[paid.id]["balance"]) == 0
    assert Decimal(lines[paid.id]["indemnity"]) == 0
    assert lines[partly.id]["status"] == "partly_paid"
    assert Decimal(lines[partly.id]["balance"]) == Decimal("100.00")
    assert Decimal(body["total"]) == Decimal("1560.00")
    assert Decimal(body["paid"]) == Decimal("260.00")
    assert Decimal(body["balance"]) == Decimal("1300.00")
    assert Decimal(body["late_interest"]) == Decimal("2.72")
    assert Decimal(body["indemnities"]) == Decimal("40.00")
    assert Decimal(body["amount_due"]) == Decimal("1342.72")

    by_operator = await client.get(
        f"{BILLING}/statement",
        headers=world.operator.headers,
        params={"tenant_id": world.tenant_id},
    )
    assert by_operator.json() == body
    unnamed = await client.get(f"{BILLING}/statement", headers=world.operator.headers)
    assert unnamed.status_code == 422 and fields_of(unnamed) == {"query.tenant_id"}
    theirs = await client.get(f"{BILLING}/statement", headers=other.admin.headers)
    assert theirs.json()["invoices"] == []
    assert (
        await client.get(f"{BILLING}/statement", headers=world.supervisor.headers)
    ).status_code == 403


# ---- dunning -----------------------------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.received: list[Message] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(message_from_bytes(envelope.original_content or b""))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.received if m["To"] == address]


@pytest.fixture(scope="module")
async def relay() -> AsyncIterator[tuple[Inbox, SmtpRelay]]:
    inbox = Inbox()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(inbox, hostname="smtp.graam.test"), "127.0.0.1", 0
    )
    port: int = server.sockets[0].getsockname()[1]
    yield inbox, SmtpRelay(host="127.0.0.1", port=port, sender="billing@operator.example")
    server.close()
    await server.wait_closed()


async def state_of(sessions: Sessions, tenant_id: int) -> tuple[str, datetime | None, list[str]]:
    """The tenant's status, its suspension for payment, and its dunning steps in order."""
    async with sessions() as session:
        tenant = await session.get(Tenant, tenant_id)
        account = await session.get(BillingAccount, tenant_id)
        steps = await session.scalars(
            select(DunningStep.step)
            .where(DunningStep.tenant_id == tenant_id)
            .order_by(DunningStep.id)
        )
        assert tenant is not None and account is not None
        return tenant.status, account.suspended_for_payment_at, list(steps)


async def test_dunning_suspends_past_the_grace_and_a_payment_in_full_reactivates(
    client: httpx.AsyncClient, sessions: Sessions, relay: tuple[Inbox, SmtpRelay]
) -> None:
    inbox, smtp = relay
    world = await make_world(client, sessions)
    email = f"pay-{world.tenant_id}@client.example"
    await make_account(sessions, world.tenant_id, grace_days=15, billing_email=email)
    day = today()
    overdue = await make_invoice(  # past due, within the grace: a notice only
        sessions, world.tenant_id, total="60.00", issued_on=day - timedelta(days=40)
    )
    settings, now = Settings(), datetime.now(UTC)

    await run_dunning(sessions, smtp, settings, now)
    assert await state_of(sessions, world.tenant_id) == ("active", None, ["overdue"])
    [notice] = inbox.to(email)
    assert notice["Subject"] == f"Invoice {overdue.number} is overdue"
    text = notice.get_payload(decode=True)
    assert isinstance(text, bytes) and "€60.00" in text.decode(), text

    unpaid = await make_invoice(  # past due + 15 days: the tenant is suspended
        sessions, world.tenant_id, total="1200.00", issued_on=day - timedelta(days=50)
    )
    await run_dunning(sessions, smtp, settings, now)
    status, since, steps = await state_of(sessions, world.tenant_id)
    assert (status, steps) == ("suspended", ["overdue", "overdue", "suspended"])
    assert since == now
    subjects = [m["Subject"] for m in inbox.to(email)]
    assert subjects[1:] == [
        f"Invoice {unpaid.number} is overdue",
        f"Service suspended: invoice {unpaid.number} is unpaid",
    ]
    await run_dunning(sessions, smtp, settings, now)  # nothing new
    assert len(inbox.to(email)) == 3
    async with sessions() as session:
        emailed = (
            await session.scalars(
                select(DunningStep.emailed_at).where(DunningStep.tenant_id == world.tenant_id)
            )
        ).all()
    assert all(at is not None for at in emailed)

    # Paying the invoice past the grace is not enough: the other one is overdue too.
    assert (await pay(client, world, unpaid.id, "1200.00")).status_code == 201
    assert (await state_of(sessions, world.tenant_id))[0] == "suspended"
    settled = await pay(client, world, overdue.id, "60.00")
    assert settled.status_code == 201
    assert await state_of(sessions, world.tenant_id) == (
        "active",
        None,
        ["overdue", "overdue", "suspended", "reactivated"],
    )
    async with sessions() as session:
        actions = (
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.tenant_id == world.tenant_id, AuditEntry.actor_role == "system")
                .order_by(AuditEntry.id)
            )
        ).all()
    assert actions == [
        "invoice-overdue",
        "invoice-overdue",
        "suspend-for-payment",
        "reactivate-for-payment",
    ]


async def test_a_disputed_invoice_is_not_dunned_until_the_dispute_is_rejected(
    client: httpx.AsyncClient, sessions: Sessions, relay: tuple[Inbox, SmtpRelay]
) -> None:
    world = await make_world(client, sessions)
    await make_account(sessions, world.tenant_id, grace_days=0)
    invoice = await make_invoice(
        sessions,
        world.tenant_id,
        total="100.00",
        issued_on=today() - timedelta(days=29),
        due_on=today() - timedelta(days=1),
    )
    opened = await client.post(
        f"{BILLING}/invoices/{invoice.id}/disputes",
        headers=world.admin.headers,
        json={"reason": "Not ours."},
    )
    assert opened.status_code == 201, opened.text
    await run_dunning(sessions, relay[1], Settings(), datetime.now(UTC))
    assert await state_of(sessions, world.tenant_id) == ("active", None, [])

    rejected = await client.patch(
        f"{BILLING}/disputes/{opened.json()['id']}",
        headers=world.operator.headers,
        json={"state": "rejected", "resolution": "They were yours."},
    )
    assert rejected.status_code == 200, rejected.text
    await run_dunning(sessions, relay[1], Settings(), datetime.now(UTC))
    status, since, steps = await state_of(sessions, world.tenant_id)
    assert (status, steps) == ("suspended", ["overdue", "suspended"])
    assert since is not None


async def test_a_tenant_the_operator_suspended_is_never_reactivated_by_billing(
    client: httpx.AsyncClient, sessions: Sessions, relay: tuple[Inbox, SmtpRelay]
) -> None:
    world = await make_world(client, sessions)
    await make_account(sessions, world.tenant_id, grace_days=0)
    invoice = await make_invoice(
        sessions, world.tenant_id, total="100.00", issued_on=today() - timedelta(days=40)
    )
    by_hand = await client.patch(
        f"/api/v1/tenants/{world.tenant_id}",
        headers=world.operator.headers,
        json={"status": "suspended"},
    )
    assert by_hand.status_code == 200, by_hand.text
    await run_dunning(sessions, relay[1], Settings(), datetime.now(UTC))
    assert await state_of(sessions, world.tenant_id) == ("suspended", None, ["overdue"])
    assert (await pay(client, world, invoice.id, "100.00")).status_code == 201
    await run_dunning(sessions, relay[1], Settings(), datetime.now(UTC))
    assert await state_of(sessions, world.tenant_id) == ("suspended", None, ["overdue"])


async def test_a_suspension_the_operator_took_over_by_hand_is_never_lifted_by_billing(
    client: httpx.AsyncClient, sessions: Sessions, relay: tuple[Inbox, SmtpRelay]
) -> None:
    world = await make_world(client, sessions)
    await make_account(sessions, world.tenant_id, grace_days=0)
    invoice = await make_invoice(
        sessions, world.tenant_id, total="100.00", issued_on=today() - timedelta(days=40)
    )
    await run_dunning(sessions, relay[1], Settings(), datetime.now(UTC))
    status, since, steps = await state_of(sessions, world.tenant_id)
    assert (status, steps) == ("suspended", ["overdue", "suspended"])
    assert since is not None
    # The operator suspends the tenant by hand too (say, for fraud), before any dunning pass
    # has seen it: the suspension is now the operator's.
    by_hand = await client.patch(
        f"/api/v1/tenants/{world.tenant_id}",
        headers=world.operator.headers,
        json={"status": "suspended"},
    )
    assert by_hand.status_code == 200, by_hand.text
    assert (await pay(client, world, invoice.id, "100.00")).status_code == 201
    assert await state_of(sessions, world.tenant_id) == (
        "suspended",
        None,
        ["overdue", "suspended"],
    )
    await run_dunning(sessions, relay[1], Settings(), datetime.now(UTC))
    assert await state_of(sessions, world.tenant_id) == (
        "suspended",
        None,
        ["overdue", "suspended"],
    )


async def test_a_tenant_that_gave_notice_while_suspended_is_terminating_once_paid(
    client: httpx.AsyncClient, sessions: Sessions, relay: tuple[Inbox, SmtpRelay]
) -> None:
    world = await make_world(client, sessions)
    await make_account(sessions, world.tenant_id, grace_days=0)
    invoice = await make_invoice(
        sessions, world.tenant_id, total="100.00", issued_on=today() - timedelta(days=40)
    )
    await run_dunning(sessions, relay[1], Settings(), datetime.now(UTC))
    assert (await state_of(sessions, world.tenant_id))[0] == "suspended"
    notice = await client.post(
        f"{BILLING}/termination",
        headers=world.admin.headers,
        json={"last_day": (today() + timedelta(days=40)).isoformat()},
    )
    assert notice.status_code == 201, notice.text
    assert (await state_of(sessions, world.tenant_id))[0] == "suspended"
    assert (await pay(client, world, invoice.id, "100.00")).status_code == 201
    assert await state_of(sessions, world.tenant_id) == (
        "terminating",
        None,
        ["overdue", "suspended", "reactivated"],
    )
