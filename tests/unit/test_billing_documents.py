"""Invoice documents from hand-made views: the HTML's mandatory mentions in French and English,
the Factur-X XML valid against its EN 16931 schema for each tax status, the PDF/A-3 carrying it."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import facturx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from graam_pbx.billing import documents, invoicing
from graam_pbx.billing.documents import InvoiceView
from graam_pbx.billing.models import InvoiceLine

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
}
SELLER: dict[str, object] = {
    "name": "Opérateur Téléphonie SAS",
    "address": "1 rue de l'Exemple, 75001 Paris",
    "country": "FR",
    "siren": "123456789",
    "vat_number": "FR32123456789",
    "legal_form": "SAS au capital de 10 000 EUR",
    "iban": "FR7630006000011234567890189",
}
BUYERS: dict[str, dict[str, object]] = {
    "fr": {
        "legal_name": "Client <Dupont> & Fils SARL",
        "address": "2 avenue des Tests\n69002 Lyon",
        "country": "FR",
        "siren": "987654321",
        "vat_number": "FR45987654321",
        "billing_email": "compta@dupont.example",
    },
    "eu_business": {
        "legal_name": "Kunde GmbH",
        "address": "Teststraße 3, 10115 Berlin",
        "country": "DE",
        "siren": None,
        "vat_number": "DE123456789",
        "billing_email": "buchhaltung@kunde.example",
    },
    "outside_eu": {
        "legal_name": "Customer Inc.",
        "address": "4 Main Street, New York NY 10001",
        "country": "US",
        "siren": None,
        "vat_number": None,
        "billing_email": "ap@customer.example",
    },
}


def line(
    position: int, kind: str, label: str, quantity: str, unit: str | None, amount: str
) -> InvoiceLine:
    return InvoiceLine(
        invoice_id=1,
        position=position,
        kind=kind,
        label=label,
        quantity=Decimal(quantity),
        unit_price=None if unit is None else Decimal(unit),
        exact_amount=Decimal(amount),
        amount=Decimal(amount),
    )


LINES = (
    line(1, "plan", "Abonnement Pro", "1", "1000.00", "1000.00"),
    line(2, "number", "Numéro +33142685300", "1", "2.50", "2.50"),
    line(3, "licence", "Licences centre d'appels", "3", "10.00", "30.00"),
    line(4, "calls", "Appels France mobile", "2040.0167", None, "202.06"),
)
NET = Decimal("1234.56")


def view(tax_status: str = "fr", locale: str = "fr", **changes: object) -> InvoiceView:
    rate = invoicing.vat_rate_of(tax_status)
    vat = (NET * rate / 100).quantize(Decimal("0.01"))
    fields: dict[str, object] = {
        "id": 1,
        "number": "F2026-000042",
        "kind": "invoice",
        "tenant_id": 7,
        "period_start": date(2026, 11, 1),
        "period_end": date(2026, 11, 30),
        "issued_on": date(2026, 12, 1),
        "due_on": date(2026, 12, 31),
        "currency": "EUR",
        "locale": locale,
        "tax_status": tax_status,
        "vat_rate": rate,
        "net_total": NET,
        "vat_total": vat,
        "total": NET + vat,
        "seller": SELLER,
        "buyer": BUYERS[tax_status],
        "lines": LINES,
        "vat_mention": invoicing.vat_mention(tax_status, locale),
        "unrated_calls": 0,
    }
    fields.update(changes)
    return InvoiceView(**fields)  # type: ignore[arg-type]


def text_of(html: str) -> str:
    """What a reader sees: tags dropped, entities decoded, every kind of space one space."""
    text = re.sub(r"<[^>]+>", " ", html)
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&#39;", "'"), ("&amp;", "&")):
        text = text.replace(entity, char)
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


def xml_values(xml: bytes, path: str) -> list[str]:
    found = etree.fromstring(xml).xpath(path, namespaces=NS)
    return [str(value).strip() for value in found]


def test_french_html_has_every_mandatory_mention() -> None:
    html = documents.render_html(view(unrated_calls=2))
    text = text_of(html)
    for mention in (
        "Facture F2026-000042",
        "Opérateur Téléphonie SAS",
        "SAS au capital de 10 000 EUR",
        "1 rue de l'Exemple, 75001 Paris",
        "SIREN: 123456789",
        "N° TVA intracommunautaire: FR32123456789",
        "Client <Dupont> & Fils SARL",
        "69002 Lyon",
        "SIREN: 987654321",
        "FR45987654321",
        "Date de facture 1 décembre 2026",
        "du 1 novembre 2026 au 30 novembre 2026",
        "Date d'échéance 31 décembre 2026",
        "Abonnement Pro 1 1 000,00 € 1 000,00 €",
        "Licences centre d'appels 3 10,00 € 30,00 €",
        "Appels France mobile 2 040,0167 202,06 €",
        "Total HT 1 234,56 €",
        "TVA 20 % 246,91 €",
        "Total TTC 1 481,47 €",
        "Paiement à 30 jours date de facture; pas d'escompte pour paiement anticipé",
        "En cas de retard de paiement: pénalités au taux de trois fois le taux d'intérêt "
        "légal, et indemnité forfaitaire pour frais de recouvrement de 40 €",
        "2 appel(s) de la période sans tarif",
    ):
        assert mention in text, mention
    # Free text is escaped: a buyer's name never becomes markup.
    assert "<Dupont>" not in html and "&lt;Dupont&gt;" in html


def test_english_html() -> None:
    text = text_of(documents.render_html(view(locale="en")))
    for mention in (
        "Invoice F2026-000042",
        "Invoice date 1 December 2026",
        "from 1 November 2026 to 30 November 2026",
        "Due date 31 December 2026",
        "Abonnement Pro 1 €1,000.00 €1,000.00",
        "Total excl. VAT €1,234.56",
        "VAT 20 % €246.91",
        "Total incl. VAT €1,481.47",
        "Payment within 30 days of the invoice date; no discount for early payment",
        "three times the French legal interest rate, and a fixed recovery indemnity of €40",
    ):
        assert mention in text, mention
    assert "sans tarif" not in text and "had no applicable rate" not in text


@pytest.mark.parametrize("locale", ["fr", "en"])
def test_reverse_charge_and_outside_eu_mentions(locale: str) -> None:
    reverse = text_of(documents.render_html(view("eu_business", locale)))
    outside = text_of(documents.render_html(view("outside_eu", locale)))
    assert (invoicing.vat_mention("eu_business", locale) or "-") in reverse
    assert (invoicing.vat_mention("outside_eu", locale) or "-") in outside
    assert "DE123456789" in reverse


@pytest.mark.parametrize("tax_status", ["fr", "eu_business", "outside_eu"])
def test_facturx_xml_is_valid_en16931(tax_status: str) -> None:
    xml = documents.facturx_xml(view(tax_status))
    documents.validate_facturx(xml)  # raises when the schema refuses it
    assert facturx.get_level(etree.fromstring(xml)) == "en16931"
    summation = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/"
    assert xml_values(xml, summation + "ram:LineTotalAmount/text()") == ["1234.56"]
    assert xml_values(xml, summation + "ram:TaxBasisTotalAmount/text()") == ["1234.56"]
    assert xml_values(xml, "//rsm:ExchangedDocument/ram:TypeCode/text()") == ["380"]
    assert xml_values(
        xml, "//ram:SellerTradeParty/ram:SpecifiedLegalOrganization/ram:ID/@schemeID"
    ) == ["0002"]
    assert xml_values(
        xml, "//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString/text()"
    ) == ["20261231"]
    category = xml_values(
        xml, "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode/text()"
    )
    assert category == [{"fr": "S", "eu_business": "AE", "outside_eu": "O"}[tax_status]]
    line_totals = xml_values(
        xml, "//ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount/text()"
    )
    assert sum(Decimal(value) for value in line_totals) == NET
    if tax_status == "fr":
        assert xml_values(xml, summation + "ram:GrandTotalAmount/text()") == ["1481.47"]
        assert xml_values(
            xml,
            "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:RateApplicablePercent/text()",
        ) == ["20"]
    else:
        assert xml_values(xml, summation + "ram:GrandTotalAmount/text()") == ["1234.56"]
        reason = xml_values(
            xml,
            "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:ExemptionReasonCode/text()",
        )
        assert reason == ["VATEX-EU-AE" if tax_status == "eu_business" else "VATEX-EU-O"]
    if tax_status == "eu_business":
        assert xml_values(
            xml, "//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID/text()"
        ) == ["DE123456789"]


def test_calls_line_prices_its_billed_minutes_exactly() -> None:
    xml = documents.facturx_xml(view())
    item = etree.fromstring(xml).xpath("//ram:IncludedSupplyChainTradeLineItem[4]", namespaces=NS)[
        0
    ]
    quantity = Decimal(item.xpath(".//ram:BilledQuantity/text()", namespaces=NS)[0])
    price = Decimal(item.xpath(".//ram:ChargeAmount/text()", namespaces=NS)[0])
    basis = Decimal(item.xpath(".//ram:BasisQuantity/text()", namespaces=NS)[0])
    total = Decimal(item.xpath(".//ram:LineTotalAmount/text()", namespaces=NS)[0])
    assert quantity == Decimal("2040.0167") and quantity * price / basis == total == Decimal(
        "202.06"
    )


def test_credit_note_names_the_invoice_it_credits() -> None:
    negative = tuple(
        line(
            n.position,
            n.kind,
            n.label,
            str(-n.quantity),
            None if n.unit_price is None else str(n.unit_price),
            str(-n.amount),
        )
        for n in LINES
    )
    credit = view(
        number="A2026-000001",
        kind="credit_note",
        net_total=-NET,
        vat_total=Decimal("-246.91"),
        total=Decimal("-1481.47"),
        lines=negative,
        credits_number="F2026-000042",
        credits_issued_on=date(2026, 12, 1),
    )
    text = text_of(documents.render_html(credit))
    assert "Avoir A2026-000001" in text
    assert "Avoir sur la facture n° F2026-000042 du 1 décembre 2026" in text
    xml = documents.facturx_xml(credit)
    documents.validate_facturx(xml)
    assert xml_values(xml, "//rsm:ExchangedDocument/ram:TypeCode/text()") == ["381"]
    assert xml_values(xml, "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID/text()") == [
        "F2026-000042"
    ]
    # A credit note states what it credits in positive amounts.
    assert xml_values(xml, "//ram:GrandTotalAmount/text()") == ["1481.47"]


def test_invalid_xml_is_refused() -> None:
    xml = documents.facturx_xml(view()).replace(b"<ram:TypeCode>380</ram:TypeCode>", b"")
    with pytest.raises(documents.FacturxInvalid):
        documents.validate_facturx(xml)


def test_facturx_pdf_carries_its_xml() -> None:
    made = view(locale="en")
    pdf = documents.facturx_pdf(made)
    assert pdf.startswith(b"%PDF")
    name, embedded = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    assert name == "factur-x.xml"
    assert embedded == documents.facturx_xml(made)


def test_mail_texts() -> None:
    subject, body = documents.render_mail(view(), "fr")
    body = text_of(body)
    assert subject == "Votre facture F2026-000042"
    assert "payable au plus tard le 31 décembre 2026" in body and "1 481,47" in body
    subject, body = documents.render_mail(view(locale="en"), "en")
    body = text_of(body)
    assert subject == "Your invoice F2026-000042"
    assert "payable by 31 December 2026" in body and "€1,481.47" in body
    assert "&amp;" not in documents.render_mail(view(seller={**SELLER, "name": "A & B"}), "en")[1]


amounts = st.decimals(min_value=Decimal(0), max_value=Decimal("99999.99"), places=2)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(amounts, min_size=1, max_size=6), st.sampled_from(["fr", "eu_business", "outside_eu"])
)
def test_any_amounts_give_a_valid_xml_with_the_same_totals(
    line_amounts: list[Decimal], tax_status: str
) -> None:
    lines = tuple(
        line(n, "user", f"Utilisateur {n}", "1", str(amount), str(amount))
        for n, amount in enumerate(line_amounts, start=1)
    )
    net = sum(line_amounts, Decimal(0))
    rate = invoicing.vat_rate_of(tax_status)
    vat = (net * rate / 100).quantize(Decimal("0.01"))
    xml = documents.facturx_xml(
        view(tax_status, lines=lines, net_total=net, vat_total=vat, total=net + vat)
    )
    documents.validate_facturx(xml)
    totals = xml_values(
        xml, "//ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount/text()"
    )
    assert [Decimal(value) for value in totals] == line_amounts
    assert Decimal(xml_values(xml, "//ram:GrandTotalAmount/text()")[0]) == net + vat


def test_a_month_with_nothing_billed_still_has_one_line() -> None:
    zero = Decimal("0.00")
    xml = documents.facturx_xml(view(lines=(), net_total=zero, vat_total=zero, total=zero))
    documents.validate_facturx(xml)
    assert xml_values(xml, "//ram:SpecifiedTradeProduct/ram:Name/text()") == [
        "Aucune prestation facturée sur la période"
    ]


def test_a_snapshot_missing_fields_still_renders() -> None:
    sparse = view(seller={"name": "Operator SAS"}, buyer={"name": "Client SAS"})
    text = text_of(documents.render_html(sparse))
    assert "Operator SAS" in text and "Client SAS" in text
    # Without a country there is no valid Factur-X: refused, clearly.
    with pytest.raises(documents.FacturxInvalid, match="no name or country"):
        documents.facturx_xml(sparse)
