from __future__ import annotations

from fastapi import APIRouter, Request

from graam_pbx.ami.supervisor import ami_routes
from graam_pbx.call_control import calls_api, recording
from graam_pbx.call_control.schemas import RecordingChange, RecordingState
from graam_pbx.deps import DbSession, Member
from graam_pbx.rest import error_responses

my_call = APIRouter(prefix="/api/v1/my-call", tags=["call control"])

_ABOUT = (
    "The caller's own answered call, found on its devices (admins, supervisors and agents of "
    "the tenant; 409 `not-on-call` without one). The tenant's recording policy decides "
    "whether the call may be recorded at all (`recordable`); in mode `always` it is recorded "
    "from the answer, in `on_demand` once started. A pause cuts the paused stretch out of "
    "the recording, exactly as the in-call code *3 does."
)


@my_call.get(
    "/recording",
    response_model=RecordingState,
    responses=error_responses(401, 403, 409, 503),
    summary="Whether one's current call is being recorded",
    description=_ABOUT,
)
async def get_recording(scope: Member, session: DbSession, request: Request) -> RecordingState:
    return await recording.current(session, scope, ami_routes(request.app.state.runtime))


@my_call.put(
    "/recording",
    response_model=RecordingState,
    responses=error_responses(401, 403, 409, 422, 503),
    summary="Start, resume or pause the recording of one's current call",
    description=_ABOUT
    + " 409 `call-not-recordable` when the policy records nothing of this call. Every start "
    "and pause is in the audit log (`recording-start`, `recording-pause`; object `call`, the "
    "call's linkedid).",
)
async def put_recording(
    body: RecordingChange, scope: Member, session: DbSession, request: Request
) -> RecordingState:
    routes = ami_routes(request.app.state.runtime)
    return await recording.change(session, scope, routes, recording=body.recording)


# The app includes this one router: one's own call, then the tenant's calls.
router = APIRouter()
router.include_router(my_call)
router.include_router(calls_api.router)
