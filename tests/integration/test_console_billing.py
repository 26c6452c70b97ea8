"""The billing pages over HTTP: a tenant's invoices with their states and documents, the
statement and its late charges, contesting an invoice (refusals shown beside the field,
nothing written), the suspension notice, rates, and who may see what."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.billing import documents, dunning, invoicing, money
from graam_pbx.billing.models import (
    BillingAccount,
    Dispute,
    Invoice,
    InvoiceLine,
    LegalInterestRate,
    Payment,
    Price,
    Rate,
    RateDeck,
)
from graam_pbx.billing.periods import PAYMENT_DAYS
from graam_pbx.settings import Settings
from tests.conftest import RunningApp
from tests.factories import TenantWorld, make_world
from tests.integration.test_console_auth import console_client, log_in, page_csrf

Sessions = async_sessionmaker[AsyncSession]


def billing_today(settings: Settings) -> date:
    return datetime.now(ZoneInfo(settings.billing_timezone)).date()


def euros(amount: Decimal | str, locale: str = "en") -> str:
    """An amount as the page writes it in ``locale``."""
    return documents.money(Decimal(amount), "EUR", locale)


@dataclass(frozen=True)
class Seeded:
    """A tenant's invoices as the tests seed them: one overdue, one recent and partly paid."""

    overdue: Invoice
    recent: Invoice


async def seed_invoice(
    sessions: Sessions,
    settings: Settings,
    tenant_id: int,
    *,
    number: str,
    issued_on: date,
    net: Decimal,
    paid: Decimal = Decimal(0),
) -> Invoice:
    """An issued invoice of one plan line at 20 % VAT, written as the invoicing part writes
    one (rows, seller and buyer snapshots), with a payment of ``paid`` if any."""
    period_end = issued_on - timedelta(days=1)
    vat = money.vat_of(net, Decimal(20))
    async with sessions() as session, session.begin():
        invoice = Invoice(
            number=number,
            kind="invoice",
            tenant_id=tenant_id,
            period_start=period_end.replace(day=1),
            period_end=period_end,
            issued_on=issued_on,
            due_on=issued_on + timedelta(days=PAYMENT_DAYS),
            currency="EUR",
            locale="en",
            tax_status="fr",
            vat_rate=Decimal(20),
            net_total=net,
            vat_total=vat,
            total=net + vat,
            seller=invoicing.seller_of(settings),
            buyer={
                "tenant_id": tenant_id,
                "legal_name": f"Client {tenant_id} SAS",
                "address": "1 rue de la Paix\n75002 Paris",
                "country": "FR",
                "siren": "123456789",
                "vat_number": "FR40123456789",
                "billing_email": f"billing@{tenant_id}.example",
            },
            paid_amount=paid,
        )
        session.add(invoice)
        await session.flush()
        session.add(
            InvoiceLine(
                invoice_id=invoice.id,
                position=1,
                kind="plan",
                label="Plan Standard",
                quantity=Decimal(1),
                unit_price=net,
                exact_amount=net,
                amount=net,
            )
        )
        if paid:
            session.add(
                Payment(
                    invoice_id=invoice.id,
                    tenant_id=tenant_id,
                    amount=paid,
                    received_on=issued_on,
                    reference="test",
                    recorded_by="operator@test",
                )
            )
        # The legal rate the late charges need (any half-year before takes the latest one).
        await session.execute(
            insert(LegalInterestRate)
            .values(
                starts_on=date(2020, 1, 1),
                professional_rate=Decimal("4.000"),
                individual_rate=Decimal("5.000"),
            )
            .on_conflict_do_nothing()
        )
    return invoice


async def seed_credit_note(sessions: Sessions, invoice: Invoice) -> Invoice:
    """A credit note cancelling ``invoice`` whole, issued today."""
    async with sessions() as session, session.begin():
        original = await session.get(Invoice, invoice.id)
        assert original is not None
        note = Invoice(
            number=f"{original.number}-A",
            kind="credit_note",
            tenant_id=original.tenant_id,
            credits_invoice_id=original.id,
            period_start=original.period_start,
            period_end=original.period_end,
            issued_on=original.issued_on + timedelta(days=1),
            due_on=original.issued_on + timedelta(days=1),
            currency="EUR",
            locale="en",
            tax_status="fr",
            vat_rate=Decimal(20),
            net_total=-original.net_total,
            vat_total=-original.vat_total,
            total=-original.total,
            seller=original.seller,
            buyer=original.buyer,
        )
        session.add(note)
    return note


async def seed_invoices(sessions: Sessions, settings: Settings, world: TenantWorld) -> Seeded:
    """An invoice 70 days old (overdue, too old to contest), one 3 days old partly paid."""
    today = billing_today(settings)
    overdue = await seed_invoice(
        sessions,
        settings,
        world.tenant_id,
        number=f"C{world.tenant_id}-0001",
        issued_on=today - timedelta(days=70),
        net=Decimal("100.00"),
    )
    recent = await seed_invoice(
        sessions,
        settings,
        world.tenant_id,
        number=f"C{world.tenant_id}-0002",
        issued_on=today - timedelta(days=3),
        net=Decimal("50.00"),
        paid=Decimal("10.00"),
    )
    return Seeded(overdue, recent)


def row_of(text: str, invoice_id: int) -> str:
    match = re.search(rf'<tr data-invoice="{invoice_id}".*?</tr>', text, re.S)
    assert match is not None, text[:2000]
    return match.group(0)


async def test_an_admin_sees_invoices_with_their_states_the_statement_and_the_documents(
    client: httpx.AsyncClient, sessions: Sessions, running_app: RunningApp
) -> None:
    settings = running_app.runtime.settings
    world = await make_world(client, sessions)
    seeded = await seed_invoices(sessions, settings, world)
    today = billing_today(settings)
    async with sessions() as session:
        rates = await dunning.legal_rates(session)
    charges = dunning.late_charges(Decimal("120.00"), seeded.overdue.due_on, [], today, rates)
    assert charges.days_late == (today - seeded.overdue.due_on).days
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "admin")).status_code == 303
        shown = await browser.get("/billing")
        assert shown.status_code == 200, shown.text[:500]
        text = shown.text
        assert "Content-Security-Policy" in shown.headers
        overdue_row = row_of(text, seeded.overdue.id)
        assert seeded.overdue.number in overdue_row
        assert "Overdue" in overdue_row and euros("120.00") in overdue_row
        recent_row = row_of(text, seeded.recent.id)
        assert "Partly paid" in recent_row
        assert euros("60.00") in recent_row and euros("10.00") in recent_row
        # The newest first.
        assert text.index(seeded.recent.number) < text.index(seeded.overdue.number)
        # The statement: 120 + 50 still due, the overdue invoice's interest and €40.
        balance = re.search(r'id="statement-balance">([^<]*)<', text)
        interest = re.search(r'id="statement-interest">([^<]*)<', text)
        indemnities = re.search(r'id="statement-indemnities">([^<]*)<', text)
        assert balance and interest and indemnities
        assert balance.group(1) == euros("170.00")
        assert interest.group(1) == euros(charges.interest)
        assert charges.interest > 0
        assert indemnities.group(1) == euros("40.00")
        # Only the recent invoice may still be contested.
        options = re.findall(r'<option value="(\d+)"', text)
        assert options == [str(seeded.recent.id)]
        assert "Service suspended" not in text

        pdf = await browser.get(f"/billing/invoices/{seeded.overdue.id}/invoice.pdf")
        assert pdf.status_code == 200, pdf.text[:500]
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        assert f'filename="{seeded.overdue.number}.pdf"' in pdf.headers["content-disposition"]
        xml = await browser.get(f"/billing/invoices/{seeded.overdue.id}/invoice.xml")
        assert xml.status_code == 200
        assert seeded.overdue.number.encode() in xml.content
        csv = await browser.get(f"/billing/invoices/{seeded.recent.id}/calls.csv")
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        # The same bytes as the API serves (one stored document).
        api_pdf = await client.get(
            f"/api/v1/billing/invoices/{seeded.overdue.id}/invoice.pdf",
            headers=world.admin.headers,
        )
        assert api_pdf.status_code == 200 and api_pdf.content == pdf.content
        assert (
            await browser.get(f"/billing/invoices/{seeded.recent.id}/other.pdf")
        ).status_code == 404


async def test_only_the_tenants_admins_and_operators_see_its_billing(
    client: httpx.AsyncClient, sessions: Sessions, running_app: RunningApp
) -> None:
    settings = running_app.runtime.settings
    a = await make_world(client, sessions)
    b = await make_world(client, sessions)
    seeded = await seed_invoices(sessions, settings, a)
    document = f"/billing/invoices/{seeded.overdue.id}/invoice.xml"
    async with console_client(client) as browser:
        assert (await log_in(browser, b, "admin")).status_code == 303
        listed = await browser.get("/billing")
        assert listed.status_code == 200
        assert seeded.overdue.number not in listed.text
        assert "No invoice yet" in listed.text
        assert (await browser.get(document)).status_code == 404
        csrf = await page_csrf(browser, "/billing")
        contest = await browser.post(
            "/billing/disputes",
            data={"csrf_token": csrf, "invoice": str(seeded.recent.id), "reason": "peek"},
        )
        assert contest.status_code == 422
        assert 'id="invoice-error"' in contest.text
    for role in ("supervisor", "agent"):
        async with console_client(client) as browser:
            assert (await log_in(browser, a, role)).status_code == 303
            for path in ("/billing", "/billing/rates", document):
                assert (await browser.get(path)).status_code == 403, (role, path)
            assert "/billing" not in (await browser.get("/support")).text
    async with console_client(client) as browser:
        assert (await log_in(browser, a, "operator")).status_code == 303
        # An operator names the tenant it acts in; the links keep it.
        assert (await browser.get("/billing")).status_code == 422
        shown = await browser.get(f"/billing?tenant={a.tenant_id}")
        assert shown.status_code == 200
        assert seeded.overdue.number in shown.text
        assert f"/billing/invoices/{seeded.overdue.id}/invoice.pdf?tenant={a.tenant_id}" in (
            shown.text
        )
        assert (await browser.get(f"{document}?tenant={a.tenant_id}")).status_code == 200
        # Acting in another tenant, a's invoice is not there.
        assert (await browser.get(f"{document}?tenant={b.tenant_id}")).status_code == 404


async def test_contesting_an_invoice_within_30_days_and_the_refusals_beside_the_field(
    client: httpx.AsyncClient, sessions: Sessions, running_app: RunningApp
) -> None:
    settings = running_app.runtime.settings
    world = await make_world(client, sessions)
    seeded = await seed_invoices(sessions, settings, world)

    async def disputes() -> int:
        async with sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(Dispute)
                .where(Dispute.tenant_id == world.tenant_id)
            )
            return int(count or 0)

    async with console_client(client) as browser:
        assert (await log_in(browser, world, "admin")).status_code == 303
        csrf = await page_csrf(browser, "/billing")
        without_token = await browser.post(
            "/billing/disputes", data={"invoice": str(seeded.recent.id), "reason": "x"}
        )
        assert without_token.status_code == 403
        # Too late: 70 days after its issue.
        late = await browser.post(
            "/billing/disputes",
            data={"csrf_token": csrf, "invoice": str(seeded.overdue.id), "reason": "Too dear"},
        )
        assert late.status_code == 422
        error = re.search(r'<span[^>]*role="alert"[^>]*id="invoice-error">([^<]*)<', late.text)
        assert error and "30 days" in error.group(1)
        assert 'aria-invalid="true"' in late.text and "Too dear" in late.text
        # No reason, no invoice chosen.
        empty = await browser.post(
            "/billing/disputes", data={"csrf_token": csrf, "invoice": "", "reason": "  "}
        )
        assert empty.status_code == 422
        assert 'id="invoice-error"' in empty.text and 'id="reason-error"' in empty.text
        control = await browser.post(
            "/billing/disputes",
            data={"csrf_token": csrf, "invoice": str(seeded.recent.id), "reason": "a\x00b"},
        )
        assert control.status_code == 422 and 'id="reason-error"' in control.text
        assert await disputes() == 0

        sent = await browser.post(
            "/billing/disputes",
            data={
                "csrf_token": csrf,
                "invoice": str(seeded.recent.id),
                "reason": "The calls of the 3rd to Spain were not ours.",
            },
        )
        assert sent.status_code == 303
        assert sent.headers["location"] == f"/billing?contested={seeded.recent.id}"
        shown = await browser.get(sent.headers["location"])
        assert f"Invoice {seeded.recent.number} is contested" in shown.text
        assert 'role="status"' in shown.text
        assert "Disputed" in row_of(shown.text, seeded.recent.id)
        assert "No invoice can be contested now" in shown.text
        again = await browser.post(
            "/billing/disputes",
            data={"csrf_token": csrf, "invoice": str(seeded.recent.id), "reason": "Again"},
        )
        assert again.status_code == 409
        assert "already contested" in again.text

        # A credit note of the overdue invoice: listed as such, the invoice credited, and
        # a credit note is not contested.
        note = await seed_credit_note(sessions, seeded.overdue)
        shown = await browser.get("/billing")
        assert "Credited" in row_of(shown.text, seeded.overdue.id)
        assert "Credit note" in row_of(shown.text, note.id)
        refused = await browser.post(
            "/billing/disputes",
            data={"csrf_token": csrf, "invoice": str(note.id), "reason": "Not this one"},
        )
        assert refused.status_code == 422
        assert "A credit note is not contested" in refused.text
        assert await disputes() == 1


async def give_account(sessions: Sessions, tenant_id: int, today: date) -> None:
    """A billing account subscribed today (no ended month to invoice), 15 days of grace."""
    async with sessions() as session, session.begin():
        session.add(
            BillingAccount(
                tenant_id=tenant_id,
                legal_name=f"Client {tenant_id} SAS",
                address="1 rue de la Paix\n75002 Paris",
                country="FR",
                tax_status="fr",
                billing_email=f"billing@{tenant_id}.example",
                locale="en",
                subscribed_on=today,
                grace_days=15,
            )
        )


async def test_a_tenant_suspended_for_non_payment_is_told_on_its_billing_page(
    client: httpx.AsyncClient, sessions: Sessions, running_app: RunningApp
) -> None:
    settings = running_app.runtime.settings
    today = billing_today(settings)
    world = await make_world(client, sessions)
    await seed_invoices(sessions, settings, world)
    by_hand = await make_world(client, sessions)
    await seed_invoices(sessions, settings, by_hand)
    suspended = await client.patch(
        f"/api/v1/tenants/{by_hand.tenant_id}",
        headers=by_hand.operator.headers,
        json={"status": "suspended"},
    )
    assert suspended.status_code == 200, suspended.text
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "admin")).status_code == 303
        assert "Service suspended" not in (await browser.get("/billing")).text
        # Billing's dunning: the overdue invoice is past its due date plus the grace (the
        # scheduler's pass may come first: the outcome is the same).
        await give_account(sessions, world.tenant_id, today)
        async with sessions() as session, session.begin():
            rates = await dunning.legal_rates(session)
            await dunning.dun_tenant(session, world.tenant_id, today, datetime.now(UTC), rates)
        shown = await browser.get("/billing")
        assert shown.status_code == 200
        assert 'id="suspended-notice"' in shown.text
        assert "Service suspended for non-payment" in shown.text
    # A tenant the operator suspended by hand is not told it is for non-payment.
    async with console_client(client) as browser:
        assert (await log_in(browser, by_hand, "admin")).status_code == 303
        shown = await browser.get("/billing")
        assert shown.status_code == 200 and 'id="suspended-notice"' not in shown.text


async def test_the_pages_in_french(
    client: httpx.AsyncClient, sessions: Sessions, running_app: RunningApp
) -> None:
    settings = running_app.runtime.settings
    world = await make_world(client, sessions)
    seeded = await seed_invoices(sessions, settings, world)
    async with console_client(client) as browser:
        browser.headers["Accept-Language"] = "fr-FR,fr;q=0.9"
        assert (await log_in(browser, world, "admin")).status_code == 303
        shown = await browser.get("/billing")
        assert shown.status_code == 200
        assert '<html lang="fr">' in shown.text
        assert "Vos factures" in shown.text and "Facturation" in shown.text
        row = row_of(shown.text, seeded.overdue.id)
        assert "En retard de paiement" in row
        assert euros("120.00", "fr") in row
        rates = await browser.get("/billing/rates")
        assert rates.status_code == 200
        assert "Tarifs" in rates.text


async def seed_decks(sessions: Sessions) -> tuple[RateDeck, RateDeck]:
    """A deck in force since yesterday (60 French prefixes and two British) and the next one,
    published to take effect in 40 days (this module's database is its own)."""
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        current = RateDeck(
            name="Deck in force", activates_at=now - timedelta(days=1), published_by="op@test"
        )
        following = RateDeck(
            name="Next deck", activates_at=now + timedelta(days=40), published_by="op@test"
        )
        session.add_all([current, following])
        await session.flush()
        rows = [
            Rate(
                deck_id=current.id,
                prefix=f"331{n:02d}",
                destination_country="FR",
                number_type="geographic",
                price_per_minute=Decimal("0.0125"),
            )
            for n in range(60)
        ]
        rows += [
            Rate(
                deck_id=current.id,
                prefix="447",
                destination_country="GB",
                number_type="mobile",
                price_per_minute=Decimal("0.0512"),
                connect_fee=Decimal("0.02"),
            ),
            Rate(
                deck_id=current.id,
                prefix="44",
                destination_country="GB",
                number_type="",
                origin_country="FR",
                price_per_minute=Decimal("0.03"),
            ),
            Rate(
                deck_id=following.id,
                prefix="447",
                destination_country="GB",
                number_type="mobile",
                price_per_minute=Decimal("0.0499"),
            ),
        ]
        session.add_all(rows)
    return current, following


async def test_the_rates_in_force_by_country_paged_the_next_deck_and_price_changes(
    client: httpx.AsyncClient, sessions: Sessions, running_app: RunningApp
) -> None:
    settings = running_app.runtime.settings
    world = await make_world(client, sessions)
    await seed_decks(sessions)
    today = billing_today(settings)
    async with sessions() as session, session.begin():
        session.add_all(
            [
                Price(
                    item="licence",
                    plan_code=None,
                    amount=Decimal("29.50"),
                    effective_on=today - timedelta(days=400),
                    published_by="op@test",
                ),
                Price(
                    item="licence",
                    plan_code=None,
                    amount=Decimal("31.00"),
                    effective_on=today + timedelta(days=35),
                    published_by="op@test",
                ),
            ]
        )
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "admin")).status_code == 303
        shown = await browser.get("/billing/rates")
        assert shown.status_code == 200
        text = shown.text
        assert "Deck in force" in text
        assert 'id="next-deck"' in text and "See the new rates" in text
        assert len(re.findall(r"<tr data-prefix=", text)) == 50
        next_link = re.search(r'<a href="([^"]+)" rel="next">', text)
        assert next_link is not None
        second = await browser.get(next_link.group(1).replace("&amp;", "&"))
        assert second.status_code == 200
        prefixes = re.findall(r'<tr data-prefix="(\d+)"', second.text)
        assert prefixes == [*(f"331{n:02d}" for n in range(50, 60)), "44", "447"]
        assert "Page 2" in second.text and 'rel="next"' not in second.text
        # By destination country: the British rates only, their prices as exact as stored.
        british = await browser.get("/billing/rates?country=GB")
        assert re.findall(r'<tr data-prefix="(\d+)"', british.text) == ["44", "447"]
        assert "€0.0512" in british.text and "€0.02" in british.text
        assert "United Kingdom" in british.text and "Mobile" in british.text
        bad = await browser.get("/billing/rates?country=XX")
        assert bad.status_code == 422 and 'id="country-error"' in bad.text
        # The next deck, with its activation date.
        upcoming = await browser.get("/billing/rates?deck=next")
        assert "International rates from" in upcoming.text
        assert re.findall(r'<tr data-prefix="(\d+)"', upcoming.text) == ["447"]
        assert "€0.0499" in upcoming.text
        # The monthly price change to come, not the price in force; the notices linked.
        changes = re.search(r'<table id="price-changes">.*?</table>', text, re.S)
        assert changes is not None
        assert "Each call-centre licence" in changes.group(0) and "€31.00" in changes.group(0)
        assert "€29.50" not in changes.group(0)
        assert 'href="/account#operator-notices"' in text


async def test_hostile_input_is_refused_never_a_server_error(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "admin")).status_code == 303
        for path in (
            "/billing?contested=abc",
            "/billing?contested=99999999999999999999",
            "/billing?contested=1",
            "/billing/rates?deck=old",
            "/billing/rates?after=%00%ff",
            "/billing/rates?page=0",
            "/billing/invoices/0/invoice.pdf",
            "/billing/invoices/1/..%2Finvoice.pdf",
        ):
            answer = await browser.get(path)
            assert 400 <= answer.status_code < 500, (path, answer.status_code)
        odd = await browser.get("/billing/rates?country=zz")
        assert odd.status_code == 422 and 'id="country-error"' in odd.text
        csrf = await page_csrf(browser, "/billing")
        for invoice, reason in (("1" * 40, "x"), ("-1", "x"), ("²", "x"), ("1", "x" * 30_000)):
            answer = await browser.post(
                "/billing/disputes", data={"csrf_token": csrf, "invoice": invoice, "reason": reason}
            )
            assert 400 <= answer.status_code < 500, (invoice, answer.status_code)
