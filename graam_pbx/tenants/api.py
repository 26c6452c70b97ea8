from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from graam_pbx.auth.principal import Role
from graam_pbx.deps import Caller, DbSession, Operator
from graam_pbx.errors import Forbidden
from graam_pbx.rest import (
    IfMatch,
    Page,
    PageParams,
    error_responses,
    expected_version,
    id_path,
    page_of,
    set_etag,
)
from graam_pbx.tenants import service
from graam_pbx.tenants.models import TenantStatus
from graam_pbx.tenants.schemas import (
    LicencesOut,
    LicencesUpdate,
    TenantCreate,
    TenantOut,
    TenantUpdate,
)

router = APIRouter(prefix="/api/v1/tenants", tags=["tenants"])
TenantId = Annotated[int, id_path("The tenant's id")]


@router.post(
    "", status_code=201, response_model=TenantOut, responses=error_responses(401, 403, 409, 422)
)
async def create_tenant(
    body: TenantCreate, principal: Operator, session: DbSession, response: Response
) -> TenantOut:
    tenant = await service.create_tenant(session, principal, body)
    set_etag(response, tenant.id, tenant.version)
    return TenantOut.model_validate(tenant)


@router.get("", response_model=Page[TenantOut], responses=error_responses(401, 422))
async def list_tenants(
    principal: Caller,
    session: DbSession,
    page: PageParams,
    status: Annotated[TenantStatus | None, Query()] = None,
) -> Page[TenantOut]:
    tenants, after = await service.list_tenants(
        session, principal, status=status, after_id=page.after_id, limit=page.limit
    )
    return page_of([TenantOut.model_validate(t) for t in tenants], after)


@router.get("/{tenant_id}", response_model=TenantOut, responses=error_responses(401, 404, 422))
async def get_tenant(
    tenant_id: TenantId, principal: Caller, session: DbSession, response: Response
) -> TenantOut:
    tenant = await service.get_tenant(session, principal, tenant_id)
    set_etag(response, tenant.id, tenant.version)
    return TenantOut.model_validate(tenant)


@router.patch(
    "/{tenant_id}", response_model=TenantOut, responses=error_responses(401, 403, 404, 412, 422)
)
async def update_tenant(
    tenant_id: TenantId,
    body: TenantUpdate,
    principal: Operator,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> TenantOut:
    tenant = await service.update_tenant(
        session, principal, tenant_id, body, expected_version(if_match, tenant_id)
    )
    set_etag(response, tenant.id, tenant.version)
    return TenantOut.model_validate(tenant)


@router.get(
    "/{tenant_id}/licences", response_model=LicencesOut, responses=error_responses(401, 404, 422)
)
async def get_licences(tenant_id: TenantId, principal: Caller, session: DbSession) -> LicencesOut:
    tenant = await service.get_tenant(session, principal, tenant_id)
    return LicencesOut(
        tenant_id=tenant.id,
        licences=tenant.licences,
        in_use=await service.licences_in_use(session, tenant.id),
        licence_ceiling=tenant.licence_ceiling,
    )


@router.put(
    "/{tenant_id}/licences",
    response_model=LicencesOut,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def set_licences(
    tenant_id: TenantId, body: LicencesUpdate, principal: Caller, session: DbSession
) -> LicencesOut:
    """Change the licences at once (audited). An admin may not raise them above the
    operator's `licence_ceiling`: 409 `licence-ceiling` naming `body.licences`."""
    if principal.role not in (Role.OPERATOR, Role.ADMIN):
        raise Forbidden(f"a {principal.role} may not change licences")
    tenant = await service.set_licences(session, principal, tenant_id, body.licences)
    return LicencesOut(
        tenant_id=tenant.id,
        licences=tenant.licences,
        in_use=await service.licences_in_use(session, tenant.id),
        licence_ceiling=tenant.licence_ceiling,
    )
