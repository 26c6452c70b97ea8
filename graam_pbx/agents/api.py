from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import JSONResponse

from graam_pbx.agents import pause_reasons, service, sessions
from graam_pbx.agents.models import AgentDevice, AgentSession
from graam_pbx.agents.schemas import (
    AgentSessionOut,
    DeviceCreate,
    DeviceOut,
    DeviceUpdate,
    DeviceWithPassword,
    LiveAgentOut,
    PauseReasonCreate,
    PauseReasonOut,
    PauseReasonUpdate,
    SessionLogin,
    SessionPause,
)
from graam_pbx.agents.sessions import ON_CALL_STATES
from graam_pbx.auth.principal import Role, Scope
from graam_pbx.deps import (
    Admin,
    DbSession,
    Member,
    MemberCheckedByStatement,
    Reader,
    allow,
    one_statement,
)
from graam_pbx.errors import NotFound
from graam_pbx.rest import (
    ErrorOut,
    IfMatch,
    Page,
    PageParams,
    error_responses,
    expected_version,
    id_path,
    id_query,
    page_of,
    set_etag,
)

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])
DeviceId = Annotated[int, id_path("The device's id")]
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
    user_id: Annotated[int | None, id_query("Only this agent's devices")] = None,
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


# ---- sessions: login, logout, pause, the live view -------------------------------------------

sessions_router = APIRouter(prefix="/api/v1/agents", tags=["agent sessions"])
UserId = Annotated[int, id_path("The agent's user id")]


def _session_out(live: AgentSession | sessions.LoggedIn) -> AgentSessionOut:
    return AgentSessionOut.model_validate(live)


@sessions_router.get(
    "/sessions",
    response_model=Page[LiveAgentOut],
    responses=error_responses(401, 403, 422),
    summary="Connected agents: since when, paused or not, on a call or not",
)
async def list_sessions(
    request: Request, scope: Reader, session: DbSession, page: PageParams
) -> Page[LiveAgentOut]:
    rows, after = await sessions.list_live_sessions(
        session, scope, after_id=page.after_id, limit=page.limit
    )
    worker: sessions.DeviceStates | None = getattr(request.app.state.runtime, "agents", None)
    states = await sessions.live_device_states(worker, rows)
    items = [
        LiveAgentOut(
            **_session_out(row.session).model_dump(),
            display_name=row.display_name,
            sip_username=row.sip_username,
            extension=row.extension,
            device_state=states.get(row.sip_username),
            on_call=states.get(row.sip_username) in ON_CALL_STATES,
        )
        for row in rows
    ]
    return page_of(items, after)


@sessions_router.post(
    "/{user_id}/session",
    status_code=201,
    response_model=AgentSessionOut,
    responses={
        200: {"model": AgentSessionOut, "description": "Already logged in: its live session"},
        **error_responses(401, 403, 404, 409, 422),
    },
    summary="Log an agent in (itself, or by a supervisor); 409 licence-exhausted when full",
)
@one_statement  # agent_login(): the whole login, or its refusal, in one statement
async def login(
    user_id: UserId,
    scope: MemberCheckedByStatement,  # the caller's account checked by agent_login() too
    session: DbSession,
    body: Annotated[SessionLogin, Body(default_factory=SessionLogin)],
) -> Response:
    try:
        result = await sessions.login(session, scope, user_id, device_id=body.device_id)
    except sessions.LicenceExhausted as refused:
        # Answered, not raised: the transaction commits and keeps the refusal's event.
        error = ErrorOut(
            error_id=refused.error_id, message=refused.message, details=refused.details
        )
        return JSONResponse(error.model_dump(), status_code=refused.status_code)
    # The model's JSON as the answer: the hot path of a login storm, where the framework's
    # check and encoding of a returned model would redo what the model just did.
    return Response(
        _session_out(result.session).model_dump_json(),
        status_code=201 if result.created else 200,
        media_type="application/json",
    )


@sessions_router.get(
    "/{user_id}/session",
    response_model=AgentSessionOut,
    responses=error_responses(401, 403, 404, 422),
    summary="An agent's live session (404: not logged in)",
)
async def get_session(user_id: UserId, scope: Member, session: DbSession) -> AgentSessionOut:
    live = await sessions.get_live_session(session, scope, user_id)
    if live is None:
        raise NotFound(f"agent {user_id} is not logged in")
    return _session_out(live)


@sessions_router.delete(
    "/{user_id}/session",
    status_code=204,
    responses=error_responses(401, 403, 404, 422),
    summary="Log an agent out (itself, or forced by a supervisor); its licence is free at once",
)
async def logout(user_id: UserId, scope: Member, session: DbSession) -> Response:
    await sessions.logout(session, scope, user_id)
    return Response(status_code=204)


@sessions_router.post(
    "/{user_id}/session/pause",
    response_model=AgentSessionOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Pause (with a reason) or resume a logged-in agent in all its queues",
)
async def pause(
    user_id: UserId, body: SessionPause, scope: Member, session: DbSession
) -> AgentSessionOut:
    live = await sessions.set_paused(session, scope, user_id, body.paused, body.reason)
    return _session_out(live)


# ---- the pause-reason catalogue -------------------------------------------------------------

pause_reasons_router = APIRouter(prefix="/api/v1/pause-reasons", tags=["agent sessions"])
PauseReasonId = Annotated[int, id_path("The pause reason's id")]


@pause_reasons_router.post(
    "",
    status_code=201,
    response_model=PauseReasonOut,
    responses=error_responses(401, 403, 409, 422),
    summary="Add a pause reason (a code of digits, dialed as *47<code>, and a label)",
)
async def create_pause_reason(
    body: PauseReasonCreate, scope: Admin, session: DbSession, response: Response
) -> PauseReasonOut:
    reason = await pause_reasons.create_pause_reason(session, scope, body)
    set_etag(response, reason.id, reason.version)
    return PauseReasonOut.model_validate(reason)


@pause_reasons_router.get(
    "",
    response_model=Page[PauseReasonOut],
    responses=error_responses(401, 403, 422),
    summary="The tenant's pause reasons",
)
async def list_pause_reasons(
    scope: Member, session: DbSession, page: PageParams
) -> Page[PauseReasonOut]:
    rows, after = await pause_reasons.list_pause_reasons(
        session, scope, after_id=page.after_id, limit=page.limit
    )
    return page_of([PauseReasonOut.model_validate(r) for r in rows], after)


@pause_reasons_router.get(
    "/{reason_id}", response_model=PauseReasonOut, responses=error_responses(401, 403, 404, 422)
)
async def get_pause_reason(
    reason_id: PauseReasonId, scope: Member, session: DbSession, response: Response
) -> PauseReasonOut:
    reason = await pause_reasons.get_pause_reason(session, scope, reason_id)
    set_etag(response, reason.id, reason.version)
    return PauseReasonOut.model_validate(reason)


@pause_reasons_router.patch(
    "/{reason_id}",
    response_model=PauseReasonOut,
    responses=error_responses(401, 403, 404, 409, 412, 422),
)
async def update_pause_reason(
    reason_id: PauseReasonId,
    body: PauseReasonUpdate,
    scope: Admin,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> PauseReasonOut:
    reason = await pause_reasons.update_pause_reason(
        session, scope, reason_id, body, expected_version(if_match, reason_id)
    )
    set_etag(response, reason.id, reason.version)
    return PauseReasonOut.model_validate(reason)


@pause_reasons_router.delete(
    "/{reason_id}", status_code=204, responses=error_responses(401, 403, 404, 422)
)
async def delete_pause_reason(
    reason_id: PauseReasonId, scope: Admin, session: DbSession
) -> Response:
    await pause_reasons.delete_pause_reason(session, scope, reason_id)
    return Response(status_code=204)
