"""An issued invoice's documents: HTML, PDF/A-3 with its Factur-X XML, and the CSV of its calls.

The French mandatory mentions (Code de commerce L441-9, CGI 242 nonies A) are on every
rendering: seller and buyer identities, number, dates, due date, lines, VAT or its
exemption mention, payment terms and the late-payment clause (L441-10, D441-5). The XML is a
CII ``CrossIndustryInvoice`` of the EN 16931 profile (France's e-invoicing format). An
issued invoice never changes, so neither do its documents: ``stored_document`` renders each
once and returns the stored bytes ever after.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import UTC, date
from decimal import Decimal
from pathlib import Path
from typing import Final

import facturx
import jinja2
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.auth.principal import Principal
from graam_pbx.billing import invoicing
from graam_pbx.billing.models import Invoice, InvoiceDocument, InvoiceLine, RatedCall
from graam_pbx.errors import GraamError, NotFound

TEMPLATES: Final = Path(__file__).parent / "templates"
GUIDELINE: Final = "urn:cen.eu:en16931:2017"  # the EN 16931 profile of Factur-X
FORMATS: Final = ("html", "pdf", "xml", "csv")
MEDIA_TYPES: Final = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "xml": "application/xml",
    "csv": "text/csv; charset=utf-8",
}
BABEL_LOCALES: Final = {"fr": "fr_FR", "en": "en_GB"}

# Every text of the documents in both languages (the line labels come from the invoice).
TEXTS: Final[dict[str, dict[str, str]]] = {
    "fr": {
        "invoice": "Facture",
        "credit_note": "Avoir",
        "number": "Numéro",
        "issued_on": "Date de facture",
        "period": "Période (dates de la prestation)",
        "period_range": "du {first} au {last}",
        "due_on": "Date d'échéance",
        "seller": "Vendeur",
        "buyer": "Client",
        "siren": "SIREN",
        "vat_number": "N° TVA intracommunautaire",
        "iban": "IBAN",
        "label": "Désignation",
        "quantity": "Quantité",
        "unit_price": "Prix unitaire HT",
        "amount": "Montant HT",
        "net_total": "Total HT",
        "vat": "TVA {rate} %",
        "vat_none": "TVA",
        "total": "Total TTC",
        "credits": "Avoir sur la facture n° {number} du {issued_on}",
        "payment_terms": "Paiement à 30 jours date de facture; pas d'escompte pour paiement "
        "anticipé.",
        "late_payment": "En cas de retard de paiement: pénalités au taux de trois fois le taux "
        "d'intérêt légal, et indemnité forfaitaire pour frais de recouvrement de 40 € (Code de "
        "commerce, articles L441-10 et D441-5).",
        "unrated": "{count} appel(s) de la période sans tarif applicable ne figurent pas sur "
        "cette facture; ils sont en cours de vérification.",
        "nothing_billed": "Aucune prestation facturée sur la période",
        "calls_detail": "{calls} appel(s), {minutes} min facturées ({seconds} s)",
        "mail_subject": "Votre facture {number}",
        "mail_subject_credit_note": "Votre avoir {number}",
    },
    "en": {
        "invoice": "Invoice",
        "credit_note": "Credit note",
        "number": "Number",
        "issued_on": "Invoice date",
        "period": "Period (dates of service)",
        "period_range": "from {first} to {last}",
        "due_on": "Due date",
        "seller": "Seller",
        "buyer": "Customer",
        "siren": "SIREN",
        "vat_number": "VAT number",
        "iban": "IBAN",
        "label": "Description",
        "quantity": "Quantity",
        "unit_price": "Unit price excl. VAT",
        "amount": "Amount excl. VAT",
        "net_total": "Total excl. VAT",
        "vat": "VAT {rate} %",
        "vat_none": "VAT",
        "total": "Total incl. VAT",
        "credits": "Credit note on invoice no. {number} of {issued_on}",
        "payment_terms": "Payment within 30 days of the invoice date; no discount for early "
        "payment.",
        "late_payment": "Late payment: interest at three times the French legal interest rate, "
        "and a fixed recovery indemnity of €40 (French Code de commerce, articles L441-10 and "
        "D441-5).",
        "unrated": "{count} call(s) of the period had no applicable rate and are not on this "
        "invoice; they are being checked.",
        "nothing_billed": "Nothing billed for the period",
        "calls_detail": "{calls} call(s), {minutes} billed minutes ({seconds} s)",
        "mail_subject": "Your invoice {number}",
        "mail_subject_credit_note": "Your credit note {number}",
    },
}


class FacturxInvalid(GraamError):
    """The stored invoice cannot make a valid Factur-X (a snapshot without a country, or XML
    the schema refuses): the document is not served, never served invalid."""

    status_code = 409
    error_id = "facturx-invalid"


@dataclass(frozen=True)
class InvoiceView:
    """Everything an invoice's documents show, read once from the database."""

    id: int
    number: str
    kind: str  # invoice | credit_note
    tenant_id: int
    period_start: date
    period_end: date
    issued_on: date
    due_on: date
    currency: str
    locale: str
    tax_status: str  # fr | eu_business | outside_eu
    vat_rate: Decimal
    net_total: Decimal
    vat_total: Decimal
    total: Decimal
    seller: dict[str, object]
    buyer: dict[str, object]
    lines: tuple[InvoiceLine, ...]
    vat_mention: str | None
    unrated_calls: int = 0
    credits_number: str | None = None
    credits_issued_on: date | None = None


async def invoice_view(session: AsyncSession, invoice_id: int) -> InvoiceView:
    """The invoice ``invoice_id`` with its lines, snapshots and the unrated calls it left off."""
    invoice = await session.get(Invoice, invoice_id)
    if invoice is None:
        raise NotFound(f"no invoice {invoice_id}")
    lines = (
        await session.scalars(
            select(InvoiceLine)
            .where(InvoiceLine.invoice_id == invoice_id)
            .order_by(InvoiceLine.position)
        )
    ).all()
    credits_number = credits_issued_on = None
    if invoice.credits_invoice_id is not None:
        credited = await session.get(Invoice, invoice.credits_invoice_id)
        if credited is not None:
            credits_number, credits_issued_on = credited.number, credited.issued_on
    return InvoiceView(
        id=invoice.id,
        number=invoice.number,
        kind=invoice.kind,
        tenant_id=invoice.tenant_id,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        issued_on=invoice.issued_on,
        due_on=invoice.due_on,
        currency=invoice.currency,
        locale=invoice.locale,
        tax_status=invoice.tax_status,
        vat_rate=invoice.vat_rate,
        net_total=invoice.net_total,
        vat_total=invoice.vat_total,
        total=invoice.total,
        seller=dict(invoice.seller),
        buyer=dict(invoice.buyer),
        lines=tuple(line for line in lines if line.kind != "unrated"),
        vat_mention=invoicing.vat_mention(invoice.tax_status, invoice.locale),
        unrated_calls=invoice.unrated_calls,
        credits_number=credits_number,
        credits_issued_on=credits_issued_on,
    )


async def readable_invoice(session: AsyncSession, principal: Principal, invoice_id: int) -> Invoice:
    """The invoice if the caller may read its documents (the invoices' own rule: operators
    any, a tenant's admins their own; another tenant's invoice is a 404)."""
    return await invoicing.get_invoice(session, principal, invoice_id)


def file_name(invoice: Invoice, suffix: str) -> str:
    """A download's file name from the invoice's number (only safe characters kept)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", invoice.number) + suffix


# --- HTML and PDF -------------------------------------------------------------------------

_markup = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)
# E-mail bodies are plain text: nothing to escape there.
_plain = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=False,  # noqa: S701
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def money(amount: Decimal, currency: str, locale: str) -> str:
    """An amount in the locale's format: "1 234,56 €" (fr), "€1,234.56" (en)."""
    return format_currency(amount, currency, locale=BABEL_LOCALES[locale])


def unit_money(amount: Decimal, currency: str, locale: str) -> str:
    """A unit price as exact as it is stored (a price per minute has up to 6 decimals)."""
    cents = amount.quantize(Decimal("0.01"))
    shown = cents if cents == amount else amount.normalize()
    return format_currency(
        shown, currency, locale=BABEL_LOCALES[locale], decimal_quantization=False
    )


def day(value: date, locale: str) -> str:
    """A date in words in the locale: "1 décembre 2026", "1 December 2026"."""
    return format_date(value, "d MMMM y", locale=BABEL_LOCALES[locale])


def quantity(value: Decimal, locale: str) -> str:
    """A line's quantity without trailing zeros, in the locale."""
    return format_decimal(
        value.normalize(), locale=BABEL_LOCALES[locale], decimal_quantization=False
    )


def plain_decimal(value: Decimal) -> str:
    """Plain digits, no exponent, no trailing zeros: a VAT rate as the law writes it (20,
    5.5, never 20.00), a quantity or unit price for the XML."""
    return f"{value.normalize():f}"


SELLER_KEYS: Final = ("name", "address", "country", "siren", "vat_number", "legal_form", "iban")
BUYER_KEYS: Final = ("legal_name", "address", "country", "siren", "vat_number", "billing_email")


def _party(snapshot: dict[str, object], keys: tuple[str, ...]) -> dict[str, str]:
    """A seller or buyer snapshot with every key the documents print ("" where unknown)."""
    party = {key: str(snapshot.get(key) or "") for key in keys}
    if "legal_name" in party and not party["legal_name"]:
        party["legal_name"] = str(snapshot.get("name") or "")
    return party


def _context(view: InvoiceView) -> dict[str, object]:
    texts = TEXTS[view.locale]
    return {
        "view": view,
        "seller": _party(view.seller, SELLER_KEYS),
        "buyer": _party(view.buyer, BUYER_KEYS),
        "t": texts,
        "title": texts[view.kind],
        "money": lambda amount: money(amount, view.currency, view.locale),
        "unit_money": lambda amount: unit_money(amount, view.currency, view.locale),
        "day": lambda value: day(value, view.locale),
        "quantity": lambda value: quantity(value, view.locale),
        "percent": plain_decimal,
    }


def render_html(view: InvoiceView) -> str:
    """The invoice as an HTML page in its locale (the source of the PDF)."""
    return _markup.get_template("invoice.html.j2").render(_context(view))


def render_mail(view: InvoiceView, locale: str) -> tuple[str, str]:
    """The subject and plain-text body of the e-mail that sends the invoice, in ``locale``."""
    texts = TEXTS[locale]
    subject_key = "mail_subject_credit_note" if view.kind == "credit_note" else "mail_subject"
    context = _context(view) | {
        "t": texts,
        "money": lambda amount: money(amount, view.currency, locale),
        "day": lambda value: day(value, locale),
    }
    body = _plain.get_template(f"invoice_mail.{locale}.txt.j2").render(context)
    return texts[subject_key].format(number=view.number), body


def render_pdf(html: str) -> bytes:
    """The HTML laid out as a PDF/A-3b (the archival PDF that may carry the Factur-X XML)."""
    import weasyprint  # heavy: loaded when a PDF is made, not when the API starts

    pdf: bytes = weasyprint.HTML(string=html).write_pdf(pdf_variant="pdf/a-3b")
    return pdf


# --- Factur-X -------------------------------------------------------------------------------

_CATEGORY: Final = {"fr": "S", "eu_business": "AE", "outside_eu": "O"}
_EXEMPTION: Final = {
    "eu_business": ("VATEX-EU-AE", "Reverse charge"),
    "outside_eu": ("VATEX-EU-O", "Not subject to VAT"),
}
_POSTCODE_CITY = re.compile(r"^\s*(?P<code>[0-9A-Z][0-9A-Z -]{2,9}?)\s+(?P<city>\D.*)$")


def _amount(value: Decimal) -> str:
    """An amount for the XML: plain digits, two decimals (already rounded once)."""
    return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else f"{value:f}"


def _day(value: date) -> str:
    return value.strftime("%Y%m%d")


def _address(party: dict[str, str]) -> dict[str, str]:
    """Split a free-text address into CII's lines, postcode and city where recognisable."""
    text = str(party.get("address") or "")
    parts = [part.strip() for part in re.split(r"[\n,]", text) if part.strip()]
    postcode = city = ""
    if parts:
        found = _POSTCODE_CITY.match(parts[-1])
        if found:
            postcode, city = found["code"], found["city"]
            parts = parts[:-1]
    return {
        "line_one": parts[0] if parts else "",
        "line_two": ", ".join(parts[1:]),
        "postcode": postcode,
        "city": city,
    }


def _xml_lines(view: InvoiceView, sign: Decimal) -> list[dict[str, str | None]]:
    rows: list[dict[str, str | None]] = []
    for n, line in enumerate(view.lines, start=1):
        billed = line.quantity * sign
        basis: str | None = None
        if line.unit_price is not None:
            price, unit = line.unit_price, "C62"
        elif line.kind == "calls" and billed > 0:
            # Calls at several rates have no unit price: the line's amount is the price of
            # its billed minutes (EN 16931 BT-149 item price base quantity), so that
            # quantity * price / base quantity is the amount exactly.
            price, unit, basis = line.amount * sign, "MIN", plain_decimal(billed)
        else:
            billed, price, unit = Decimal(1), line.amount * sign, "C62"
        rows.append(
            {
                "id": str(n),
                "name": line.label,
                "price": plain_decimal(price),
                "basis": basis,
                "quantity": plain_decimal(billed),
                "unit": unit,
                "amount": _amount(line.amount * sign),
            }
        )
    if not rows:
        # EN 16931 wants one line at least (BG-25): a month with nothing billed says so.
        rows.append(
            {
                "id": "1",
                "name": TEXTS[view.locale]["nothing_billed"],
                "price": "0",
                "basis": None,
                "quantity": "1",
                "unit": "C62",
                "amount": "0.00",
            }
        )
    return rows


def facturx_xml(view: InvoiceView) -> bytes:
    """The invoice as a CII CrossIndustryInvoice of Factur-X's EN 16931 profile."""
    # A credit note (381) states positive amounts: what is credited.
    sign = Decimal(-1) if view.kind == "credit_note" and view.total < 0 else Decimal(1)
    category = _CATEGORY[view.tax_status]
    exemption = _EXEMPTION.get(view.tax_status)
    texts = TEXTS[view.locale]
    seller, buyer = _party(view.seller, SELLER_KEYS), _party(view.buyer, BUYER_KEYS)
    for role, party, name in (("seller", seller, "name"), ("buyer", buyer, "legal_name")):
        # EN 16931 BT-27/BT-44 and BT-40/BT-55: a party's name and country are mandatory.
        if not party[name] or not party["country"]:
            raise FacturxInvalid(f"invoice {view.number}: its {role} has no name or country")
    seller_vat, buyer_vat = seller["vat_number"], buyer["vat_number"]
    if category == "O":
        # EN 16931 BR-O-2..4: a not-subject-to-VAT invoice names no VAT identifiers.
        seller_vat = buyer_vat = ""
    rate = view.vat_rate if category == "S" else Decimal(0)
    xml = _markup.get_template("facturx.xml.j2").render(
        view=view,
        guideline=GUIDELINE,
        type_code="381" if view.kind == "credit_note" else "380",
        category=category,
        rate=None if category == "O" else plain_decimal(rate),
        exemption=exemption,
        vat_mention=view.vat_mention,
        lines=_xml_lines(view, sign),
        seller=seller,
        buyer=buyer,
        seller_vat=seller_vat,
        buyer_vat=buyer_vat,
        seller_address=_address(seller),
        buyer_address=_address(buyer),
        net_total=_amount(view.net_total * sign),
        vat_total=_amount(view.vat_total * sign),
        total=_amount(view.total * sign),
        issued_on=_day(view.issued_on),
        due_on=_day(view.due_on),
        period_start=_day(view.period_start),
        period_end=_day(view.period_end),
        credits_issued_on=_day(view.credits_issued_on) if view.credits_issued_on else None,
        payment_terms=texts["payment_terms"],
        late_payment=texts["late_payment"],
    )
    return xml.encode("utf-8")


def validate_facturx(xml: bytes) -> None:
    """Raise ``FacturxInvalid`` unless ``xml`` is valid against Factur-X EN 16931's XSD."""
    try:
        facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    except Exception as err:  # the library raises a bare Exception with the schema's words
        raise FacturxInvalid(f"Factur-X XML refused by its schema: {err}") from err


def facturx_pdf(view: InvoiceView) -> bytes:
    """The PDF/A-3 of the invoice with its Factur-X XML embedded (checked against the XSD)."""
    xml = facturx_xml(view)
    validate_facturx(xml)
    pdf = render_pdf(render_html(view))
    made: bytes = facturx.generate_from_binary(
        pdf,
        xml,
        flavor="factur-x",
        level="en16931",
        check_xsd=True,
        lang=view.locale,
        pdf_metadata={
            "author": _party(view.seller, SELLER_KEYS)["name"],
            "keywords": "Factur-X",
            "title": f"{TEXTS[view.locale][view.kind]} {view.number}",
            "subject": f"{TEXTS[view.locale][view.kind]} {view.number}",
        },
    )
    return made


# --- CSV of the calls -------------------------------------------------------------------------

CSV_COLUMNS: Final = (
    "cdr_id",
    "started_at",
    "to_number",
    "origin_country",
    "destination_country",
    "number_type",
    "billsec",
    "billed_seconds",
    "price_per_minute",
    "connect_fee",
    "amount",
)


def _exact(value: Decimal | None) -> str:
    return "" if value is None else f"{value:f}"


async def calls_csv(session: AsyncSession, invoice_id: int) -> bytes:
    """Every rated call the invoice bills, one row each, exact durations and amounts."""
    calls = await session.scalars(
        select(RatedCall)
        .where(RatedCall.invoice_id == invoice_id)
        .order_by(RatedCall.started_at, RatedCall.cdr_id)
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for call in calls:
        writer.writerow(
            (
                call.cdr_id,
                call.started_at.astimezone(UTC).isoformat(),
                call.to_number,
                call.origin_country,
                call.destination_country,
                call.number_type,
                _exact(call.billsec),
                call.billed_seconds,
                _exact(call.price_per_minute),
                _exact(call.connect_fee),
                _exact(call.amount),
            )
        )
    return out.getvalue().encode("utf-8")


# --- Stored documents ---------------------------------------------------------------------------


def render_document(view: InvoiceView, fmt: str) -> bytes:
    """The invoice's document in ``fmt`` (html, pdf, xml), from its view (blocking work)."""
    if fmt == "html":
        return render_html(view).encode("utf-8")
    if fmt == "xml":
        xml = facturx_xml(view)
        validate_facturx(xml)
        return xml
    if fmt == "pdf":
        return facturx_pdf(view)
    raise ValueError(f"unknown document format {fmt!r}")


async def _render(session: AsyncSession, invoice_id: int, fmt: str) -> bytes:
    if fmt == "csv":
        return await calls_csv(session, invoice_id)
    view = await invoice_view(session, invoice_id)
    # Not on the event loop: WeasyPrint's layout is CPU work of a second or so, and each
    # Factur-X check reads and parses the profile's XSD files from disk.
    return await asyncio.to_thread(render_document, view, fmt)


async def stored_document(session: AsyncSession, invoice_id: int, fmt: str) -> bytes:
    """The invoice's document in ``fmt`` (html, pdf, xml, csv): rendered and stored the first
    time, the stored bytes ever after (an issued invoice's documents never change)."""
    stored = await session.get(InvoiceDocument, (invoice_id, fmt))
    if stored is not None:
        return stored.content
    content = await _render(session, invoice_id, fmt)
    await session.execute(
        insert(InvoiceDocument)
        .values(
            invoice_id=invoice_id,
            format=fmt,
            content=content,
            sha256=hashlib.sha256(content).hexdigest(),
        )
        .on_conflict_do_nothing(index_elements=["invoice_id", "format"])
    )
    # A concurrent first rendering may have won: what is stored is what is served.
    kept = await session.scalar(
        select(InvoiceDocument.content).where(
            InvoiceDocument.invoice_id == invoice_id, InvoiceDocument.format == fmt
        )
    )
    return kept if kept is not None else content
