"""Month-end invoices on the real Postgres: lines and totals, idempotent and concurrent runs,
gap-free numbers, the catch-up after a stop, the last period of a termination, credit notes.

Each test bills its own tenants in a year of its own, so that its invoice series (F<year>)
holds its invoices only; the holdings of a past month are written directly, as the triggers
would have written them then, and so are rated calls.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from graam_pbx.auth import service as auth_service
from graam_pbx.auth.principal import Principal, Role
from graam_pbx.billing import invoicing, numbering
from graam_pbx.billing.models import (
    BillingAccount,
    BillingPlan,
    Holding,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    Price,
    RatedCall,
)
from graam_pbx.db import create_engine, session_factory
from graam_pbx.errors import Forbidden
from graam_pbx.settings import Settings
from graam_pbx.tenants.models import Tenant
from tests.factories import PASSWORD, unique

Sessions = async_sessionmaker[AsyncSession]
PARIS = ZoneInfo("Europe/Paris")
SETTINGS = Settings()
_cdr_ids = itertools.count(1)


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    made = create_engine(database_url, pool_size=10)
    yield made
    await made.dispose()


@pytest.fixture(scope="module")
def sessions(engine: AsyncEngine) -> Sessions:
    return session_factory(engine)


@dataclass
class Client:
    tenant_id: int
    plan: str


def paris(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=PARIS)


async def make_client(
    sessions: Sessions,
    *,
    subscribed_on: date,
    tax_status: str = "fr",
    locale: str = "fr",
    terminates_on: date | None = None,
) -> Client:
    """A tenant with its own plan (priced from 2000 on) and a billing account; it holds
    nothing until a test says so."""
    plan = unique("plan")
    async with sessions() as session, session.begin():
        session.add(BillingPlan(code=plan, name=f"Plan {plan}"))
        await session.flush()
        for item, amount in (("plan", "29.00"), ("user", "3.3333"), ("licence", "15.00")):
            session.add(
                Price(
                    item=item,
                    plan_code=plan,
                    amount=Decimal(amount),
                    effective_on=date(2000, 1, 1),
                    published_by="test",
                )
            )
        for country, kind, amount in (("FR", "geographic", "1.50"), ("GB", "mobile", "4.25")):
            session.add(
                Price(
                    item="number",
                    plan_code=plan,
                    country=country,
                    number_type=kind,
                    amount=Decimal(amount),
                    effective_on=date(2000, 1, 1),
                    published_by="test",
                )
            )
        tenant = Tenant(
            slug=unique("bill"), name="Billed", country="FR", timezone=PARIS.key, plan=plan
        )
        session.add(tenant)
        await session.flush()
        # What the triggers recorded now is not what these past months held.
        await session.execute(delete(Holding).where(Holding.tenant_id == tenant.id))
        session.add(
            BillingAccount(
                tenant_id=tenant.id,
                legal_name="Billed SAS",
                address="2 rue du Client\n69001 Lyon",
                country="FR" if tax_status == "fr" else "DE",
                siren="123456789" if tax_status == "fr" else None,
                vat_number="FR12123456789" if tax_status == "fr" else "DE123456789",
                tax_status=tax_status,
                billing_email="billing@client.example",
                locale=locale,
                subscribed_on=subscribed_on,
                terminates_on=terminates_on,
            )
        )
    return Client(tenant.id, plan)


async def hold(sessions: Sessions, tenant_id: int, *rows: Holding) -> None:
    async with sessions() as session, session.begin():
        for row in rows:
            row.tenant_id = tenant_id
            session.add(row)


def call(
    tenant_id: int,
    period: date,
    country: str,
    kind: str,
    seconds: int,
    amount: str | None,
    *,
    invoice_id: int | None = None,
) -> RatedCall:
    started = datetime.combine(period, datetime.min.time(), PARIS) + timedelta(days=2)
    return RatedCall(
        cdr_id=next(_cdr_ids) + 10_000_000 * tenant_id,
        started_at=started,
        tenant_id=tenant_id,
        period=period,
        to_number="+33142685300" if country == "FR" else "+447700900123",
        origin_country="FR",
        destination_country=country,
        number_type=kind,
        billsec=Decimal(seconds),
        billed_seconds=seconds,
        amount=None if amount is None else Decimal(amount),
        invoice_id=invoice_id,
    )


async def lines_of(sessions: Sessions, invoice_id: int) -> list[InvoiceLine]:
    async with sessions() as session:
        rows = await session.scalars(
            select(InvoiceLine)
            .where(InvoiceLine.invoice_id == invoice_id)
            .order_by(InvoiceLine.position)
        )
        return list(rows.all())


async def invoices_of(sessions: Sessions, tenant_ids: list[int]) -> list[Invoice]:
    async with sessions() as session:
        rows = await session.scalars(
            select(Invoice).where(Invoice.tenant_id.in_(tenant_ids)).order_by(Invoice.id)
        )
        return list(rows.all())


async def test_an_invoice_bills_its_fixed_part_and_every_call_not_yet_invoiced(
    sessions: Sessions,
) -> None:
    client = await make_client(sessions, subscribed_on=date(2030, 1, 10))
    march = date(2030, 3, 1)
    await hold(
        sessions,
        client.tenant_id,
        Holding(item="number", ref_id=1, label="+33142685300", country="FR",
                number_type="geographic", held_from=paris(2030, 1, 10)),
        Holding(item="number", ref_id=2, label="+33142685301", country="FR",
                number_type="geographic", held_from=paris(2030, 1, 10),
                held_until=paris(2030, 3, 5)),
        Holding(item="number", ref_id=3, label="+447700900123", country="GB",
                number_type="mobile", held_from=paris(2030, 3, 20)),
        Holding(item="user", ref_id=10, held_from=paris(2030, 1, 10)),
        Holding(item="user", ref_id=11, held_from=paris(2030, 3, 15),
                held_until=paris(2030, 3, 16)),
        Holding(item="user", ref_id=12, held_from=paris(2030, 2, 1),
                held_until=paris(2030, 2, 27)),
        Holding(item="licences", quantity=2, held_from=paris(2030, 1, 10),
                held_until=paris(2030, 3, 10)),
        Holding(item="licences", quantity=5, held_from=paris(2030, 3, 10),
                held_until=paris(2030, 3, 20)),
        Holding(item="licences", quantity=3, held_from=paris(2030, 3, 20)),
    )  # fmt: skip
    t = client.tenant_id
    ten_fr = [call(t, march, "FR", "geographic", 60, "0.050000") for _ in range(10)]
    gb = [
        call(t, march, "GB", "mobile", 61, "0.152500"),
        call(t, march, "GB", "mobile", 1, "0.002500"),
    ]
    late = call(t, date(2030, 2, 1), "FR", "geographic", 120, "0.100000")  # rated after Feb's
    unrated = call(t, march, "US", "geographic", 30, None)
    april = call(t, date(2030, 4, 1), "FR", "geographic", 60, "0.050000")
    billed_before = call(t, date(2030, 2, 1), "FR", "geographic", 60, "0.050000", invoice_id=10**12)
    async with sessions() as session, session.begin():
        session.add_all([*ten_fr, *gb, late, unrated, april, billed_before])

    async with sessions() as session, session.begin():
        # On its last day, March has not ended: no invoice.
        early = await invoicing.invoice_tenant_month(session, t, march, SETTINGS, date(2030, 3, 31))
    assert early is None
    report = invoicing.RunReport()
    async with sessions() as session, session.begin():
        made = await invoicing.invoice_tenant_month(
            session, t, march, SETTINGS, date(2030, 4, 1), report=report
        )
    assert made is not None
    assert report.invoice_ids == [made.id]
    assert report.unrated_calls == 1
    assert report.warnings == []
    assert made.number.startswith("F2030-")
    assert (made.period_start, made.period_end) == (march, date(2030, 3, 31))
    assert (made.issued_on, made.due_on) == (date(2030, 4, 1), date(2030, 5, 1))
    assert (made.tax_status, made.vat_rate, made.locale) == ("fr", Decimal(20), "fr")
    assert made.seller["siren"] == SETTINGS.seller_siren
    assert made.buyer["legal_name"] == "Billed SAS"
    assert made.buyer["vat_number"] == "FR12123456789"

    lines = await lines_of(sessions, made.id)
    table = [
        (ln.kind, ln.country, ln.number_type, ln.quantity, ln.calls, ln.billed_seconds, ln.amount)
        for ln in lines
    ]
    assert table == [
        ("plan", None, None, Decimal(1), None, None, Decimal("29.00")),
        ("number", "FR", "geographic", Decimal(2), None, None, Decimal("3.00")),
        ("number", "GB", "mobile", Decimal(1), None, None, Decimal("4.25")),
        ("user", None, None, Decimal(2), None, None, Decimal("6.67")),
        ("licence", None, None, Decimal(5), None, None, Decimal("75.00")),
        # Ten 60-s calls at €0.05/min are €0.50 exactly, with February's late call.
        ("calls", "FR", "geographic", Decimal(12), 11, 720, Decimal("0.60")),
        ("calls", "GB", "mobile", Decimal("1.0333"), 2, 62, Decimal("0.16")),
    ]
    calls_line = lines[-1]
    assert calls_line.exact_amount == Decimal("0.155000")  # rounded once, per line
    net = sum((ln.amount for ln in lines), Decimal(0))
    assert made.net_total == net == Decimal("118.68")
    assert made.vat_total == Decimal("23.74")
    assert made.total == Decimal("142.42")

    async with sessions() as session:
        taken = set(
            (
                await session.scalars(
                    select(RatedCall.cdr_id).where(RatedCall.invoice_id == made.id)
                )
            ).all()
        )
        left = {
            row.cdr_id: row.invoice_id
            for row in (
                await session.scalars(
                    select(RatedCall).where(RatedCall.cdr_id.in_([unrated.cdr_id, april.cdr_id]))
                )
            ).all()
        }
    assert taken == {c.cdr_id for c in [*ten_fr, *gb, late]}
    assert left == {unrated.cdr_id: None, april.cdr_id: None}

    # Once issued, the month is never invoiced again.
    async with sessions() as session, session.begin():
        again = await invoicing.invoice_tenant_month(session, t, march, SETTINGS, date(2030, 4, 2))
    assert again is None


async def test_an_eu_business_client_is_reverse_charged(sessions: Sessions) -> None:
    client = await make_client(
        sessions, subscribed_on=date(2031, 5, 1), tax_status="eu_business", locale="en"
    )
    ids = await invoicing.invoice_due(
        sessions, SETTINGS, paris(2031, 6, 1, 9), tenant_ids=[client.tenant_id]
    )
    [made] = await invoices_of(sessions, [client.tenant_id])
    assert ids == [made.id]
    assert (made.vat_rate, made.vat_total, made.net_total, made.total) == (
        Decimal(0),
        Decimal(0),
        Decimal("29.00"),
        Decimal("29.00"),
    )
    assert invoicing.vat_mention(made.tax_status, made.locale) == (
        "Reverse charge — Article 196 of Directive 2006/112/EC"
    )
    [plan] = await lines_of(sessions, made.id)
    assert plan.label == f"Subscription {client.plan}"


async def test_twenty_concurrent_runs_make_each_invoice_once_numbered_without_gaps(
    sessions: Sessions,
) -> None:
    clients = [
        await make_client(sessions, subscribed_on=date(2040, 11, day)) for day in (1, 5, 17, 30)
    ]
    tenant_ids = [c.tenant_id for c in clients]
    for c in clients:
        await hold(sessions, c.tenant_id, Holding(item="licences", quantity=2,
                                                   held_from=paris(2040, 11, 1)))  # fmt: skip
    now = paris(2041, 2, 1, 3)  # Nov, Dec and Jan have ended: 4 tenants x 3 months

    runs = await asyncio.gather(
        *(invoicing.invoice_due(sessions, SETTINGS, now, tenant_ids=tenant_ids) for _ in range(20))
    )
    made = [invoice_id for run in runs for invoice_id in run]
    assert len(made) == len(set(made)) == 12

    invoices = await invoices_of(sessions, tenant_ids)
    assert sorted(i.id for i in invoices) == sorted(made)
    assert sorted((i.tenant_id, i.period_start.replace(day=1)) for i in invoices) == sorted(
        (t, month)
        for t in tenant_ids
        for month in (date(2040, 11, 1), date(2040, 12, 1), date(2041, 1, 1))
    )
    async with sessions() as session:
        numbers = (
            await session.scalars(select(Invoice.number).where(Invoice.number.like("F2041-%")))
        ).all()
        counter = await session.get(InvoiceCounter, "F2041")
    assert sorted(int(n.removeprefix("F2041-")) for n in numbers) == list(range(1, 13))
    assert counter is not None and counter.last == 12
    # A tenant's months are numbered in their order.
    for t in tenant_ids:
        mine = sorted((i for i in invoices if i.tenant_id == t), key=lambda i: i.period_start)
        assert [i.number for i in mine] == sorted(i.number for i in mine)

    # The job run again, at once or later, makes nothing new.
    assert await invoicing.invoice_due(sessions, SETTINGS, now, tenant_ids=tenant_ids) == []
    later = now + timedelta(days=20)
    assert await invoicing.invoice_due(sessions, SETTINGS, later, tenant_ids=tenant_ids) == []
    assert len(await invoices_of(sessions, tenant_ids)) == 12


async def test_a_month_that_ended_while_nothing_ran_is_invoiced_at_the_next_run(
    sessions: Sessions,
) -> None:
    client = await make_client(sessions, subscribed_on=date(2042, 1, 5))
    t = client.tenant_id
    # Just before midnight on 31 January (Paris): nothing has ended yet.
    before = paris(2042, 1, 31, 23) + timedelta(minutes=59)
    assert await invoicing.invoice_due(sessions, SETTINGS, before, tenant_ids=[t]) == []
    # Down from then until mid-March: January and February are made at the next start.
    late_call = call(t, date(2042, 1, 1), "FR", "geographic", 60, "0.050000")
    async with sessions() as session, session.begin():
        session.add(late_call)
    ids = await invoicing.invoice_due(sessions, SETTINGS, paris(2042, 3, 15, 8), tenant_ids=[t])
    january, february = await invoices_of(sessions, [t])
    assert ids == [january.id, february.id]
    assert (january.period_start, january.period_end) == (date(2042, 1, 5), date(2042, 1, 31))
    assert (february.period_start, february.period_end) == (date(2042, 2, 1), date(2042, 2, 28))
    assert january.number < february.number
    assert january.issued_on == february.issued_on == date(2042, 3, 15)

    # A January call rated after January's invoice is on the next invoice, never free.
    rated_late = call(t, date(2042, 1, 1), "FR", "geographic", 120, "0.100000")
    async with sessions() as session, session.begin():
        session.add(rated_late)
    [march] = await invoicing.invoice_due(sessions, SETTINGS, paris(2042, 4, 1, 1), tenant_ids=[t])
    [calls_line] = [ln for ln in await lines_of(sessions, march) if ln.kind == "calls"]
    assert (calls_line.calls, calls_line.amount) == (1, Decimal("0.10"))


async def test_a_terminating_client_is_invoiced_its_last_started_month(sessions: Sessions) -> None:
    client = await make_client(
        sessions, subscribed_on=date(2043, 1, 1), terminates_on=date(2043, 2, 10)
    )
    t = client.tenant_id
    on_the_last_day = paris(2043, 2, 10, 18)
    [_january] = await invoicing.invoice_due(sessions, SETTINGS, on_the_last_day, tenant_ids=[t])
    [february] = await invoicing.invoice_due(sessions, SETTINGS, paris(2043, 2, 11), tenant_ids=[t])
    assert await invoicing.invoice_due(sessions, SETTINGS, paris(2043, 6, 1), tenant_ids=[t]) == []
    last = (await invoices_of(sessions, [t]))[-1]
    assert last.id == february
    assert (last.period_start, last.period_end) == (date(2043, 2, 1), date(2043, 2, 10))
    # Any started month is due: the plan's full price.
    [plan] = await lines_of(sessions, february)
    assert plan.amount == Decimal("29.00")
    assert last.total == Decimal("34.80")


async def test_a_rolled_back_invoice_gives_its_number_back(sessions: Sessions) -> None:
    async with sessions() as session, session.begin():
        first = await numbering.next_number(session, "invoice", 2044)
    session = sessions()
    await session.begin()
    taken = await numbering.next_number(session, "invoice", 2044)
    await session.rollback()
    await session.close()
    async with sessions() as session, session.begin():
        second = await numbering.next_number(session, "invoice", 2044)
        credit = await numbering.next_number(session, "credit_note", 2044)
    assert (first, taken, second, credit) == (
        "F2044-000001",
        "F2044-000002",
        "F2044-000002",
        "A2044-000001",
    )


async def test_a_credit_note_cancels_a_whole_invoice_once(sessions: Sessions) -> None:
    client = await make_client(sessions, subscribed_on=date(2045, 3, 1))
    t = client.tenant_id
    await hold(sessions, t, Holding(item="user", ref_id=1, held_from=paris(2045, 3, 1)))
    async with sessions() as session, session.begin():
        session.add(call(t, date(2045, 3, 1), "FR", "geographic", 60, "0.050000"))
    [invoice_id] = await invoicing.invoice_due(
        sessions, SETTINGS, paris(2045, 4, 2), tenant_ids=[t]
    )
    async with sessions() as session, session.begin():
        user = await auth_service.create_operator(
            session, f"{unique('op')}@operator.example", "Operator", PASSWORD
        )
    operator = Principal(user.id, Role.OPERATOR, None, user.email)
    admin = Principal(user.id, Role.ADMIN, t, "admin@client.example")

    async with sessions() as session, session.begin():
        with pytest.raises(Forbidden):
            await invoicing.credit_invoice(session, admin, invoice_id, "wrong")
    async with sessions() as session, session.begin():
        note = await invoicing.credit_invoice(
            session, operator, invoice_id, "Billed twice", today=date(2045, 4, 20)
        )
    original = (await invoices_of(sessions, [t]))[0]
    assert note.number == "A2045-000001"
    assert (note.kind, note.credits_invoice_id, note.tenant_id) == ("credit_note", invoice_id, t)
    assert (note.net_total, note.vat_total, note.total) == (
        -original.net_total,
        -original.vat_total,
        -original.total,
    )
    original_lines = await lines_of(sessions, invoice_id)
    note_lines = await lines_of(sessions, note.id)
    assert [(ln.kind, -ln.quantity, -ln.amount) for ln in note_lines] == [
        (ln.kind, ln.quantity, ln.amount) for ln in original_lines
    ]
    assert sum((ln.amount for ln in note_lines), Decimal(0)) == note.net_total

    for target, error in (
        (invoice_id, invoicing.AlreadyCredited),
        (note.id, invoicing.NotCreditable),
    ):
        async with sessions() as session, session.begin():
            with pytest.raises(error):
                await invoicing.credit_invoice(session, operator, target, "again")
    async with sessions() as session:
        notes = await session.scalar(
            select(func.count())
            .select_from(Invoice)
            .where(Invoice.credits_invoice_id == invoice_id)
        )
    assert notes == 1
