from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from graam_pbx.agents import service
from graam_pbx.agents.models import AgentDevice
from graam_pbx.agents.schemas import DeviceCreate, DeviceOut, DeviceUpdate, DeviceWithPassword
from graam_pbx.auth.principal import Role, Scope
from graam_pbx.deps import Admin, DbSession, Member, allow
from graam_pbx.fields import MAX_ID
from graam_pbx.rest import (
    IfMatch,
    Page,
    PageQuery,
    error_responses,
    expected_version,
    page_of,
    page_query,
    set_etag,
)

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])
PageParams = Annotated[PageQuery, Depends(page_query)]
DeviceId = Annotated[int, Path(ge=1, le=MAX_ID, description="The device's id")]
# Admins reset any device's password, agents their own; supervisors never see passwords.
AdminOrAgent = Annotated[Scope, Depends(allow(Role.ADMIN, Role.AGENT))]


def _with_password(device: AgentDevice, password: str, response: Response) -> DeviceWithPassword:
    response.headers["Cache-Control"] = "no-store"  # a secret: no cache may keep it
    set_etag(response, device.id, device.version)
    return DeviceWithPassword(**DeviceOut.model_validate(device).model_dump(), password=password)


@router.post(
    "",
    status_code=201,
    response_model=DeviceWithPassword,
    responses=error_responses(401, 403, 409, 422),
    summary="Make an agent's device; its generated SIP password is shown once",
)
async def create_device(
    body: DeviceCreate, scope: Admin, session: DbSession, response: Response
) -> DeviceWithPassword:
    device, password = await service.create_device(session, scope, body)
    return _with_password(device, password, response)


@router.get(
    "",
    response_model=Page[DeviceOut],
    responses=error_responses(401, 403, 422),
    summary="The tenant's devices (an agent: its own)",
)
async def list_devices(
    scope: Member,
    session: DbSession,
    page: PageParams,
    user_id: Annotated[int | None, Query(ge=1, description="Only this agent's devices")] = None,
) -> Page[DeviceOut]:
    devices, after = await service.list_devices(
        session, scope, user_id=user_id, after_id=page.after_id, limit=page.limit
    )
    return page_of([DeviceOut.model_validate(d) for d in devices], after)


@router.get("/{device_id}", response_model=DeviceOut, responses=error_responses(401, 403, 404, 422))
async def get_device(
    device_id: DeviceId, scope: Member, session: DbSession, response: Response
) -> DeviceOut:
    device = await service.get_device(session, scope, device_id)
    set_etag(response, device.id, device.version)
    return DeviceOut.model_validate(device)


@router.patch(
    "/{device_id}",
    response_model=DeviceOut,
    responses=error_responses(401, 403, 404, 409, 412, 422),
)
async def update_device(
    device_id: DeviceId,
    body: DeviceUpdate,
    scope: Admin,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> DeviceOut:
    device = await service.update_device(
        session, scope, device_id, body, expected_version(if_match, device_id)
    )
    set_etag(response, device.id, device.version)
    return DeviceOut.model_validate(device)


@router.post(
    "/{device_id}/reset-password",
    response_model=DeviceWithPassword,
    responses=error_responses(401, 403, 404, 422),
    summary="Generate a new SIP password (shown once); the old one stops working",
)
async def reset_password(
    device_id: DeviceId, scope: AdminOrAgent, session: DbSession, response: Response
) -> DeviceWithPassword:
    device, password = await service.reset_password(session, scope, device_id)
    return _with_password(device, password, response)


@router.delete("/{device_id}", status_code=204, responses=error_responses(401, 403, 404, 409, 422))
async def delete_device(device_id: DeviceId, scope: Admin, session: DbSession) -> Response:
    await service.delete_device(session, scope, device_id)
    return Response(status_code=204)
