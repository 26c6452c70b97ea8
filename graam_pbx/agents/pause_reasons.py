"""Each tenant's catalogue of pause reasons: a code of digits (``*47<code>`` on a phone) and
a label. Once a tenant has a reason, every pause with a reason must name one of its codes."""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.agents.models import PauseReason
from graam_pbx.agents.schemas import PauseReasonCreate, PauseReasonUpdate
from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Scope
from graam_pbx.db import ensure_version, flush_or_conflict, get_in_tenant, keyset_page
from graam_pbx.errors import Invalid

_CODE_TAKEN = "uq_pause_reasons_tenant_id_code"


class UnknownPauseReason(Invalid):
    """A pause names a code the tenant's catalogue does not have."""


async def create_pause_reason(
    session: AsyncSession, scope: Scope, data: PauseReasonCreate
) -> PauseReason:
    """Add a reason to the tenant's catalogue (409 when its code is taken)."""
    reason = PauseReason(tenant_id=scope.tenant_id, code=data.code, label=data.label)
    session.add(reason)
    await flush_or_conflict(session, taken={_CODE_TAKEN: ("code", data.code)})
    await audit.record(
        session,
        scope,
        "create",
        "pause_reason",
        reason.id,
        {"code": reason.code, "label": reason.label},
    )
    return reason


async def list_pause_reasons(
    session: AsyncSession, scope: Scope, *, after_id: int | None, limit: int
) -> tuple[list[PauseReason], int | None]:
    """The tenant's pause reasons, by id."""
    statement = select(PauseReason).where(PauseReason.tenant_id == scope.tenant_id)
    return await keyset_page(session, statement, PauseReason.id, after_id, limit)


async def get_pause_reason(session: AsyncSession, scope: Scope, reason_id: int) -> PauseReason:
    """One of the tenant's pause reasons."""
    return await get_in_tenant(session, PauseReason, scope.tenant_id, reason_id)


async def update_pause_reason(
    session: AsyncSession,
    scope: Scope,
    reason_id: int,
    data: PauseReasonUpdate,
    expected_version: int | None,
) -> PauseReason:
    """Change a reason's code or label; past intervals keep the code they were paused with."""
    reason = await get_in_tenant(session, PauseReason, scope.tenant_id, reason_id)
    ensure_version(reason, expected_version)
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        setattr(reason, name, value)
    await flush_or_conflict(session, taken={_CODE_TAKEN: ("code", reason.code)})
    await audit.record(session, scope, "update", "pause_reason", reason.id, changes)
    return reason


async def delete_pause_reason(session: AsyncSession, scope: Scope, reason_id: int) -> None:
    """Remove a reason; agents paused with it stay paused until they resume."""
    reason = await get_in_tenant(session, PauseReason, scope.tenant_id, reason_id)
    await session.delete(reason)
    await session.flush()
    await audit.record(session, scope, "delete", "pause_reason", reason_id, {"code": reason.code})


async def check_pause_code(
    session: AsyncSession, tenant_id: int, code: str, *, field: str = "body.reason"
) -> None:
    """Refuse a code the tenant's catalogue lacks; a tenant without a catalogue takes any."""
    found = await session.execute(
        select(
            exists().where(PauseReason.tenant_id == tenant_id, PauseReason.code == code),
            exists().where(PauseReason.tenant_id == tenant_id),
        )
    )
    known, catalogue = found.one()
    if catalogue and not known:
        raise UnknownPauseReason(field, f"no pause reason with code {code!r} in the catalogue")
