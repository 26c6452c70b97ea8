"""The invoice documents' API: a tenant's admins fetch their own invoice as HTML, Factur-X PDF
and XML and the CSV of its calls; operators any; another tenant's invoice does not exist for
them; each document is rendered once and served identical ever after."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import facturx
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.billing import documents, invoicing
from graam_pbx.billing.models import BillingAccount, Invoice, InvoiceDocument
from graam_pbx.billing.periods import previous_month
from graam_pbx.settings import Settings
from tests.factories import TenantWorld, make_world

DOCUMENTS = {
    "invoice.html": ("text/html; charset=utf-8", "inline", ".html"),
    "invoice.pdf": ("application/pdf", "attachment", ".pdf"),
    "invoice.xml": ("application/xml", "attachment", ".xml"),
    "calls.csv": ("text/csv; charset=utf-8", "attachment", "-calls.csv"),
}


async def invoiced_world(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> tuple[TenantWorld, Invoice]:
    world = await make_world(client, sessions)
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        session.add(
            BillingAccount(
                tenant_id=world.tenant_id,
                legal_name=f"Client {world.slug} SARL",
                address="7 rue des Essais, 33000 Bordeaux",
                country="FR",
                siren="732829320",
                vat_number="FR44732829320",
                tax_status="fr",
                billing_email=f"billing@{world.slug}.example",
                locale="fr",
                subscribed_on=previous_month(now.date()),
            )
        )
    await invoicing.invoice_due(sessions, Settings(), now, tenant_ids=[world.tenant_id])
    async with sessions() as session:
        invoice = await session.scalar(select(Invoice).where(Invoice.tenant_id == world.tenant_id))
    assert invoice is not None
    return world, invoice


def url(invoice_id: int, name: str) -> str:
    return f"/api/v1/billing/invoices/{invoice_id}/{name}"


async def test_admins_and_operators_fetch_each_document(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world, invoice = await invoiced_world(client, sessions)
    first: dict[str, bytes] = {}
    for name, (media_type, disposition, suffix) in DOCUMENTS.items():
        got = await client.get(url(invoice.id, name), headers=world.admin.headers)
        assert got.status_code == 200, got.text
        assert got.headers["content-type"] == media_type
        assert got.headers["content-disposition"] == (
            f'{disposition}; filename="{invoice.number}{suffix}"'
        )
        first[name] = got.content
        again = await client.get(url(invoice.id, name), headers=world.operator_headers)
        assert again.status_code == 200
        assert again.content == got.content  # stored once, served identical

    assert invoice.number in first["invoice.html"].decode()
    assert first["invoice.pdf"].startswith(b"%PDF")
    assert facturx.get_xml_from_pdf(first["invoice.pdf"], check_xsd=True)[1] == first["invoice.xml"]
    documents.validate_facturx(first["invoice.xml"])
    assert first["calls.csv"].decode().splitlines()[0] == ",".join(documents.CSV_COLUMNS)

    async with sessions() as session:
        stored = (
            await session.execute(
                select(InvoiceDocument.format, InvoiceDocument.sha256).where(
                    InvoiceDocument.invoice_id == invoice.id
                )
            )
        ).all()
    assert {fmt: sha for fmt, sha in stored} == {
        "html": hashlib.sha256(first["invoice.html"]).hexdigest(),
        "pdf": hashlib.sha256(first["invoice.pdf"]).hexdigest(),
        "xml": hashlib.sha256(first["invoice.xml"]).hexdigest(),
        "csv": hashlib.sha256(first["calls.csv"]).hexdigest(),
    }


async def test_another_tenant_and_other_roles_cannot(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, invoice = await invoiced_world(client, sessions)
    other = await make_world(client, sessions)
    for name in DOCUMENTS:
        refused = await client.get(url(invoice.id, name), headers=other.admin.headers)
        assert refused.status_code == 404, refused.text
        assert refused.json()["error_id"] == "not-found"
        supervisor = await client.get(url(invoice.id, name), headers=other.supervisor.headers)
        assert supervisor.status_code == 403
        anonymous = await client.get(url(invoice.id, name))
        assert anonymous.status_code == 401
    missing = await client.get(url(2**62, "invoice.pdf"), headers=other.operator_headers)
    assert missing.status_code == 404
    bad = await client.get(url(0, "invoice.pdf"), headers=other.operator_headers)
    assert bad.status_code == 422


def on_the_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def test_documents_are_rendered_off_the_event_loop(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world, invoice = await invoiced_world(client, sessions)
    seen: list[tuple[str, bool]] = []

    def spy(name: str, render: Callable[..., Any]) -> Callable[..., Any]:
        def spied(*args: Any) -> Any:
            seen.append((name, on_the_event_loop()))
            return render(*args)

        return spied

    # The layout (WeasyPrint) and the schema check (XSD files read from disk) block.
    monkeypatch.setattr(documents, "render_html", spy("html", documents.render_html))
    monkeypatch.setattr(documents, "validate_facturx", spy("xsd", documents.validate_facturx))
    for name in ("invoice.html", "invoice.xml", "invoice.pdf"):
        got = await client.get(url(invoice.id, name), headers=world.admin.headers)
        assert got.status_code == 200, got.text
    assert {name for name, _ in seen} == {"html", "xsd"}
    assert not any(on_loop for _, on_loop in seen), seen
