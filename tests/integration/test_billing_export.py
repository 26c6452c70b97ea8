"""A tenant's whole data exported (and nothing of another tenant's), and a person's data
erased where billing does not need it to stay."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.auth.models import User
from graam_pbx.billing.models import Invoice, InvoiceDocument, InvoiceLine, Payment, RatedCall
from graam_pbx.cdr.models import Cdr
from graam_pbx.queue_calls.models import QueueCall
from tests.factories import TenantWorld, fields_of, make_world, unique

CALLER = "+33612345678"


def cdr(tenant_id: int, **values: Any) -> Cdr:
    started = datetime.now(UTC) - timedelta(minutes=5)
    row: dict[str, Any] = {
        "started_at": started,
        "system_name": "test",
        "uniqueid": unique("u"),
        "sequence": 0,
        "linkedid": unique("l"),
        "ended_at": started + timedelta(seconds=30),
        "duration": Decimal("30"),
        "billsec": Decimal("28.5"),
        "disposition": "ANSWERED",
        "tenant_id": tenant_id,
        "direction": "inbound",
        "src": CALLER,
        "dst": "201",
        "dcontext": "tenant-in",
        "clid": f'"Jean Dupont" <{CALLER}>',
        "channel": "PJSIP/trunk-0001",
        "dstchannel": "PJSIP/201-0001",
        "lastapp": "Dial",
        "lastdata": "PJSIP/201",
        "accountcode": "",
        "peeraccount": "",
        "amaflags": "DOCUMENTATION",
        "userfield": "",
        "source": "ami",
    }
    row.update(values)
    return Cdr(**row)


async def billed_world(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> tuple[TenantWorld, Invoice, list[Cdr]]:
    """A tenant with an inbound, an internal and a billable outbound leg, its invoice (a
    line, a payment, a document) and the outbound leg's rated call."""
    world = await make_world(client, sessions)
    async with sessions() as session, session.begin():
        await session.execute(text("SELECT cdrs_ensure_partition(now())"))
        legs = [
            cdr(world.tenant_id),
            cdr(
                world.tenant_id,
                direction="outbound",
                billable=True,
                src="+33142685300",
                dst=CALLER,
                to_number=CALLER,
                clid='"Agent" <201>',
                agent_user_id=world.agent.user_id,
            ),
            cdr(
                world.tenant_id,
                direction="internal",
                src="201",
                dst="202",
                clid='"Agent" <201>',
                agent_user_id=world.agent.user_id,
            ),
        ]
        session.add_all(legs)
        today = datetime.now(UTC).date()
        bill = Invoice(
            number=unique("E")[:32],
            tenant_id=world.tenant_id,
            period_start=today.replace(day=1),
            period_end=today,
            issued_on=today,
            due_on=today + timedelta(days=30),
            locale="fr",
            tax_status="fr",
            vat_rate=Decimal("20.00"),
            net_total=Decimal("10"),
            vat_total=Decimal("2"),
            total=Decimal("12"),
            seller={"name": "seller"},
            buyer={"name": f"buyer {world.slug}"},
        )
        session.add(bill)
        await session.flush()
        session.add(
            InvoiceLine(
                invoice_id=bill.id,
                position=1,
                kind="calls",
                label="Calls to FR mobile",
                quantity=Decimal(1),
                exact_amount=Decimal("0.023750"),
                amount=Decimal("0.02"),
            )
        )
        session.add(
            Payment(
                invoice_id=bill.id,
                tenant_id=world.tenant_id,
                amount=Decimal("12"),
                received_on=today,
                recorded_by="test",
            )
        )
        session.add(
            InvoiceDocument(
                invoice_id=bill.id, format="pdf", content=b"%PDF-1.7 test", sha256="0" * 64
            )
        )
        session.add(
            RatedCall(
                cdr_id=legs[1].id,
                started_at=legs[1].started_at,
                tenant_id=world.tenant_id,
                period=today.replace(day=1),
                to_number=CALLER,
                origin_country="FR",
                destination_country="FR",
                number_type="mobile",
                billsec=legs[1].billsec,
                billed_seconds=29,
                price_per_minute=Decimal("0.05"),
                connect_fee=Decimal(0),
                amount=Decimal("0.024167"),
                invoice_id=bill.id,
            )
        )
    return world, bill, legs


def read_zip(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def json_lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode().splitlines() if line]


async def test_an_export_holds_the_tenants_data_and_nothing_of_another(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world, bill, legs = await billed_world(client, sessions)
    other, other_bill, other_legs = await billed_world(client, sessions)

    answer = await client.get("/api/v1/billing/export", headers=world.admin.headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    files = read_zip(answer.content)

    manifest = json.loads(files["manifest.json"])
    assert manifest["tenant_id"] == world.tenant_id
    assert json_lines(files["tenants.jsonl"])[0]["slug"] == world.slug
    users = json_lines(files["users.jsonl"])
    assert {u["email"] for u in users} == {
        world.admin.email,
        world.supervisor.email,
        world.agent.email,
    }
    assert not any(key for u in users for key in u if "password" in key or "token" in key)
    invoices = json_lines(files["invoices.jsonl"])
    assert [i["number"] for i in invoices] == [bill.number]
    assert json_lines(files["invoice_lines.jsonl"])[0]["exact_amount"] == "0.023750"
    assert [p["amount"] for p in json_lines(files["payments.jsonl"])] == ["12.0000"]
    assert [r["cdr_id"] for r in json_lines(files["rated_calls.jsonl"])] == [legs[1].id]
    assert files[f"invoices/{bill.number}.pdf"] == b"%PDF-1.7 test"
    cdr_ids = {int(line.split(",")[0]) for line in files["cdrs.csv"].decode().splitlines()[1:]}
    assert cdr_ids == {leg.id for leg in legs}
    assert json.loads(files["manifest.json"])["files"]["cdrs.csv"] == 3

    # Nothing of the other tenant anywhere: no row naming it, none of its identifiers.
    for name, data in files.items():
        if name.endswith(".jsonl"):
            for row in json_lines(data):
                assert row.get("tenant_id") in (None, world.tenant_id), name
        for marker in (other.slug, other.admin.email, other_bill.number):
            assert marker.encode() not in data, name
    assert not cdr_ids & {leg.id for leg in other_legs}

    # Operators name the tenant; other roles and other tenants are refused.
    by_operator = await client.get(
        "/api/v1/billing/export",
        params={"tenant_id": world.tenant_id},
        headers=world.operator.headers,
    )
    assert by_operator.status_code == 200
    assert json.loads(read_zip(by_operator.content)["manifest.json"])["tenant_id"] == (
        world.tenant_id
    )
    missing = await client.get("/api/v1/billing/export", headers=world.operator.headers)
    assert missing.status_code == 422
    assert fields_of(missing) == {"query.tenant_id"}
    refused = await client.get("/api/v1/billing/export", headers=world.supervisor.headers)
    assert refused.status_code == 403
    elsewhere = await client.get(
        "/api/v1/billing/export",
        params={"tenant_id": other.tenant_id},
        headers=world.admin.headers,
    )
    assert elsewhere.status_code == 404


async def test_erasing_a_caller_blanks_what_billing_does_not_need(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world, _, legs = await billed_world(client, sessions)
    _, _, other_legs = await billed_world(client, sessions)
    async with sessions() as session, session.begin():
        queue_call = QueueCall(
            tenant_id=world.tenant_id,
            queue_name="sales",
            entry=1,
            linkedid=legs[0].linkedid,
            caller_uniqueid=legs[0].uniqueid,
            caller_number=CALLER,
            entered_at=legs[0].started_at,
            ended_at=legs[0].ended_at,
            wait_seconds=Decimal("3.000"),
            outcome="answered",
            source="ami",
        )
        session.add(queue_call)

    answer = await client.post(
        "/api/v1/billing/erasures", headers=world.admin.headers, json={"phone_number": CALLER}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "kind": "phone_number",
        "user_id": None,
        "cdrs": 1,
        "queue_calls": 1,
        "archives_unreadable": [],
    }

    async with sessions() as session:
        inbound, outbound, internal = [
            await session.scalar(select(Cdr).where(Cdr.id == leg.id)) for leg in legs
        ]
        assert inbound is not None and outbound is not None and internal is not None
        assert (inbound.src, inbound.clid, inbound.dst) == ("", "", "201")
        # The billable outbound leg and its rated call keep the number until retention ends.
        assert (outbound.to_number, outbound.dst) == (CALLER, CALLER)
        rated = await session.get(RatedCall, outbound.id)
        assert rated is not None and rated.to_number == CALLER
        assert internal.src == "201"
        stored = await session.get(QueueCall, queue_call.id)
        assert stored is not None and stored.caller_number == ""
        # Another tenant's calls are its own controller's business.
        untouched = await session.scalar(select(Cdr).where(Cdr.id == other_legs[0].id))
        assert untouched is not None and untouched.src == CALLER

    both = await client.post(
        "/api/v1/billing/erasures",
        headers=world.admin.headers,
        json={"phone_number": CALLER, "user_id": world.agent.user_id},
    )
    assert both.status_code == 422
    bad = await client.post(
        "/api/v1/billing/erasures", headers=world.admin.headers, json={"phone_number": "0612"}
    )
    assert bad.status_code == 422
    assert fields_of(bad) == {"body.phone_number"}
    assert (
        await client.post(
            "/api/v1/billing/erasures",
            headers=world.supervisor.headers,
            json={"phone_number": CALLER},
        )
    ).status_code == 403


async def test_erasing_a_user_replaces_its_personal_fields_and_disables_it(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world, _, legs = await billed_world(client, sessions)
    other = await make_world(client, sessions)
    agent = world.agent.user_id

    elsewhere = await client.post(
        "/api/v1/billing/erasures", headers=other.admin.headers, json={"user_id": agent}
    )
    assert elsewhere.status_code == 404
    itself = await client.post(
        "/api/v1/billing/erasures",
        headers=world.admin.headers,
        json={"user_id": world.admin.user_id},
    )
    assert itself.status_code == 422
    assert fields_of(itself) == {"body.user_id"}

    answer = await client.post(
        "/api/v1/billing/erasures", headers=world.admin.headers, json={"user_id": agent}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "kind": "user",
        "user_id": agent,
        "cdrs": 2,
        "queue_calls": 0,
        "archives_unreadable": [],
    }

    async with sessions() as session:
        user = await session.get(User, agent)
        assert user is not None
        assert (user.email, user.display_name, user.disabled) == (
            f"erased-{agent}@invalid",
            "erased",
            True,
        )
        outbound = await session.scalar(select(Cdr).where(Cdr.id == legs[1].id))
        assert outbound is not None
        assert (outbound.clid, outbound.to_number) == ("", CALLER)
        rated = await session.get(RatedCall, legs[1].id)
        assert rated is not None and rated.to_number == CALLER
    # Its sessions ended with it.
    me = await client.get("/api/v1/auth/me", headers=world.agent.headers)
    assert me.status_code == 401
    # An operator erases any tenant's user.
    by_operator = await client.post(
        "/api/v1/billing/erasures",
        headers=world.operator.headers,
        json={"user_id": world.supervisor.user_id},
    )
    assert by_operator.status_code == 200, by_operator.text
