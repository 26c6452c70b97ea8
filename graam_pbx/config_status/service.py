"""Reading configuration status, and auditing when a tenant's configuration fails to apply."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.asterisk import status
from graam_pbx.asterisk.applier import FailureReport
from graam_pbx.audit.models import AuditEntry
from graam_pbx.config_status.schemas import (
    ConfigStatusOut,
    PlatformConfigStatusOut,
    TrunkFailureOut,
)
from graam_pbx.errors import NotFound


def _out(row: status.TenantStatus) -> ConfigStatusOut:
    return ConfigStatusOut(
        tenant_id=row.tenant_id,
        committed_generation=row.committed_generation,
        applied_generation=row.applied_generation,
        pending=row.pending,
        last_error=row.last_error,
        failing_since=row.failing_since,
        applied_at=row.applied_at,
        committed_at=row.committed_at,
    )


async def tenant_status(session: AsyncSession, tenant_id: int) -> ConfigStatusOut:
    """One tenant's configuration status."""
    connection = await session.connection()
    rows = await status.tenant_statuses(connection, tenant_id)
    if not rows:
        raise NotFound(f"no tenant {tenant_id}")
    return _out(rows[0])


async def platform_status(session: AsyncSession) -> PlatformConfigStatusOut:
    """Every tenant's configuration status and the failing trunks."""
    connection = await session.connection()
    tenants = [_out(row) for row in await status.tenant_statuses(connection, None)]
    trunks = [
        TrunkFailureOut(
            trunk_id=t.trunk_id, name=t.name, last_error=t.last_error, failing_since=t.failing_since
        )
        for t in await status.trunk_statuses(connection)
    ]
    return PlatformConfigStatusOut(
        tenants=tenants,
        pending_tenants=sum(1 for t in tenants if t.pending),
        failing_trunks=trunks,
    )


def failure_auditor(sessions: async_sessionmaker[AsyncSession]) -> FailureReport:
    """The applier's report of a tenant starting (or ceasing) to fail, as audit entries."""

    async def report(tenant_id: int, error: str | None) -> None:
        async with sessions() as session, session.begin():
            session.add(
                AuditEntry(
                    tenant_id=tenant_id,
                    actor_role="system",
                    actor_label="config-applier",
                    action="apply-failed" if error is not None else "apply-recovered",
                    object_type="configuration",
                    object_id=None,
                    changes={"error": error} if error is not None else {},
                )
            )

    return report
