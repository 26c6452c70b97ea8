"""The tenant's catalogue of dispositions; "refused" is the law's and always stays."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Scope
from graam_pbx.campaigns.models import CampaignAttempt, CampaignContact, Disposition
from graam_pbx.campaigns.schemas.dispositions import DispositionCreate, DispositionUpdate
from graam_pbx.db import flush_or_conflict, get_in_tenant, keyset_page
from graam_pbx.errors import Conflict

REFUSED = "refused"
_UNIQUE_CODE = "uq_dispositions_tenant_id_code"

# The catalogue every tenant starts with: (code, label, refusal, success, machine, callback).
DEFAULT_CATALOGUE: tuple[tuple[str, str, bool, bool, bool, bool], ...] = (
    ("interested", "Interested", False, True, False, False),
    ("callback", "Call back", False, False, False, True),
    ("not-interested", "Not interested", False, False, False, False),
    (REFUSED, "Refuses to be called", True, False, False, False),
    ("wrong-number", "Wrong number", False, False, False, False),
    ("answering-machine", "Answering machine", False, False, True, False),
)


async def ensure_catalogue(session: AsyncSession, tenant_id: int) -> None:
    """Create the default catalogue the first time the tenant needs one (never again)."""
    if await session.scalar(select(Disposition.id).where(Disposition.tenant_id == tenant_id)):
        return
    rows = [
        {
            "tenant_id": tenant_id,
            "code": code,
            "label": label,
            "refusal": refusal,
            "success": success,
            "machine": machine,
            "callback": callback,
        }
        for code, label, refusal, success, machine, callback in DEFAULT_CATALOGUE
    ]
    # Two first requests at once: the second inserts nothing.
    await session.execute(insert(Disposition).values(rows).on_conflict_do_nothing())


async def list_dispositions(
    session: AsyncSession, scope: Scope, *, after_id: int | None, limit: int
) -> tuple[list[Disposition], int | None]:
    """The tenant's catalogue, oldest first (the defaults made on first use)."""
    await ensure_catalogue(session, scope.tenant_id)
    statement = select(Disposition).where(Disposition.tenant_id == scope.tenant_id)
    return await keyset_page(session, statement, Disposition.id, after_id, limit)


async def all_dispositions(session: AsyncSession, tenant_id: int) -> list[Disposition]:
    """The whole catalogue, for the agent's buttons."""
    await ensure_catalogue(session, tenant_id)
    rows = await session.scalars(
        select(Disposition).where(Disposition.tenant_id == tenant_id).order_by(Disposition.id)
    )
    return list(rows.all())


async def create_disposition(
    session: AsyncSession, scope: Scope, data: DispositionCreate
) -> Disposition:
    """A new entry of the tenant's catalogue; its code is unique in the tenant."""
    await ensure_catalogue(session, scope.tenant_id)
    disposition = Disposition(tenant_id=scope.tenant_id, **data.model_dump())
    session.add(disposition)
    await flush_or_conflict(session, taken={_UNIQUE_CODE: ("code", data.code)})
    await audit.record(
        session, scope, "create", "disposition", disposition.id, data.model_dump(mode="json")
    )
    return disposition


async def update_disposition(
    session: AsyncSession, scope: Scope, disposition_id: int, data: DispositionUpdate
) -> Disposition:
    """Change a label or flags; "refused" keeps its refusal flag (the law's 60-day block)."""
    disposition = await get_in_tenant(session, Disposition, scope.tenant_id, disposition_id)
    changes = data.model_dump(exclude_unset=True)
    if disposition.code == REFUSED and changes.get("refusal") is False:
        raise Conflict("the 'refused' disposition keeps its refusal flag", field="refusal")
    for field, value in changes.items():
        setattr(disposition, field, value)
    await session.flush()
    await audit.record(session, scope, "update", "disposition", disposition.id, changes)
    return disposition


async def delete_disposition(session: AsyncSession, scope: Scope, disposition_id: int) -> None:
    """Remove an entry no call has used; "refused" is never removed."""
    disposition = await get_in_tenant(session, Disposition, scope.tenant_id, disposition_id)
    if disposition.code == REFUSED:
        raise Conflict("the 'refused' disposition cannot be deleted")
    used = await session.scalar(
        select(func.count())
        .select_from(CampaignAttempt)
        .where(CampaignAttempt.disposition_id == disposition.id)
    ) or await session.scalar(
        select(func.count())
        .select_from(CampaignContact)
        .where(CampaignContact.disposition_id == disposition.id)
    )
    if used:
        raise Conflict(f"disposition {disposition.code!r} was set on calls: it stays")
    await session.delete(disposition)
    await session.flush()
    await audit.record(
        session, scope, "delete", "disposition", disposition_id, {"code": disposition.code}
    )
