from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header

from graam_pbx.auth.principal import Role
from graam_pbx.config_status import service
from graam_pbx.config_status.schemas import ConfigStatusOut, PlatformConfigStatusOut
from graam_pbx.deps import Caller, DbSession
from graam_pbx.errors import Forbidden
from graam_pbx.fields import MAX_ID
from graam_pbx.rest import error_responses

router = APIRouter(prefix="/api/v1/config", tags=["configuration status"])


@router.get(
    "/status",
    response_model=ConfigStatusOut | PlatformConfigStatusOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Whether the tenant's last configuration change is live in Asterisk",
    description=(
        "Tenant admins and supervisors: their tenant. Operators: the tenant named by "
        "`X-Graam-Tenant`, or without it every tenant and the trunks that fail to render."
    ),
)
async def config_status(
    principal: Caller,
    session: DbSession,
    x_graam_tenant: Annotated[
        int | None,
        Header(ge=1, le=MAX_ID, description="Operators only: one tenant (id) instead of all."),
    ] = None,
) -> ConfigStatusOut | PlatformConfigStatusOut:
    if principal.tenant_id is not None:
        if principal.role not in (Role.ADMIN, Role.SUPERVISOR):
            raise Forbidden(f"a {principal.role} may not do this")
        return await service.tenant_status(session, principal.tenant_id)
    if x_graam_tenant is not None:
        return await service.tenant_status(session, x_graam_tenant)
    return await service.platform_status(session)
