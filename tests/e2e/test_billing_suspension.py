"""Suspension for non-payment through the real Asterisk: an invoice past its due date and the
grace suspends the tenant at the dunning pass, and its next outbound call is refused before
the carrier; the payment in full recorded through the API reactivates it, and the next call
reaches the carrier again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.billing.dunning import run_dunning
from graam_pbx.billing.models import BillingAccount
from graam_pbx.tenants.models import Tenant
from tests.conftest import RunningApp
from tests.dunning_rows import make_account, make_invoice
from tests.e2e.sipp import SippPool, header
from tests.e2e.test_calls import outbound_invite, outbound_setup, phone_call
from tests.factories import make_world

Sessions = async_sessionmaker[AsyncSession]


async def status_of(sessions: Sessions, tenant_id: int) -> tuple[str, bool]:
    async with sessions() as session:
        tenant = await session.get(Tenant, tenant_id)
        account = await session.get(BillingAccount, tenant_id)
        assert tenant is not None and account is not None
        return tenant.status, account.suspended_for_payment_at is not None


async def test_an_unpaid_invoice_suspends_outbound_calls_until_paid_in_full(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    device, _, carrier = await outbound_setup(client, world, sipp)
    await make_account(sessions, world.tenant_id, grace_days=15)
    settings = pbx.runtime.settings
    now = datetime.now(UTC)
    today = now.astimezone(ZoneInfo(settings.billing_timezone)).date()
    # Issued 50 days ago, due 30 days later: 20 days past due, beyond the 15 days of grace.
    invoice = await make_invoice(
        sessions, world.tenant_id, total="1200.00", issued_on=today - timedelta(days=50)
    )
    await applier.settled()

    await run_dunning(sessions, None, settings, now)
    assert await status_of(sessions, world.tenant_id) == ("suspended", True)
    await applier.settled()
    await carrier.start()
    call = await phone_call(sipp, device, "+33145678901", "uac_call_hungup.xml")
    (bye,) = call.received("BYE")
    assert header(bye, "Reason") == "Q.850;cause=21", bye  # refused after the announcement
    untouched = await carrier.stop()
    assert untouched.received("INVITE") == [], untouched.describe()

    paid = await client.post(
        f"/api/v1/billing/invoices/{invoice.id}/payments",
        headers=world.operator.headers,
        json={"amount": "1200.00", "received_on": today.isoformat(), "reference": "SEPA 42"},
    )
    assert paid.status_code == 201, paid.text
    assert paid.json()["status"] == "paid"
    assert await status_of(sessions, world.tenant_id) == ("active", False)
    await applier.settled()

    # The same carrier (its trunk's address and port) answers the next call.
    carrier_again = sipp.uas("uas_answer.xml", ip=carrier.ip, port=carrier.port)
    invite = await outbound_invite(sipp, device, carrier_again)
    assert invite.startswith("INVITE sip:+33145678901@"), invite
