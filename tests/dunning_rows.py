"""Billing rows the payment and dunning tests start from: a tenant's billing account and its
issued invoices, written directly with numbers from the invoices' own series."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.billing import money, numbering
from graam_pbx.billing.models import BillingAccount, Invoice
from graam_pbx.billing.periods import PAYMENT_DAYS, month_start, next_month

_months = itertools.count()


async def make_account(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: int,
    *,
    grace_days: int = 15,
    billing_email: str | None = None,
) -> None:
    async with sessions() as session, session.begin():
        session.add(
            BillingAccount(
                tenant_id=tenant_id,
                legal_name=f"Client {tenant_id} SAS",
                address="1 rue de la Paix\n75002 Paris",
                country="FR",
                siren="123456789",
                vat_number="FR40123456789",
                tax_status="fr",
                billing_email=billing_email or f"billing-{tenant_id}@client.example",
                locale="fr",
                subscribed_on=date(2024, 1, 1),
                grace_days=grace_days,
            )
        )


async def make_invoice(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: int,
    *,
    total: str,
    issued_on: date,
    due_on: date | None = None,
    paid: str = "0",
) -> Invoice:
    """An issued invoice of ``total`` (VAT included, 20 %), due ``PAYMENT_DAYS`` after issue
    unless ``due_on`` says otherwise; each of a tenant's invoices bills its own month."""
    gross = Decimal(total)
    net = (gross / Decimal("1.2")).quantize(money.CENT)
    # A distinct old month per invoice: one invoice per tenant and period.
    month = date(2015, 1, 1)
    for _ in range(next(_months)):
        month = next_month(month)
    async with sessions() as session, session.begin():
        invoice = Invoice(
            number=await numbering.next_number(session, "invoice", issued_on.year),
            kind="invoice",
            tenant_id=tenant_id,
            period_start=month_start(month),
            period_end=next_month(month) - timedelta(days=1),
            issued_on=issued_on,
            due_on=due_on or issued_on + timedelta(days=PAYMENT_DAYS),
            currency="EUR",
            locale="fr",
            tax_status="fr",
            vat_rate=Decimal("20.00"),
            net_total=net,
            vat_total=gross - net,
            total=gross,
            seller={"name": "Operator SAS"},
            buyer={"name": f"Client {tenant_id} SAS"},
            paid_amount=Decimal(paid),
        )
        session.add(invoice)
    return invoice


async def make_credit_note(
    sessions: async_sessionmaker[AsyncSession], invoice: Invoice, *, issued_on: date
) -> None:
    async with sessions() as session, session.begin():
        session.add(
            Invoice(
                number=await numbering.next_number(session, "credit_note", issued_on.year),
                kind="credit_note",
                tenant_id=invoice.tenant_id,
                credits_invoice_id=invoice.id,
                period_start=invoice.period_start,
                period_end=invoice.period_end,
                issued_on=issued_on,
                due_on=issued_on,
                currency="EUR",
                locale="fr",
                tax_status="fr",
                vat_rate=invoice.vat_rate,
                net_total=invoice.net_total,
                vat_total=invoice.vat_total,
                total=invoice.total,
                seller=invoice.seller,
                buyer=invoice.buyer,
            )
        )
