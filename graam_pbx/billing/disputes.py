"""A client's contest of an invoice: within 30 days of its issue, one open at a time.

While a dispute is open the invoice is not dunned (no suspension for it; interest still runs
and is due if the dispute is rejected). Accepting one is followed by the operator's credit
note (the invoicing part's credit endpoint); nothing here changes the invoice.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Principal, Scope
from graam_pbx.billing.models import Dispute, Invoice
from graam_pbx.billing.periods import DISPUTE_DAYS
from graam_pbx.errors import Conflict, Invalid, NotFound


class DisputeOpen(Conflict):
    error_id = "dispute-open"


class DisputeResolved(Conflict):
    error_id = "dispute-resolved"


def contest_ends_on(issued_on: date) -> date:
    """The last day an invoice issued on ``issued_on`` may be contested (issue + 30 days)."""
    return issued_on + timedelta(days=DISPUTE_DAYS)


async def open_dispute(
    session: AsyncSession, scope: Scope, invoice_id: int, reason: str, today: date, now: datetime
) -> Dispute:
    """Contest one of the scope's tenant's invoices; 422 past the contest period, 409 when one
    is already open."""
    invoice = await session.get(Invoice, invoice_id, with_for_update={"key_share": True})
    if invoice is None or invoice.tenant_id != scope.tenant_id:
        raise NotFound(f"no invoice {invoice_id}")
    if invoice.kind != "invoice":
        raise Invalid("invoice", "a credit note is not contested")
    ends_on = contest_ends_on(invoice.issued_on)
    if today > ends_on:
        raise Invalid("invoice", f"contest period ended on {ends_on.isoformat()}")
    already = await session.scalar(
        select(Dispute.id).where(Dispute.invoice_id == invoice.id, Dispute.state == "open")
    )
    if already is not None:
        raise DisputeOpen(f"invoice {invoice.number} already has an open dispute ({already})")
    dispute = Dispute(
        invoice_id=invoice.id,
        tenant_id=invoice.tenant_id,
        reason=reason,
        state="open",
        opened_at=now,
        opened_by=scope.principal.label,
    )
    session.add(dispute)
    await session.flush()
    await audit.record(
        session, scope, "open-dispute", "invoice", invoice.id, {"dispute": dispute.id}
    )
    return dispute


async def resolve_dispute(
    session: AsyncSession,
    principal: Principal,
    dispute_id: int,
    state: Literal["rejected", "accepted"],
    resolution: str,
    now: datetime,
) -> Dispute:
    """The operator's decision on an open dispute (409 once resolved)."""
    dispute = await session.get(Dispute, dispute_id, with_for_update=True)
    if dispute is None:
        raise NotFound(f"no dispute {dispute_id}")
    if dispute.state != "open":
        raise DisputeResolved(f"dispute {dispute_id} is already {dispute.state}")
    dispute.state = state
    dispute.resolution = resolution
    dispute.resolved_at = now
    await session.flush()
    await audit.record(
        session,
        principal,
        f"dispute-{state}",
        "invoice",
        dispute.invoice_id,
        {"dispute": dispute.id, "resolution": resolution},
        tenant_id=dispute.tenant_id,
    )
    return dispute


async def list_disputes(
    session: AsyncSession,
    tenant_id: int | None,
    *,
    invoice_id: int | None,
    state: str | None,
    after_id: int | None,
    limit: int,
) -> list[Dispute]:
    """Disputes, oldest first: of one tenant, or every tenant's (``tenant_id`` None)."""
    statement = select(Dispute).order_by(Dispute.id).limit(limit + 1)
    if tenant_id is not None:
        statement = statement.where(Dispute.tenant_id == tenant_id)
    if invoice_id is not None:
        statement = statement.where(Dispute.invoice_id == invoice_id)
    if state is not None:
        statement = statement.where(Dispute.state == state)
    if after_id is not None:
        statement = statement.where(Dispute.id > after_id)
    return list(await session.scalars(statement))
