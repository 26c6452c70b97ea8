"""Billing pages for a tenant's admin: its invoices (documents, statement, contesting one) and
the rates it pays (international rates in force and next, monthly price changes to come).

Every read and change is a ``billing`` service function the API's routes call too, with the
tenant's scope; an operator sees a tenant's pages with ``?tenant=``. The invoices' documents
are served here too (the API takes bearer credentials only, never the console's cookie), from
the same stored bytes as ``/api/v1/billing/invoices/{id}/…``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from typing import Annotated, Final, Literal
from zoneinfo import ZoneInfo

import phonenumbers
from babel import Locale
from fastapi import Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from graam_pbx.billing import accounts, decks, disputes, documents, invoicing, payments, prices
from graam_pbx.billing.models import Invoice, Price
from graam_pbx.billing.schemas.payments import DisputeCreate
from graam_pbx.deps import DbSession
from graam_pbx.errors import Invalid, NotFound
from graam_pbx.fields import MAX_ID
from graam_pbx.rest import every_page
from graam_pbx.tenants.models import TenantStatus
from graam_pbx.web.forms import form_id
from graam_pbx.web.i18n import _
from graam_pbx.web.render import SECURITY_HEADERS, page
from graam_pbx.web.viewer import AdminViewer, Viewer, console_router

router = console_router()

RATE_ROWS: Final = 50
MAX_RATE_PAGE: Final = 10_000
REASON_MAX: Final = 10_000  # DisputeCreate's reason (fields.MessageText)
InvoiceId = Annotated[int, Path(ge=1, le=MAX_ID)]

# The documents of an invoice, by the name the console and the API serve them under: the
# stored format and the download's file name after the invoice's number.
DOCUMENTS: Final = {
    "invoice.pdf": ("pdf", ".pdf"),
    "invoice.xml": ("xml", ".xml"),
    "calls.csv": ("csv", "-calls.csv"),
}

# The kinds of numbers (numbers.models.NumberType) and of monthly prices, as the pages say them.
NUMBER_TYPES: Final = {
    "geographic": _("Geographic"),
    "mobile": _("Mobile"),
    "toll_free": _("Toll-free"),
    "national": _("National (shared cost)"),
}
ITEM_LABELS: Final = {
    "plan": _("Your plan"),
    "user": _("Each user"),
    "licence": _("Each call-centre licence"),
}


def billing_today(request: Request) -> date:
    """Today on the billing clock (what due dates and the 30 days to contest count in)."""
    zone = ZoneInfo(request.app.state.runtime.settings.billing_timezone)
    return datetime.now(zone).date()


def money_of(viewer: Viewer, amount: Decimal, currency: str = "EUR") -> str:
    """An amount in the viewer's language, as the invoice writes it."""
    return documents.money(amount, currency, viewer.texts.locale)


def unit_money_of(viewer: Viewer, amount: Decimal, currency: str = "EUR") -> str:
    """A unit price as exact as it is stored (up to 6 decimals)."""
    return documents.unit_money(amount, currency, viewer.texts.locale)


def country_names(viewer: Viewer) -> dict[str, str]:
    """Every country a number belongs to, its name in the viewer's language, by ISO code."""
    territories = Locale.parse(viewer.texts.locale).territories
    return {code: territories.get(code, code) for code in phonenumbers.SUPPORTED_REGIONS}


def number_type_label(viewer: Viewer, number_type: str) -> str:
    """A kind of number in the viewer's language ("" is any kind)."""
    if not number_type:
        return viewer.texts.gettext("Any type")
    label = NUMBER_TYPES.get(number_type)
    return viewer.texts.gettext(label) if label else number_type


def price_label(viewer: Viewer, price: Price, countries: dict[str, str]) -> str:
    """What a monthly price is the price of, in the viewer's language."""
    if price.item == "number":
        return viewer.texts.gettext(
            "Each phone number: {kind}, {country}",
            kind=number_type_label(viewer, price.number_type or ""),
            country=countries.get(price.country or "", price.country or ""),
        )
    return viewer.texts.gettext(ITEM_LABELS.get(price.item, price.item))


# ---- invoices ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceRow:
    """One invoice (or credit note) as the page lists it."""

    id: int
    number: str
    kind: str
    period_start: date
    period_end: date
    issued_on: date
    due_on: date
    total: Decimal
    paid: Decimal
    currency: str
    status: str

    def contestable(self, today: date) -> bool:
        """Within the contract's 30 days of its issue, and not already contested or credited."""
        return (
            self.kind == "invoice"
            and self.status not in ("disputed", "credited")
            and today <= disputes.contest_ends_on(self.issued_on)
        )


async def invoice_rows(
    viewer: Viewer, session: DbSession, statement: payments.Statement
) -> list[InvoiceRow]:
    """The tenant's invoices and credit notes, the newest first, each with its payment state
    as of the statement's day (a credit note has none: its state is its kind)."""
    principal, tenant_id = viewer.principal, viewer.scope.tenant_id

    async def read(after_id: int | None) -> tuple[list[Invoice], int | None]:
        return await invoicing.list_invoices(
            session, principal, tenant_id=tenant_id, kind=None, after_id=after_id, limit=200
        )

    invoices = await every_page(read)
    states = {line.invoice.id: line for line in statement.lines}
    rows = []
    for invoice in invoices:
        state = states.get(invoice.id)
        rows.append(
            InvoiceRow(
                id=invoice.id,
                number=invoice.number,
                kind=invoice.kind,
                period_start=invoice.period_start,
                period_end=invoice.period_end,
                issued_on=invoice.issued_on,
                due_on=invoice.due_on,
                total=invoice.total,
                paid=state.paid if state is not None else invoice.paid_amount,
                currency=invoice.currency,
                status=state.status if state is not None else invoice.kind,
            )
        )
    rows.sort(key=lambda row: (row.issued_on, row.id), reverse=True)
    return rows


async def tenant_invoice(viewer: Viewer, session: DbSession, invoice_id: int) -> Invoice:
    """An invoice of the tenant the page acts in."""
    # Through the service's rule of who reads invoices, then within the tenant the page acts
    # in (an operator acting in a tenant reaches only that tenant's invoices here).
    found = await invoicing.get_invoice(session, viewer.principal, invoice_id)
    if found.tenant_id != viewer.scope.tenant_id:
        raise NotFound(f"no invoice {invoice_id}")
    return found


async def suspended_for_payment(session: DbSession, viewer: Viewer) -> bool:
    """Whether billing suspended the tenant for non-payment (not the operator by hand)."""
    tenant = viewer.tenant
    if tenant is None or tenant.status != TenantStatus.SUSPENDED.value:
        return False
    account = await accounts.get_account(session, tenant.id)
    return account is not None and account.suspended_for_payment_at is not None


async def invoices_page(
    request: Request,
    viewer: Viewer,
    session: DbSession,
    *,
    status: int = 200,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    done: str | None = None,
) -> Response:
    today = billing_today(request)
    statement = await payments.statement(session, viewer.scope.tenant_id, today)
    rows = await invoice_rows(viewer, session, statement)
    return page(
        request,
        viewer,
        "billing.html",
        status=status,
        title=viewer.texts.gettext("Invoices"),
        invoices=rows,
        statement=statement,
        suspended=await suspended_for_payment(session, viewer),
        contestable=[row for row in rows if row.contestable(today)],
        typed=typed or {},
        errors=errors or {},
        done=done,
        reason_max=REASON_MAX,
        money=partial(money_of, viewer),
    )


@router.get("/billing")
async def billing(
    request: Request,
    viewer: AdminViewer,
    session: DbSession,
    contested: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    done = None
    if contested is not None:
        found = await tenant_invoice(viewer, session, contested)
        done = viewer.texts.gettext(
            "Invoice {number} is contested: the operator will answer you.", number=found.number
        )
    return await invoices_page(request, viewer, session, done=done)


def reason_error(viewer: Viewer, reason: str) -> str | None:
    """Why the reason typed cannot be sent (the API's own rule, ``DisputeCreate``), or None."""
    try:
        DisputeCreate(reason=reason.strip())
    except ValidationError:
        return viewer.texts.gettext(
            "Write 1 to {count} characters, without control characters.",
            count=viewer.texts.number(REASON_MAX),
        )
    return None


@router.post("/billing/disputes")
async def contest(
    request: Request,
    viewer: AdminViewer,
    session: DbSession,
    invoice: Annotated[str, Form(max_length=32)] = "",
    reason: Annotated[str, Form(max_length=REASON_MAX * 2)] = "",
) -> Response:
    gettext = viewer.texts.gettext
    errors: dict[str, str] = {}
    invoice_id = form_id(invoice.strip())
    if invoice_id is None:
        errors["invoice"] = gettext("Choose the invoice to contest.")
    refused = reason_error(viewer, reason)
    if refused is not None:
        errors["reason"] = refused
    status = 422
    if not errors and invoice_id is not None:
        try:
            # A savepoint: a refused dispute leaves the request's transaction as it was.
            async with session.begin_nested():
                opened = await disputes.open_dispute(
                    session,
                    viewer.scope,
                    invoice_id,
                    reason.strip(),
                    billing_today(request),
                    datetime.now(UTC),
                )
        except disputes.DisputeOpen:
            status = 409
            errors["invoice"] = gettext("This invoice is already contested.")
        except Invalid:
            # The service refuses a credit note, and an invoice past its 30 days.
            found = await tenant_invoice(viewer, session, invoice_id)
            errors["invoice"] = (
                gettext("A credit note is not contested: choose an invoice.")
                if found.kind != "invoice"
                else gettext(
                    "This invoice can no longer be contested: the 30 days after its issue are over."
                )
            )
        except NotFound:
            errors["invoice"] = gettext("Choose the invoice to contest.")
        else:
            return RedirectResponse(
                viewer.link("/billing", contested=opened.invoice_id), status_code=303
            )
    return await invoices_page(
        request,
        viewer,
        session,
        status=status,
        typed={"invoice": invoice, "reason": reason},
        errors=errors,
    )


@router.get("/billing/invoices/{invoice_id}/{name}")
async def invoice_document(
    viewer: AdminViewer,
    session: DbSession,
    invoice_id: InvoiceId,
    name: Annotated[str, Path(max_length=32)],
) -> Response:
    document = DOCUMENTS.get(name)
    if document is None:
        raise NotFound(f"no document {name}")
    fmt, suffix = document
    # The documents' own rule of who reads an invoice, then within the tenant the page acts
    # in (an operator acting in a tenant reaches only that tenant's invoices here).
    found = await documents.readable_invoice(session, viewer.principal, invoice_id)
    if found.tenant_id != viewer.scope.tenant_id:
        raise NotFound(f"no invoice {invoice_id}")
    content = await documents.stored_document(session, found.id, fmt)
    filename = documents.file_name(found, suffix)
    return Response(
        content,
        media_type=documents.MEDIA_TYPES[fmt],
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )


# ---- rates -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceChange:
    """A monthly price concerning the tenant that takes effect later."""

    label: str
    amount: Decimal
    currency: str
    effective_on: date


async def price_changes(
    viewer: Viewer, session: DbSession, today: date, countries: dict[str, str]
) -> list[PriceChange]:
    """The tenant's monthly prices published to take effect after today, the soonest first."""
    found = await prices.prices_for_tenant(session, viewer.scope.tenant_id, today=today)
    upcoming = sorted(
        (price for price in found if price.effective_on > today),
        key=lambda price: (price.effective_on, price.item, price.id),
    )
    return [
        PriceChange(
            price_label(viewer, price, countries), price.amount, price.currency, price.effective_on
        )
        for price in upcoming
    ]


@router.get("/billing/rates")
async def rates(
    request: Request,
    viewer: AdminViewer,
    session: DbSession,
    country: Annotated[str, Query(max_length=8)] = "",
    deck: Annotated[Literal["current", "next"], Query()] = "current",
    after: Annotated[str | None, Query(max_length=200)] = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=MAX_RATE_PAGE)] = 1,
) -> Response:
    countries = country_names(viewer)
    chosen = country.strip().upper()
    country_error = None
    if chosen and chosen not in countries:
        country_error = viewer.texts.gettext("Choose a country from the list.")
    shown = await decks.rates_for_client(
        session,
        viewer.scope,
        deck=deck,
        country=None if country_error else chosen or None,
        after=after,
        limit=RATE_ROWS,
    )
    following = await decks.deck_in_force(session, "next") if deck == "current" else None
    query = {"country": chosen or None, "deck": "next" if deck == "next" else None}
    return page(
        request,
        viewer,
        "billing_rates.html",
        status=422 if country_error else 200,
        title=viewer.texts.gettext("Rates"),
        deck=shown.deck,
        next_deck=following,
        showing=deck,
        rates=[] if country_error else shown.rates,
        country=chosen,
        country_error=country_error,
        countries=sorted(countries.items(), key=lambda item: item[1]),
        country_name=lambda code: countries.get(code, code),
        type_label=partial(number_type_label, viewer),
        page_number=page_number,
        first_page=viewer.link("/billing/rates", **query) if after else None,
        next_page=(
            viewer.link("/billing/rates", **query, after=shown.next_cursor, page=page_number + 1)
            if shown.next_cursor and not country_error
            else None
        ),
        price_changes=await price_changes(viewer, session, billing_today(request), countries),
        unit_money=partial(unit_money_of, viewer),
    )
