"""A fresh install bills its demo tenant: the first run's prices, rates and billing account
(what `graam-pbx run` makes on an empty database) give a real invoice at the month's end."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from graam_pbx.auth.principal import Principal, Role
from graam_pbx.billing import invoicing
from graam_pbx.billing.demo import DEMO_DECK, seed_demo_billing
from graam_pbx.billing.models import BillingAccount, InvoiceLine, Rate
from graam_pbx.billing.periods import next_month
from graam_pbx.db import create_engine, migrate, session_factory
from graam_pbx.settings import Settings
from graam_pbx.tenants.flows import first_run


@pytest.fixture
async def fresh_database(empty_database_url: str) -> str:
    await migrate(empty_database_url)
    return empty_database_url


async def test_the_demo_tenant_is_priced_rated_and_invoiced(fresh_database: str) -> None:
    settings = Settings()
    zone = ZoneInfo(settings.billing_timezone)
    engine = create_engine(fresh_database, pool_size=2)
    sessions = session_factory(engine)
    try:
        async with sessions() as session, session.begin():
            made = await first_run(session)
            assert made is not None and made.operator_id is not None
            operator = Principal(made.operator_id, Role.OPERATOR, None, made.operator.email)
            await seed_demo_billing(session, operator, made.tenant.tenant_id, zone=zone)
        tenant_id = made.tenant.tenant_id
        async with sessions() as session:
            account = await session.get(BillingAccount, tenant_id)
            rates = (await session.scalars(select(Rate.prefix))).all()
        assert account is not None and account.tax_status == "fr"
        assert len(rates) == len(DEMO_DECK.strip().splitlines()) - 1

        # The month's end passes: the demo tenant's first invoice.
        today = datetime.now(UTC).astimezone(zone).date()
        after = datetime.combine(next_month(today), time(0), zone) + timedelta(hours=1)
        [invoice_id] = await invoicing.invoice_due(sessions, settings, after)
        async with sessions() as session:
            lines = (
                await session.scalars(
                    select(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id)
                )
            ).all()
        by_kind = {line.kind: line for line in lines}
        assert by_kind["plan"].amount == Decimal("29.00")
        assert by_kind["user"].quantity == 4  # the demo's admin, supervisor and two agents
        assert by_kind["user"].amount == Decimal("20.00")
        assert sum(line.quantity for line in lines if line.kind == "number") >= 1
    finally:
        await engine.dispose()
