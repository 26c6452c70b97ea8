"""Tenants and their licences."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.agents.models import AgentSession
from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Principal
from graam_pbx.db import ensure_version, flush_or_conflict, keyset_page
from graam_pbx.errors import GraamError, Invalid, NotFound
from graam_pbx.tenants.models import Tenant, TenantStatus
from graam_pbx.tenants.schemas import TenantCreate, TenantUpdate


class AboveLicenceCeiling(GraamError):
    """An admin asked for more licences than the ceiling its operator set."""

    status_code = 409
    error_id = "licence-ceiling"

    def __init__(self, ceiling: int) -> None:
        reason = f"above the licence ceiling of {ceiling} set by the operator"
        super().__init__(
            f"body.licences: {reason}",
            errors=[{"field": "body.licences", "reason": reason}],
            licence_ceiling=ceiling,
        )


def _visible(principal: Principal, tenant_id: int) -> bool:
    return principal.is_operator or principal.tenant_id == tenant_id


async def get_tenant(session: AsyncSession, principal: Principal, tenant_id: int) -> Tenant:
    """A tenant the caller may see (operators: any; others: their own)."""
    tenant = await session.get(Tenant, tenant_id) if _visible(principal, tenant_id) else None
    if tenant is None:
        raise NotFound(f"no tenant {tenant_id}")
    return tenant


async def list_tenants(
    session: AsyncSession,
    principal: Principal,
    *,
    status: TenantStatus | None,
    after_id: int | None,
    limit: int,
) -> tuple[list[Tenant], int | None]:
    statement = select(Tenant)
    if not principal.is_operator:
        statement = statement.where(Tenant.id == principal.tenant_id)
    if status is not None:
        statement = statement.where(Tenant.status == status.value)
    return await keyset_page(session, statement, Tenant.id, after_id, limit)


# Told of each tenant created, in its transaction (session, tenant id). The cluster layer
# adds one (the new tenant's placement: graam_pbx/cluster/placement.py); this domain knows no
# nodes.
TenantCreated = Callable[[AsyncSession, int], Awaitable[None]]
ON_CREATE: list[TenantCreated] = []


async def create_tenant(session: AsyncSession, principal: Principal, data: TenantCreate) -> Tenant:
    """A new tenant (operators only, checked by the route)."""
    tenant = Tenant(
        slug=data.slug,
        name=data.name,
        country=data.country,
        timezone=data.timezone,
        plan=data.plan,
        licences=data.licences,
        licence_ceiling=data.licence_ceiling,
        status=TenantStatus.ACTIVE.value,
    )
    session.add(tenant)
    await flush_or_conflict(session, taken={"uq_tenants_slug": ("slug", data.slug)})
    for hook in ON_CREATE:
        await hook(session, tenant.id)
    await audit.record(
        session, principal, "create", "tenant", tenant.id, data.model_dump(), tenant_id=tenant.id
    )
    return tenant


async def update_tenant(
    session: AsyncSession,
    principal: Principal,
    tenant_id: int,
    data: TenantUpdate,
    expected: int | None,
) -> Tenant:
    tenant = await get_tenant(session, principal, tenant_id)
    ensure_version(tenant, expected)
    changes = data.model_dump(exclude_unset=True)
    status = data.status or TenantStatus(tenant.status)
    ends_on = changes.get("ends_on", tenant.ends_on)
    if status is TenantStatus.TERMINATING and ends_on is None:
        raise Invalid("body.ends_on", "a terminating tenant needs its last day")
    for field, value in changes.items():
        setattr(tenant, field, value.value if isinstance(value, TenantStatus) else value)
    await session.flush()
    await audit.record(
        session, principal, "update", "tenant", tenant.id, changes, tenant_id=tenant.id
    )
    return tenant


async def set_licences(
    session: AsyncSession, principal: Principal, tenant_id: int, licences: int
) -> Tenant:
    """Change the licence count at once; lowering it never logs anyone out.

    An admin may not raise it above the operator's ceiling (lowering is always allowed);
    the operator, who sets the ceiling, may.
    """
    tenant = await get_tenant(session, principal, tenant_id)
    # Row lock: logins count licences under the same lock, so none sees a half-made change.
    await session.refresh(tenant, with_for_update=True)
    before = tenant.licences
    ceiling = tenant.licence_ceiling
    if (
        not principal.is_operator
        and ceiling is not None
        and licences > ceiling
        and licences > before
    ):
        raise AboveLicenceCeiling(ceiling)
    tenant.licences = licences
    await session.flush()
    await audit.record(
        session,
        principal,
        "set-licences",
        "tenant",
        tenant.id,
        {"licences": {"from": before, "to": licences}},
        tenant_id=tenant.id,
    )
    return tenant


async def licences_in_use(session: AsyncSession, tenant_id: int) -> int:
    """Agents logged in now: the tenant's live sessions."""
    count = await session.scalar(
        select(func.count()).where(
            AgentSession.tenant_id == tenant_id, AgentSession.ended_at.is_(None)
        )
    )
    return int(count or 0)


async def licences_in_use_by_tenant(session: AsyncSession, tenant_ids: list[int]) -> dict[int, int]:
    """``licences_in_use`` of several tenants in one query (a tenant with none: 0)."""
    if not tenant_ids:
        return {}
    rows = await session.execute(
        select(AgentSession.tenant_id, func.count())
        .where(AgentSession.tenant_id.in_(tenant_ids), AgentSession.ended_at.is_(None))
        .group_by(AgentSession.tenant_id)
    )
    counted = {int(tenant_id): int(count) for tenant_id, count in rows}
    return {tenant_id: counted.get(tenant_id, 0) for tenant_id in tenant_ids}
