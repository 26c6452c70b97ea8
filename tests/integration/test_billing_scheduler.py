"""The billing scheduler in the running control plane: a month that ended while the control
plane was stopped is invoiced by the first pass after it starts again, once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from graam_pbx.app import Endpoints
from graam_pbx.billing.models import BillingAccount, BillingPlan, Holding, Invoice, Price
from graam_pbx.billing.periods import month_start, previous_month
from graam_pbx.db import create_engine, session_factory
from graam_pbx.tenants.models import Tenant
from tests.conftest import Asterisk, start_app
from tests.factories import unique

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    made = create_engine(database_url, pool_size=8)
    yield made
    await made.dispose()


async def billed_tenant(sessions: Sessions, subscribed_on: date) -> int:
    """A tenant on a priced plan with a billing account, subscribed on ``subscribed_on``."""
    plan = unique("plan")
    async with sessions() as session, session.begin():
        session.add(BillingPlan(code=plan, name=plan))
        await session.flush()
        session.add(
            Price(
                item="plan",
                plan_code=plan,
                amount=Decimal("49.00"),
                effective_on=date(2000, 1, 1),
                published_by="test",
            )
        )
        tenant = Tenant(
            slug=unique("sched"), name="Scheduled", country="FR", timezone="Europe/Paris", plan=plan
        )
        session.add(tenant)
        await session.flush()
        await session.execute(delete(Holding).where(Holding.tenant_id == tenant.id))
        session.add(
            BillingAccount(
                tenant_id=tenant.id,
                legal_name="Scheduled SAS",
                address="3 rue du Test\n75003 Paris",
                country="FR",
                siren="732829320",
                vat_number="FR44732829320",
                tax_status="fr",
                billing_email="billing@scheduled.example",
                locale="fr",
                subscribed_on=subscribed_on,
            )
        )
    return tenant.id


async def test_months_that_ended_while_stopped_are_invoiced_at_the_next_start(
    database_url: str, asterisk: Asterisk, engine: AsyncEngine
) -> None:
    sessions = session_factory(engine)
    this_month = month_start(datetime.now(UTC).date())
    two_months_ago = previous_month(previous_month(this_month))
    tenant_id = await billed_tenant(sessions, two_months_ago.replace(day=1))

    endpoints = Endpoints(database_url=database_url, ami=asterisk.ami_config())
    # Nothing ran at the last two midnights: the first pass after the start makes both.
    async for running in start_app(endpoints):
        billing = running.runtime.billing
        assert billing is not None
        await billing.wait_passes(1)
        async with sessions() as session:
            invoices = (
                await session.scalars(
                    select(Invoice).where(Invoice.tenant_id == tenant_id).order_by(Invoice.id)
                )
            ).all()
        starts = [invoice.period_start for invoice in invoices]
        assert starts == [two_months_ago, previous_month(this_month)], starts
        assert [invoice.net_total for invoice in invoices] == [Decimal("49.00")] * 2

        # A second pass makes nothing new.
        billing.request()
        await billing.wait_passes(2)
        async with sessions() as session:
            again = (
                await session.scalars(select(Invoice.id).where(Invoice.tenant_id == tenant_id))
            ).all()
        assert sorted(again) == sorted(invoice.id for invoice in invoices)
