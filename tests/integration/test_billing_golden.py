"""THE GOLDEN MONTH: October 2026 of one French client, invoiced by the month-end job and
checked against a hand-computed golden file, in the invoice's rows, its HTML text, its PDF's
text and its Factur-X XML (valid against the EN 16931 schema).

The month: a plan with a monthly price; three numbers (two French geographic, one UK mobile
taken mid-month) among holdings that start or end around the period; users (one of them
only ten days of the month); licences raised mid-month (5, then 8, then 6: the month bills
8); 1,000 billable outbound calls with exact durations to six countries and number types,
from two origins, across a deck change on 16 October and the DST change of 25 October; one
call that no rate matches (flagged, reported, not on the invoice); legs that are never billed.

The expectations are computed here from the chosen durations and prices with ``Decimal``
arithmetic written out for the contract's rules (every started second; price per minute / 60
plus the connect fee, kept to 6 decimals; each line rounded half up to the cent once; VAT
20 % on the net total, rounded once), never by calling the product's code, and compared with
``tests/golden/billing/golden_month.json`` (set GRAAM_WRITE_GOLDEN=1 to rewrite it after a
deliberate change of the data below).
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import facturx
import httpx
import pypdf
import pytest
from lxml import etree
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.app import Endpoints
from graam_pbx.billing import documents, invoicing
from graam_pbx.billing.models import (
    BillingAccount,
    BillingPlan,
    Holding,
    Invoice,
    InvoiceLine,
    Price,
    RatedCall,
    RateDeck,
)
from graam_pbx.billing.models import Rate as RateRow
from graam_pbx.cdr.models import Cdr
from graam_pbx.sandbox.ports import free_port
from graam_pbx.settings import Settings
from graam_pbx.tenants.models import Tenant
from tests.conftest import Asterisk, RunningApp, start_app
from tests.factories import TenantWorld, make_world, unique

GOLDEN = Path(__file__).parents[1] / "golden" / "billing" / "golden_month.json"
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}

PLAN = "golden-pro"
MONTH = date(2026, 10, 1)
# October 2026 in Paris: 1 October 00:00 (UTC+2) to 1 November 00:00 (UTC+1), 745 hours.
PERIOD_STARTS = datetime(2026, 9, 30, 22, 0, tzinfo=UTC)
PERIOD_ENDS = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
DECK_B_FROM = datetime(2026, 10, 16, 0, 0, tzinfo=UTC)
INVOICED_AT = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)  # the month-end run, 09:00 in Paris
CALLS = 1000
FRENCH_CALLER = "+33142685399"
BRITISH_CALLER = "+442079460001"


@pytest.fixture(scope="module")
async def running_app(database_url: str, asterisk: Asterisk) -> AsyncIterator[RunningApp]:
    # The month-end job runs here, at the golden date: the billing scheduler (its first pass at
    # start, before the month is written) must not invoice the month first at today's date.
    with tempfile.TemporaryDirectory(prefix="graam-cdr-") as cdr_dir:
        settings = Settings(
            agi_port=free_port(),
            cdr_dir=Path(cdr_dir),
            queue_calls_dir=Path(cdr_dir) / "queue-calls",
            billing_interval=86_400,
        )
        endpoints = Endpoints(database_url=database_url, ami=asterisk.ami_config())
        async for running in start_app(endpoints, settings):
            yield running


# --- The month's data ---------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    """A dialled number, its caller ID, and by hand: its line and its price in each deck."""

    to: str
    src: str
    country: str
    number_type: str
    deck_a: tuple[str, str]  # price per minute, connect fee
    deck_b: tuple[str, str]


# The decks below, matched by hand: longest prefix, then exact origin, then exact type.
DESTINATIONS = (
    Destination(
        "+33142685300", FRENCH_CALLER, "FR", "geographic", ("0.0100", "0"), ("0.0100", "0")
    ),
    Destination(
        "+33478123456", FRENCH_CALLER, "FR", "geographic", ("0.0150", "0"), ("0.0150", "0")
    ),
    Destination("+33612345678", FRENCH_CALLER, "FR", "mobile", ("0.0500", "0"), ("0.0450", "0")),
    Destination(
        "+447912345678", FRENCH_CALLER, "GB", "mobile", ("0.0800", "0.0100"), ("0.0800", "0.0150")
    ),
    Destination(
        "+442079460000", FRENCH_CALLER, "GB", "geographic", ("0.0200", "0"), ("0.0200", "0")
    ),
    Destination(
        "+12125550123", FRENCH_CALLER, "US", "geographic", ("0.0123", "0"), ("0.0123", "0")
    ),
    Destination(
        "+493012345678", FRENCH_CALLER, "DE", "geographic", ("0.0210", "0"), ("0.0210", "0")
    ),
    Destination(
        "+493012345678", BRITISH_CALLER, "DE", "geographic", ("0.0300", "0"), ("0.0300", "0")
    ),
    Destination(
        "+33556123456", FRENCH_CALLER, "FR", "geographic", ("0.0150", "0"), ("0.0150", "0")
    ),
    Destination("+33698765432", BRITISH_CALLER, "FR", "mobile", ("0.0500", "0"), ("0.0450", "0")),
)

# (prefix, origin, type, destination country, price per minute, connect fee)
DECK_A = (
    ("331", "", "", "FR", "0.0100", "0"),
    ("33", "", "", "FR", "0.0150", "0"),
    ("336", "", "mobile", "FR", "0.0500", "0"),
    ("3361", "", "geographic", "FR", "0.9999", "0"),  # a longer prefix for another type only
    ("44", "", "", "GB", "0.0200", "0"),
    ("447", "", "mobile", "GB", "0.0800", "0.0100"),
    ("1", "", "", "US", "0.0123", "0"),
    ("49", "FR", "", "DE", "0.0210", "0"),
    ("49", "", "", "DE", "0.0300", "0"),
)
DECK_B = tuple(
    (p, o, t, c, "0.0450" if p == "336" else ppm, "0.0150" if p == "447" else fee)
    for p, o, t, c, ppm, fee in DECK_A
)
UNRATED_TO = "+8613800138000"  # China: no prefix of either deck


def call_of(n: int) -> tuple[Destination, datetime, Decimal]:
    """The n-th call: its destination, its start and its exact duration (microseconds)."""
    started = PERIOD_STARTS + timedelta(seconds=n * 2681 + 1)
    specials = {0: Decimal("60.000"), 1: Decimal("60.001"), 2: Decimal("0.2")}
    billsec = specials.get(n, Decimal((n * 7_919_993) % 1_799_999_999 + 1) / Decimal(1_000_000))
    return DESTINATIONS[n % len(DESTINATIONS)], started, billsec


# Prices of the fixed part (monthly), by item; the ones effective after 1 October must not count.
PRICES = (
    ("plan", PLAN, None, None, "49.90", date(2026, 1, 1)),
    ("plan", PLAN, None, None, "59.90", date(2026, 11, 1)),
    ("number", None, "FR", "geographic", "1.2345", date(2026, 1, 1)),
    ("number", None, "GB", "mobile", "4.20", date(2026, 1, 1)),
    ("user", None, None, None, "15.00", date(2026, 1, 1)),
    ("user", PLAN, None, None, "12.00", date(2026, 1, 1)),
    ("user", PLAN, None, None, "99.00", date(2026, 10, 15)),
    ("licence", PLAN, None, None, "125.00", date(2026, 1, 1)),
)
T = datetime  # for the holdings below
HOLDINGS = (
    # item, ref, label, country, type, quantity, from, until
    ("number", 980001, "+33142685300", "FR", "geographic", 1, T(2026, 9, 15, 8, tzinfo=UTC), None),
    (
        "number",
        980002,
        "+33478123456",
        "FR",
        "geographic",
        1,
        T(2026, 9, 15, 8, tzinfo=UTC),
        T(2026, 10, 20, tzinfo=UTC),
    ),
    ("number", 980003, "+447912345679", "GB", "mobile", 1, T(2026, 10, 15, 9, tzinfo=UTC), None),
    (
        "number",
        980004,
        "+33142685301",
        "FR",
        "geographic",
        1,
        T(2026, 9, 1, tzinfo=UTC),
        T(2026, 9, 20, tzinfo=UTC),
    ),
    (
        "user",
        990001,
        "temp@golden.example",
        None,
        None,
        1,
        T(2026, 10, 10, tzinfo=UTC),
        T(2026, 10, 20, tzinfo=UTC),
    ),
    (
        "user",
        990002,
        "left@golden.example",
        None,
        None,
        1,
        T(2026, 9, 1, tzinfo=UTC),
        T(2026, 9, 30, 21, 59, 59, tzinfo=UTC),
    ),
    ("user", 990003, "next@golden.example", None, None, 1, PERIOD_ENDS, None),
    (
        "licences",
        None,
        None,
        None,
        None,
        8,
        T(2026, 10, 12, 10, tzinfo=UTC),
        T(2026, 10, 20, tzinfo=UTC),
    ),
    ("licences", None, None, None, None, 6, T(2026, 10, 20, tzinfo=UTC), None),
)
USERS_OF_THE_WORLD = 3  # make_world's admin, supervisor and agent: held all month
LICENCES_AT_FIRST = 5  # make_world's count, until it is raised to 8 on 12 October


# --- The hand computation -------------------------------------------------------------------


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def expected_month() -> dict[str, Any]:
    """The invoice of the golden month, computed from the data above by the contract's rules."""
    lines: list[dict[str, Any]] = []

    def fixed(kind: str, label: str, quantity: int, unit: str) -> None:
        exact = quantity * Decimal(unit)
        lines.append(
            {
                "kind": kind,
                "label": label,
                "quantity": str(quantity),
                "unit_price": unit,
                "amount": str(cents(exact)),
                "calls": None,
                "billed_seconds": None,
            }
        )

    fixed("plan", f"Abonnement {PLAN}", 1, "49.90")  # full price: "any started month is due"
    fixed("number", "Numéros géographiques FR", 2, "1.2345")  # 980001, 980002 (gone 20 Oct)
    fixed("number", "Numéros mobiles GB", 1, "4.20")  # 980003, taken 15 Oct
    fixed("user", "Utilisateurs", USERS_OF_THE_WORLD + 1, "12.00")  # + the ten-day user
    fixed("licence", "Licences centre d'appels", 8, "125.00")  # the most held: 8

    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for n in range(CALLS):
        destination, started, billsec = call_of(n)
        # Every started second is due.
        seconds = int(billsec.to_integral_value(rounding=ROUND_CEILING))
        ppm, fee = destination.deck_b if started >= DECK_B_FROM else destination.deck_a
        exact = Decimal(seconds) * Decimal(ppm) / Decimal(60) + Decimal(fee)
        amount = exact.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
        group = groups.setdefault(
            (destination.country, destination.number_type),
            {"calls": 0, "seconds": 0, "exact": Decimal(0)},
        )
        group["calls"] += 1
        group["seconds"] += seconds
        group["exact"] += amount
    kinds = {"geographic": "géographiques", "mobile": "mobiles"}
    for (country, kind), group in sorted(groups.items()):
        minutes = (Decimal(group["seconds"]) / Decimal(60)).quantize(
            Decimal("0.0001"), rounding=ROUND_HALF_UP
        )
        lines.append(
            {
                "kind": "calls",
                "label": f"Appels vers {country} ({kinds[kind]})",
                "quantity": str(minutes),
                "unit_price": None,
                "exact_amount": str(group["exact"]),
                "amount": str(cents(group["exact"])),
                "calls": group["calls"],
                "billed_seconds": group["seconds"],
            }
        )
    net = sum((Decimal(line["amount"]) for line in lines), Decimal(0))
    vat = cents(net * Decimal(20) / Decimal(100))
    return {
        "period_start": "2026-10-01",
        "period_end": "2026-10-31",
        "issued_on": "2026-11-01",
        "due_on": "2026-12-01",
        "lines": lines,
        "net_total": str(net),
        "vat_rate": "20",
        "vat_total": str(vat),
        "total": str(net + vat),
        "calls_invoiced": CALLS,
        "unrated_calls": 1,
    }


def golden() -> dict[str, Any]:
    expected = expected_month()
    if os.environ.get("GRAAM_WRITE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n")
    stored: dict[str, Any] = json.loads(GOLDEN.read_text())
    assert stored == expected, "the golden file and the hand computation disagree"
    return stored


# --- Writing the month into the database ------------------------------------------------------


def cdr(
    world: TenantWorld, started: datetime, to: str, src: str, billsec: Decimal, **kw: Any
) -> Cdr:
    fields: dict[str, Any] = {
        "started_at": started,
        "system_name": "golden",
        "uniqueid": unique("cdr"),
        "sequence": 0,
        "linkedid": unique("l"),
        "answered_at": started,
        "ended_at": started + timedelta(seconds=int(billsec) + 1),
        "duration": billsec,
        "billsec": billsec,
        "disposition": "ANSWERED",
        "billable": True,
        "tenant_id": world.tenant_id,
        "direction": "outbound",
        "agent_user_id": world.agent.user_id,
        "src": src,
        "dst": to,
        "to_number": to,
        "dcontext": "golden",
        "clid": src,
        "channel": "PJSIP/golden",
        "dstchannel": "PJSIP/trunk",
        "lastapp": "Dial",
        "lastdata": "",
        "accountcode": f"t{world.tenant_id}",
        "peeraccount": "",
        "amaflags": "DOCUMENTATION",
        "userfield": "",
        "source": "ami",
    }
    fields.update(kw)
    return Cdr(**fields)


async def write_month(sessions: async_sessionmaker[AsyncSession], world: TenantWorld) -> int:
    """Prices, decks, the account, holdings and CDRs of the golden month; the unrated call's id."""
    async with sessions() as session, session.begin():
        session.add(BillingPlan(code=PLAN, name="Golden Pro"))
        await session.flush()
        for item, plan, country, kind, amount, effective in PRICES:
            session.add(
                Price(
                    item=item,
                    plan_code=plan,
                    country=country,
                    number_type=kind,
                    amount=Decimal(amount),
                    effective_on=effective,
                    published_by="golden@operator.example",
                )
            )
        for activates, rows in ((datetime(2026, 9, 1, tzinfo=UTC), DECK_A), (DECK_B_FROM, DECK_B)):
            deck = RateDeck(
                name=f"golden {activates:%Y-%m-%d}",
                activates_at=activates,
                published_by="golden@operator.example",
                rates_count=len(rows),
            )
            session.add(deck)
            await session.flush()
            session.add_all(
                RateRow(
                    deck_id=deck.id,
                    prefix=prefix,
                    origin_country=origin,
                    number_type=kind,
                    destination_country=country,
                    price_per_minute=Decimal(ppm),
                    connect_fee=Decimal(fee),
                )
                for prefix, origin, kind, country, ppm, fee in rows
            )
        await session.execute(update(Tenant).where(Tenant.id == world.tenant_id).values(plan=PLAN))
        session.add(
            BillingAccount(
                tenant_id=world.tenant_id,
                legal_name="Golden Client SAS",
                address="12 rue du Mois d'Or\n75011 Paris",
                country="FR",
                siren="356000000",
                vat_number="FR39356000000",
                tax_status="fr",
                billing_email="facturation@golden.example",
                locale="fr",
                subscribed_on=date(2026, 9, 15),
            )
        )
        # The holdings the triggers wrote when make_world made the users and the licences
        # date from today: they moved to the subscription, the licences raised on 12 October.
        await session.execute(
            update(Holding)
            .where(Holding.tenant_id == world.tenant_id, Holding.item == "user")
            .values(held_from=datetime(2026, 9, 15, 8, tzinfo=UTC))
        )
        await session.execute(
            update(Holding)
            .where(Holding.tenant_id == world.tenant_id, Holding.item == "licences")
            .values(
                held_from=datetime(2026, 9, 15, 8, tzinfo=UTC),
                held_until=datetime(2026, 10, 12, 10, tzinfo=UTC),
            )
        )
        session.add_all(
            Holding(
                tenant_id=world.tenant_id,
                item=item,
                ref_id=ref,
                label=label,
                country=country,
                number_type=kind,
                quantity=quantity,
                held_from=held_from,
                held_until=held_until,
            )
            for item, ref, label, country, kind, quantity, held_from, held_until in HOLDINGS
        )

        for at in (PERIOD_STARTS, PERIOD_ENDS, datetime(2026, 9, 30, 12, tzinfo=UTC)):
            await session.execute(text("SELECT cdrs_ensure_partition(:at)"), {"at": at})
        for n in range(CALLS):
            destination, started, billsec = call_of(n)
            session.add(cdr(world, started, destination.to, destination.src, billsec))
        unrated = cdr(
            world,
            datetime(2026, 10, 10, 12, tzinfo=UTC),
            UNRATED_TO,
            FRENCH_CALLER,
            Decimal("42.5"),
        )
        session.add(unrated)
        # Never billed: a refused outbound leg, an inbound call, and a call of November.
        at = datetime(2026, 10, 5, 10, tzinfo=UTC)
        session.add(
            cdr(
                world,
                at,
                "+33142685300",
                FRENCH_CALLER,
                Decimal(0),
                billable=False,
                disposition="FAILED",
            )
        )
        session.add(
            cdr(
                world,
                at,
                "+33142685300",
                "+33612345678",
                Decimal(30),
                direction="inbound",
                billable=False,
            )
        )
        session.add(
            cdr(
                world,
                PERIOD_ENDS + timedelta(minutes=30),
                "+33142685300",
                FRENCH_CALLER,
                Decimal(90),
            )
        )
        await session.flush()
        return unrated.id


# --- Reading the documents -------------------------------------------------------------------


def spaced(value: str) -> str:
    """Every kind of space (babel's narrow no-break ones too) as one plain space."""
    return re.sub(r"[\s\u00a0\u202f]+", " ", value)


def html_text(html: str) -> str:
    return spaced(re.sub(r"<[^>]+>", " ", html).replace("&#39;", "'").replace("&amp;", "&"))


def euros(value: str) -> str:
    """An amount as French invoices write it, "1 234,56 €" (written out, not babel)."""
    whole, _, fraction = f"{Decimal(value):.2f}".partition(".")
    groups = []
    while len(whole) > 3:
        whole, groups = whole[:-3], [whole[-3:], *groups]
    return " ".join([whole, *groups]) + f",{fraction} €"


def french_number(value: str) -> str:
    """A quantity as French writes it: "1 234,5667", "2" (no trailing zeros)."""
    whole, _, fraction = f"{Decimal(value).normalize():f}".partition(".")
    groups = []
    while len(whole) > 3:
        whole, groups = whole[:-3], [whole[-3:], *groups]
    grouped = " ".join([whole, *groups])
    return f"{grouped},{fraction}" if fraction else grouped


def unit_euros(value: str) -> str:
    """A unit price: its cents at least, its exact decimals beyond ("1,2345 €")."""
    exact = Decimal(value).normalize()
    if exact == exact.quantize(Decimal("0.01")):
        return euros(value)
    return f"{exact:f}".replace(".", ",") + " €"


def xml_values(xml: bytes, path: str) -> list[str]:
    return [str(v).strip() for v in etree.fromstring(xml).xpath(path, namespaces=NS)]


# --- The test ------------------------------------------------------------------------------


async def test_the_golden_month(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    expected = golden()
    world = await make_world(client, sessions, licences=LICENCES_AT_FIRST)
    unrated_id = await write_month(sessions, world)

    made = await invoicing.invoice_due(
        sessions, Settings(), INVOICED_AT, month=MONTH, tenant_ids=[world.tenant_id]
    )
    assert len(made) == 1
    invoice_id = made[0]
    # Run again: nothing new.
    assert (
        await invoicing.invoice_due(
            sessions, Settings(), INVOICED_AT, month=MONTH, tenant_ids=[world.tenant_id]
        )
        == []
    )

    # 1. The invoice's rows.
    async with sessions() as session:
        invoice = await session.get(Invoice, invoice_id)
        assert invoice is not None
        lines = (
            await session.scalars(
                select(InvoiceLine)
                .where(InvoiceLine.invoice_id == invoice_id)
                .order_by(InvoiceLine.position)
            )
        ).all()
        rated = (
            await session.scalars(select(RatedCall).where(RatedCall.tenant_id == world.tenant_id))
        ).all()
    assert invoice.number.startswith("F2026-")
    assert invoice.period_start.isoformat() == expected["period_start"]
    assert invoice.period_end.isoformat() == expected["period_end"]
    assert invoice.issued_on.isoformat() == expected["issued_on"]
    assert invoice.due_on.isoformat() == expected["due_on"]
    assert invoice.net_total == Decimal(expected["net_total"])
    assert invoice.vat_rate == Decimal(expected["vat_rate"])
    assert invoice.vat_total == Decimal(expected["vat_total"])
    assert invoice.total == Decimal(expected["total"])
    assert len(lines) == len(expected["lines"])
    for row, want in zip(lines, expected["lines"], strict=True):
        assert row.kind == want["kind"], want
        assert row.label == want["label"], want
        assert row.quantity == Decimal(want["quantity"]), want
        assert row.unit_price == (
            None if want["unit_price"] is None else Decimal(want["unit_price"])
        )
        assert row.amount == Decimal(want["amount"]), want
        assert row.calls == want["calls"], want
        assert row.billed_seconds == want["billed_seconds"], want
        if "exact_amount" in want:
            assert row.exact_amount == Decimal(want["exact_amount"]), want

    # The unrated call: flagged (stored without a price), not on the invoice, reported.
    assert sum(1 for call in rated if call.invoice_id == invoice_id) == expected["calls_invoiced"]
    [flagged] = [call for call in rated if call.amount is None]
    assert flagged.cdr_id == unrated_id and flagged.invoice_id is None
    assert flagged.billed_seconds == 43
    assert len(rated) == expected["calls_invoiced"] + expected["unrated_calls"]  # nothing else
    reported = await client.get(
        "/api/v1/billing/unrated-calls",
        params={"month": MONTH.isoformat()},
        headers=world.operator_headers,
    )
    assert reported.status_code == 200, reported.text
    assert unrated_id in [row["cdr_id"] for row in reported.json()["items"]]

    # 2. The HTML, as the client's admin fetches it.
    got = await client.get(
        f"/api/v1/billing/invoices/{invoice_id}/invoice.html", headers=world.admin.headers
    )
    assert got.status_code == 200, got.text
    html = html_text(got.text)
    for want in expected["lines"]:
        unit = "" if want["unit_price"] is None else unit_euros(want["unit_price"])
        row = " ".join(
            part
            for part in (
                want["label"],
                french_number(want["quantity"]),
                unit,
                euros(want["amount"]),
            )
            if part
        )
        if want["kind"] == "calls":
            detail = f"{want['calls']} appel(s), {french_number(want['quantity'])} min facturées"
            row = " ".join(
                [
                    want["label"],
                    detail,
                    f"({want['billed_seconds']} s)",
                    french_number(want["quantity"]),
                    euros(want["amount"]),
                ]
            )
        assert row in html, row
    totals = (
        f"Total HT {euros(expected['net_total'])} TVA 20 % {euros(expected['vat_total'])} "
        f"Total TTC {euros(expected['total'])}"
    )
    assert totals in html
    for mention in (
        f"Facture {invoice.number}",
        "Golden Client SAS",
        "SIREN: 356000000",
        "FR39356000000",
        "Date de facture 1 novembre 2026",
        "du 1 octobre 2026 au 31 octobre 2026",
        "Date d'échéance 1 décembre 2026",
        "1 appel(s) de la période sans tarif applicable ne figurent pas sur cette facture",
        "indemnité forfaitaire pour frais de recouvrement de 40 €",
    ):
        assert mention in html, mention

    # 3. The PDF's text.
    got = await client.get(
        f"/api/v1/billing/invoices/{invoice_id}/invoice.pdf", headers=world.admin.headers
    )
    assert got.status_code == 200
    pdf = got.content
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    pdf_text = spaced(" ".join(page.extract_text() for page in reader.pages))
    for want in expected["lines"]:
        assert want["label"] in pdf_text, want["label"]
        assert euros(want["amount"]) in pdf_text, want["amount"]
    for label, key in (
        ("Total HT", "net_total"),
        ("TVA 20 %", "vat_total"),
        ("Total TTC", "total"),
    ):
        assert f"{label} {euros(expected[key])}" in pdf_text, label
    assert invoice.number in pdf_text

    # 4. The Factur-X XML, alone and inside the PDF: valid, and the same values.
    got = await client.get(
        f"/api/v1/billing/invoices/{invoice_id}/invoice.xml", headers=world.admin.headers
    )
    assert got.status_code == 200
    xml = got.content
    facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert facturx.get_xml_from_pdf(pdf, check_xsd=True)[1] == xml
    summation = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/"
    assert xml_values(xml, summation + "ram:LineTotalAmount/text()") == [expected["net_total"]]
    assert xml_values(xml, summation + "ram:TaxBasisTotalAmount/text()") == [expected["net_total"]]
    assert xml_values(xml, summation + "ram:TaxTotalAmount/text()") == [expected["vat_total"]]
    assert xml_values(xml, summation + "ram:GrandTotalAmount/text()") == [expected["total"]]
    assert xml_values(xml, summation + "ram:DuePayableAmount/text()") == [expected["total"]]
    assert xml_values(xml, "//rsm:ExchangedDocument/ram:ID/text()") == [invoice.number]
    assert xml_values(
        xml, "//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString/text()"
    ) == ["20261201"]
    items = etree.fromstring(xml).xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=NS)
    assert len(items) == len(expected["lines"])
    for item, want in zip(items, expected["lines"], strict=True):
        name = item.xpath("ram:SpecifiedTradeProduct/ram:Name/text()", namespaces=NS)
        amount = item.xpath(".//ram:LineTotalAmount/text()", namespaces=NS)
        quantity = item.xpath(".//ram:BilledQuantity/text()", namespaces=NS)
        assert name == [want["label"]]
        assert amount == [want["amount"]]
        assert [Decimal(q) for q in quantity] == [Decimal(want["quantity"])]

    # 5. The CSV: every invoiced call, once, with its exact amount.
    got = await client.get(
        f"/api/v1/billing/invoices/{invoice_id}/calls.csv", headers=world.admin.headers
    )
    assert got.status_code == 200
    rows = got.text.splitlines()[1:]
    assert len(rows) == expected["calls_invoiced"]
    assert str(unrated_id) not in {row.split(",")[0] for row in rows}
    calls_exact = sum((Decimal(row.split(",")[-1]) for row in rows), Decimal(0))
    assert calls_exact == sum(
        (Decimal(line["exact_amount"]) for line in expected["lines"] if line["kind"] == "calls"),
        Decimal(0),
    )
    assert documents.MEDIA_TYPES["csv"].startswith(got.headers["content-type"].split(";")[0])
