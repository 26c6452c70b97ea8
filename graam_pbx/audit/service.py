"""The audit log: every change of configuration or licences, with who made it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit.models import AuditEntry
from graam_pbx.auth.principal import Principal, Scope
from graam_pbx.db import keyset_page


async def record(
    session: AsyncSession,
    actor: Scope | Principal,
    action: str,
    object_type: str,
    object_id: int | str | None,
    changes: dict[str, Any],
    *,
    tenant_id: int | None = None,
) -> None:
    """Append one entry in the caller's transaction: it exists exactly when the change does."""
    principal = actor.principal if isinstance(actor, Scope) else actor
    session.add(
        AuditEntry(
            tenant_id=actor.tenant_id if isinstance(actor, Scope) else tenant_id,
            actor_user_id=principal.user_id,
            actor_role=principal.role.value,
            actor_label=principal.label,
            action=action,
            object_type=object_type,
            object_id=None if object_id is None else str(object_id),
            changes={k: _jsonable(v) for k, v in changes.items()},
            address=actor.address if isinstance(actor, Scope) else None,
        )
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str | int | float | bool | type(None) | list | dict):
        return value
    return str(value)


async def list_entries(
    session: AsyncSession,
    tenant_id: int | None,
    *,
    object_type: str | None,
    after_id: int | None,
    limit: int,
) -> tuple[list[AuditEntry], int | None]:
    """A tenant's entries (operators: ``tenant_id`` None lists the platform's own)."""
    statement = select(AuditEntry).where(AuditEntry.tenant_id.is_not_distinct_from(tenant_id))
    if object_type is not None:
        statement = statement.where(AuditEntry.object_type == object_type)
    return await keyset_page(session, statement, AuditEntry.id, after_id, limit)
