"""Retention of billing data: a month of CDRs archived to a checksummed file and still served
for its invoice, a tampered file refused, and the ten-year purge of what is past it."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import sys
import tempfile
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.app import Endpoints
from graam_pbx.billing import retention
from graam_pbx.billing.models import (
    BillingAccount,
    CdrArchive,
    Dispute,
    DunningStep,
    Invoice,
    InvoiceDocument,
    InvoiceLine,
    Payment,
    RatedCall,
)
from graam_pbx.cdr.models import Cdr
from graam_pbx.sandbox.ports import free_port
from graam_pbx.settings import Settings
from tests.conftest import Asterisk, RunningApp, start_app
from tests.factories import make_world, unique

PARIS_OFFSET = timedelta(hours=1)  # the months used here are winter months in Paris


@pytest.fixture(scope="module")
def archive_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="graam-archive-") as directory:
        yield Path(directory)


@pytest.fixture(scope="module")
async def running_app(
    database_url: str, asterisk: Asterisk, archive_dir: Path
) -> AsyncIterator[RunningApp]:
    # The archive directory of these tests only: never the project's var/.
    with tempfile.TemporaryDirectory(prefix="graam-cdr-") as cdr_dir:
        settings = Settings(
            agi_port=free_port(),
            cdr_dir=Path(cdr_dir),
            queue_calls_dir=Path(cdr_dir) / "queue-calls",
            billing_archive_dir=archive_dir,
        )
        endpoints = Endpoints(database_url=database_url, ami=asterisk.ami_config())
        async for running in start_app(endpoints, settings):
            yield running


@pytest.fixture(scope="module", autouse=True)
async def _forget_archives(running_app: RunningApp) -> AsyncIterator[None]:
    # The files live in this module's temporary directory: their rows go with it, so no
    # later module reads an archive whose file is gone.
    yield
    sessions: async_sessionmaker[AsyncSession] = running_app.app.state.sessions
    async with sessions() as session, session.begin():
        await session.execute(delete(CdrArchive).where(CdrArchive.month < date(2000, 1, 1)))


@pytest.fixture(scope="module")
def settings(running_app: RunningApp) -> Settings:
    return running_app.runtime.settings.model_copy(update={"cdr_archive_after_months": 2})


async def ensure_partition(sessions: async_sessionmaker[AsyncSession], at: datetime) -> str:
    async with sessions() as session, session.begin():
        name = await session.scalar(text("SELECT cdrs_ensure_partition(:at)"), {"at": at})
    assert isinstance(name, str)
    return name


def cdr(tenant_id: int, started_at: datetime, **values: Any) -> Cdr:
    """A CDR row with awkward text (quotes, commas, a newline, empty vs NULL)."""
    row: dict[str, Any] = {
        "started_at": started_at,
        "system_name": "test",
        "uniqueid": unique("u"),
        "sequence": 0,
        "linkedid": unique("l"),
        "answered_at": started_at + timedelta(seconds=2),
        "ended_at": started_at + timedelta(seconds=63),
        "duration": Decimal("63.250000"),
        "billsec": Decimal("61.000100"),
        "disposition": "ANSWERED",
        "tenant_id": tenant_id,
        "direction": "inbound",
        "src": "+33612345678",
        "dst": "201",
        "dcontext": "tenant-in",
        "clid": '"Ana, ""the"" caller" <+33612345678>',
        "channel": "PJSIP/trunk-0001",
        "dstchannel": "",
        "lastapp": "Dial",
        "lastdata": "PJSIP/201,30",
        "accountcode": "",
        "peeraccount": "",
        "amaflags": "DOCUMENTATION",
        "userfield": "line one\nline two",
        "source": "ami",
    }
    row.update(values)
    return Cdr(**row)


def invoice(tenant_id: int, month: date, issued_on: date, **values: Any) -> Invoice:
    next_month = (month + timedelta(days=32)).replace(day=1)
    row: dict[str, Any] = {
        "number": unique("R")[:32],
        "tenant_id": tenant_id,
        "period_start": month,
        "period_end": next_month - timedelta(days=1),
        "issued_on": issued_on,
        "due_on": issued_on + timedelta(days=30),
        "locale": "fr",
        "tax_status": "fr",
        "vat_rate": Decimal("20.00"),
        "net_total": Decimal("10.0000"),
        "vat_total": Decimal("2.0000"),
        "total": Decimal("12.0000"),
        "seller": {"name": "seller"},
        "buyer": {"name": "buyer"},
    }
    row.update(values)
    return Invoice(**row)


def rated(leg: Cdr, month: date, invoice_id: int | None) -> RatedCall:
    return RatedCall(
        cdr_id=leg.id,
        started_at=leg.started_at,
        tenant_id=leg.tenant_id,
        period=month,
        to_number=leg.to_number or leg.dst,
        origin_country="FR",
        destination_country="FR",
        number_type="mobile",
        billsec=leg.billsec,
        billed_seconds=62,
        price_per_minute=Decimal("0.050000"),
        connect_fee=Decimal(0),
        amount=Decimal("0.051667"),
        invoice_id=invoice_id,
    )


async def partition_exists(sessions: async_sessionmaker[AsyncSession], name: str) -> bool:
    async with sessions() as session:
        return bool(await session.scalar(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}))


async def test_an_archived_month_is_served_from_its_checked_file(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    database_url: str,
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    month = date(1993, 1, 1)
    start = datetime(1993, 1, 1, tzinfo=UTC)
    partition = await ensure_partition(sessions, start)
    async with sessions() as session, session.begin():
        legs = [
            cdr(world.tenant_id, start + timedelta(days=3, hours=9)),
            cdr(
                world.tenant_id,
                start + timedelta(days=9, hours=14, microseconds=250_000),
                direction="outbound",
                billable=True,
                src="+33142685300",
                dst="+33612345678",
                to_number="+33612345678",
                clid='"Agent" <201>',
                did=None,
            ),
            cdr(world.tenant_id, start + timedelta(days=20), direction="internal", clid=""),
            cdr(other.tenant_id, start + timedelta(days=4)),
        ]
        session.add_all(legs)
        bill = invoice(world.tenant_id, month, date(1993, 2, 1))
        session.add(bill)
        await session.flush()
        session.add(rated(legs[1], month, bill.id))
    url = f"/api/v1/billing/invoices/{bill.id}/cdrs.csv"

    before = await client.get(url, headers=world.admin.headers)
    assert before.status_code == 200, before.text
    assert before.headers["content-type"].startswith("text/csv")
    body = before.content.decode()
    assert body.startswith("id,started_at,")
    assert body.count("line one\nline two") == 3  # the tenant's three legs, not the other's
    assert str(legs[3].id) not in {line.split(",")[0] for line in body.splitlines()}

    archived = await retention.archive_months(sessions, settings, datetime(1993, 4, 15, tzinfo=UTC))
    assert month in archived
    assert not await partition_exists(sessions, partition)
    async with sessions() as session:
        record = await session.get(CdrArchive, month)
        assert record is not None
        assert record.rows == 4  # both tenants' rows: the whole partition
        assert record.purged_at is None
    path = retention.archive_file(settings, record.path)
    assert path.parent == settings.billing_archive_path
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record.sha256
    assert record.bytes == path.stat().st_size
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]

    # The same CSV, byte for byte, now read from the file; an operator reads it too.
    after = await client.get(url, headers=world.admin.headers)
    assert after.status_code == 200, after.text
    assert after.content == before.content
    by_operator = await client.get(url, headers=world.operator.headers)
    assert by_operator.content == before.content
    assert (await client.get(url, headers=other.admin.headers)).status_code == 404
    assert (await client.get(url, headers=world.supervisor.headers)).status_code == 403

    # The command line writes the same CSV to stdout.
    env = {
        **os.environ,
        "GRAAM_DATABASE_URL": database_url,
        "GRAAM_BILLING_ARCHIVE_DIR": str(settings.billing_archive_path),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "graam_pbx",
        "billing",
        "cdrs",
        "--invoice",
        str(bill.id),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert out == before.content

    # A second pass finds nothing more to do for that month.
    again = await retention.archive_months(sessions, settings, datetime(1993, 4, 15, tzinfo=UTC))
    assert month not in again

    # The tenant's export holds the archived legs too, in the same CSV.
    export = await client.get("/api/v1/billing/export", headers=world.admin.headers)
    assert export.status_code == 200, export.text
    with zipfile.ZipFile(io.BytesIO(export.content)) as exported:
        assert exported.read("cdrs.csv") == before.content

        # A file changed on disk is refused, never served.
    tampered = bytearray(path.read_bytes())
    tampered[-9] ^= 0x01
    path.write_bytes(bytes(tampered))
    refused = await client.get(url, headers=world.admin.headers)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error_id"] == "archive-corrupt"


async def test_a_month_waits_for_its_calls_to_be_invoiced(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    world = await make_world(client, sessions)
    month = date(1992, 3, 1)
    start = datetime(1992, 3, 1, tzinfo=UTC)
    partition = await ensure_partition(sessions, start)
    async with sessions() as session, session.begin():
        session.add(
            BillingAccount(
                tenant_id=world.tenant_id,
                legal_name="Acme",
                address="1 rue de Paris",
                country="FR",
                tax_status="fr",
                billing_email="billing@acme.example",
                subscribed_on=date(1990, 1, 1),
            )
        )
        leg = cdr(
            world.tenant_id,
            start + timedelta(days=10),
            direction="outbound",
            billable=True,
            to_number="+33612345678",
        )
        session.add(leg)
        await session.flush()
        session.add(rated(leg, month, None))
    now = datetime(1992, 6, 2, tzinfo=UTC)

    assert month not in await retention.archive_months(sessions, settings, now)
    assert await partition_exists(sessions, partition)
    async with sessions() as session:
        assert await session.get(CdrArchive, month) is None

    async with sessions() as session, session.begin():
        bill = invoice(world.tenant_id, month, date(1992, 4, 1))
        session.add(bill)
        await session.flush()
        found = await session.get(RatedCall, leg.id)
        assert found is not None
        found.invoice_id = bill.id
    assert month in await retention.archive_months(sessions, settings, now)
    assert not await partition_exists(sessions, partition)


async def test_the_purge_removes_what_is_past_retention_and_nothing_younger(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    world = await make_world(client, sessions)

    async def billed(month: date, issued_on: date, **values: Any) -> int:
        async with sessions() as session, session.begin():
            bill = invoice(world.tenant_id, month, issued_on, **values)
            session.add(bill)
            await session.flush()
            session.add(
                InvoiceLine(
                    invoice_id=bill.id,
                    position=1,
                    kind="plan",
                    label="Plan",
                    quantity=Decimal(1),
                    exact_amount=Decimal("10"),
                    amount=Decimal("10"),
                )
            )
            session.add(
                InvoiceDocument(invoice_id=bill.id, format="csv", content=b"x", sha256="0" * 64)
            )
            session.add(
                Payment(
                    invoice_id=bill.id,
                    tenant_id=world.tenant_id,
                    amount=Decimal("12"),
                    received_on=issued_on,
                    recorded_by="test",
                )
            )
            session.add(
                Dispute(
                    invoice_id=bill.id,
                    tenant_id=world.tenant_id,
                    reason="why",
                    state="rejected",
                    opened_at=datetime.now(UTC),
                    opened_by="test",
                )
            )
            session.add(DunningStep(tenant_id=world.tenant_id, invoice_id=bill.id, step="overdue"))
            session.add(
                RatedCall(
                    cdr_id=-bill.id,  # no CDR of its own: it was archived long ago
                    started_at=datetime(month.year, month.month, 2, tzinfo=UTC),
                    tenant_id=world.tenant_id,
                    period=month,
                    to_number="+33612345678",
                    origin_country="FR",
                    destination_country="FR",
                    number_type="mobile",
                    billsec=Decimal(1),
                    billed_seconds=1,
                    amount=Decimal("0.001"),
                    invoice_id=bill.id,
                )
            )
            return bill.id

    old = await billed(date(1981, 1, 1), date(1981, 2, 1))
    young = await billed(date(1981, 2, 1), date(1981, 3, 1))
    credited = await billed(date(1980, 12, 1), date(1981, 1, 5))
    credit = await billed(
        date(1980, 12, 1),
        date(1981, 3, 1),
        kind="credit_note",
        credits_invoice_id=credited,
        total=Decimal("-12"),
    )
    # Two archives: one no kept invoice touches, one a kept invoice's period touches.
    files = {}
    async with sessions() as session, session.begin():
        for month in (date(1980, 10, 1), date(1981, 2, 1)):
            path = settings.billing_archive_path / f"purge-test-{month:%Y-%m}.csv.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"archive")
            files[month] = path
            session.add(CdrArchive(month=month, path=path.name, sha256="0" * 64, rows=0, bytes=7))

    report = await retention.purge_expired(sessions, settings, datetime(1991, 2, 20, tzinfo=UTC))
    assert report.cutoff == date(1981, 2, 20)

    async with sessions() as session:
        kept = set(
            await session.scalars(select(Invoice.id).where(Invoice.tenant_id == world.tenant_id))
        )
        assert kept == {young, credited, credit}  # a kept credit note keeps what it credits
        for model in (InvoiceLine, InvoiceDocument, Payment, Dispute, DunningStep, RatedCall):
            ids = set(await session.scalars(select(model.invoice_id).distinct()))
            assert old not in ids, model
            assert {young, credited, credit} <= ids, model
        old_archive = await session.get(CdrArchive, date(1980, 10, 1))
        young_archive = await session.get(CdrArchive, date(1981, 2, 1))
        assert old_archive is not None and old_archive.purged_at is not None
        assert young_archive is not None and young_archive.purged_at is None
        gone = await session.scalar(
            select(func.count()).select_from(RatedCall).where(RatedCall.cdr_id == -old)
        )
        assert gone == 0
    assert report.invoices == 1
    assert date(1980, 10, 1) in report.archives
    assert not files[date(1980, 10, 1)].exists()
    assert files[date(1981, 2, 1)].exists()

    # Ten years after the credit note, everything goes.
    later = await retention.purge_expired(sessions, settings, datetime(1991, 3, 2, tzinfo=UTC))
    assert later.invoices == 3
    async with sessions() as session:
        left = await session.scalar(
            select(func.count()).select_from(Invoice).where(Invoice.tenant_id == world.tenant_id)
        )
        assert left == 0
    assert not files[date(1981, 2, 1)].exists()


async def test_an_erasure_rewrites_the_archived_months(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    world = await make_world(client, sessions)
    month = date(1994, 1, 1)
    start = datetime(1994, 1, 1, tzinfo=UTC)
    await ensure_partition(sessions, start)
    caller = "+33698765432"
    async with sessions() as session, session.begin():
        inbound = cdr(
            world.tenant_id,
            start + timedelta(days=2),
            src=caller,
            clid=f'"Jean, ""JD"" Dupont" <{caller}>',
        )
        outbound = cdr(
            world.tenant_id,
            start + timedelta(days=3),
            direction="outbound",
            billable=True,
            src="+33142685300",
            dst=caller,
            to_number=caller,
            clid='"Agent" <201>',
        )
        session.add_all([inbound, outbound])
        bill = invoice(world.tenant_id, month, date(1994, 2, 1))
        session.add(bill)
        await session.flush()
        session.add(rated(outbound, month, bill.id))
    assert month in await retention.archive_months(
        sessions, settings, datetime(1994, 4, 2, tzinfo=UTC)
    )
    async with sessions() as session:
        before = await session.get(CdrArchive, month)
        assert before is not None
        old_file = retention.archive_file(settings, before.path)

    answer = await client.post(
        "/api/v1/billing/erasures", headers=world.admin.headers, json={"phone_number": caller}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["cdrs"] >= 1

    csv_text = (
        await client.get(
            f"/api/v1/billing/invoices/{bill.id}/cdrs.csv", headers=world.admin.headers
        )
    ).content.decode()
    rows = {
        int(line.split(",")[0]): line for line in csv_text.splitlines()[1:] if line[:1].isdigit()
    }
    assert caller not in rows[inbound.id]  # src and clid blanked in the file
    assert caller in rows[outbound.id]  # the billable leg keeps its number
    async with sessions() as session:
        after = await session.get(CdrArchive, month)
        assert after is not None
        new_file = retention.archive_file(settings, after.path)
        assert after.path != before.path and after.rows == before.rows
    assert hashlib.sha256(new_file.read_bytes()).hexdigest() == after.sha256

    # The replaced file goes with the daily pass once a day old, the recorded one stays.
    assert old_file.exists()
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    os.utime(old_file, (two_days_ago, two_days_ago))
    await retention.purge_expired(sessions, settings, datetime(1995, 1, 1, tzinfo=UTC))
    assert not old_file.exists()
    assert new_file.exists()


async def test_a_failed_archive_keeps_the_partition_and_the_next_pass_makes_it(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    archive_dir: Path,
) -> None:
    world = await make_world(client, sessions)
    month = date(1991, 5, 1)
    start = datetime(1991, 5, 1, tzinfo=UTC)
    partition = await ensure_partition(sessions, start)
    async with sessions() as session, session.begin():
        session.add(cdr(world.tenant_id, start + timedelta(days=6)))
    now = datetime(1991, 8, 1, tzinfo=UTC)
    # The archive directory cannot be made (a file is in its way): nothing is dropped.
    blocked = archive_dir / "not-a-directory"
    blocked.write_bytes(b"")
    failing = settings.model_copy(update={"billing_archive_dir": blocked / "archive"})
    assert month not in await retention.archive_months(sessions, failing, now)
    assert await partition_exists(sessions, partition)
    async with sessions() as session:
        assert await session.get(CdrArchive, month) is None

    assert month in await retention.archive_months(sessions, settings, now)
    assert not await partition_exists(sessions, partition)
    async with sessions() as session:
        record = await session.get(CdrArchive, month)
        assert record is not None and record.rows == 1
