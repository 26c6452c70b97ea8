"""/api/v1/calls: click-to-call, and the control of the tenant's live calls (CRMs'
integrations; docs/integrations.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami.supervisor import AmiRoutes, ami_routes
from graam_pbx.call_control import calls, click, control, hold
from graam_pbx.call_control.calls_schemas import (
    CALL_ID_PATTERN,
    IDEMPOTENCY_KEY_PATTERN,
    CallOut,
    CallPlaced,
    ClickToCallIn,
    ControlOut,
    DtmfIn,
    TransferIn,
)
from graam_pbx.deps import DbSession, Member
from graam_pbx.rest import Page, error_responses

router = APIRouter(prefix="/api/v1/calls", tags=["call control"])

CallId = Annotated[
    str,
    Path(
        pattern=CALL_ID_PATTERN,
        max_length=150,
        description="The call's id: its linkedid (a click-to-call's id is its own).",
    ),
]
IdempotencyKey = Annotated[
    str,
    Header(
        pattern=IDEMPOTENCY_KEY_PATTERN,
        max_length=255,
        description="The client's own key for this click (printable ASCII, up to 255): the "
        "same key again answers with the first request's call and places no other.",
    ),
]

_WHO = (
    " Admins, supervisors and operators acting in the tenant control every call of the "
    "tenant, an agent its own (a call with a channel on one of its devices). Another "
    "tenant's call is 404 `call-not-found`: nothing but Asterisk's list of channels was read, "
    "no action sent. Every action is in the audit log (object `call`, the call's id) before "
    "it is sent."
)
_CONTROL_ERRORS = error_responses(401, 403, 404, 409, 422, 503)


def _sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    return sessions


def _routes(request: Request) -> AmiRoutes:
    return ami_routes(request.app.state.runtime)


@router.post(
    "",
    status_code=202,
    response_model=CallPlaced,
    responses=error_responses(401, 403, 409, 422, 503),
    summary="Click-to-call: ring the agent's device, then dial the number",
    description="The agent's device (the one it is logged in with, else its first; a SIP or "
    "a browser phone) rings; once the agent answers, the number is dialled through the "
    "tenant's outbound routes as if the agent's phone had dialled it: the route's caller ID "
    "and trunk, the recording rules, a CDR naming the agent, rated and billed like any "
    "outbound call. Answers at once with the call's id (`GET /api/v1/calls/{id}` follows it). "
    "`Idempotency-Key` is required: the same key in the same tenant answers with the first "
    "request's call and never places a second (409 `idempotency-key-reused` when it named "
    "another number or agent). 409 `tenant-calls-refused` (`details.reason`: `suspended`) "
    "for a suspended tenant, 409 `agent-has-no-device`; 422 on `body.number` when no "
    "outbound route of the tenant reaches it. The request is in the audit log "
    "(`click-to-call`) before the device rings. 503 when Asterisk did not take the call: "
    "retry with the same key.",
)
async def place_call(
    body: ClickToCallIn,
    scope: Member,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey,
) -> CallPlaced:
    sessions = _sessions(request)
    # Its own transaction, committed before the call is placed: the row and the audit entry.
    async with sessions() as session, session.begin():
        placement = await click.prepare(session, scope, body, idempotency_key)
    if placement.send:
        await click.place(sessions, placement, _routes(request))
    response.headers["Location"] = f"{router.prefix}/{placement.call_id}"
    return placement.out()


@router.get(
    "",
    response_model=Page[CallOut],
    responses=error_responses(401, 403, 503),
    summary="The tenant's live calls",
    description="Every live call of the tenant (an agent: its own), oldest first, with its "
    "channels, as Asterisk shows them now: one page, no cursor.",
)
async def list_calls(scope: Member, session: DbSession, request: Request) -> Page[CallOut]:
    found, seen = await calls.live_calls(session, scope, _routes(request))
    return Page(
        items=[
            CallOut(
                id=call.id,
                state=call.state(),
                channels=calls.channels_out(call, seen.devices),
                legs=[],
                agent_user_id=None,
                number=None,
            )
            for call in found
        ]
    )


@router.get(
    "/{call_id}",
    response_model=CallOut,
    responses=error_responses(401, 403, 404, 422, 503),
    summary="A call's state",
    description="Live: its state (`ringing`, `answered`, `connected`, `held`) and channels, "
    "read from Asterisk. Ended: `ended`, with its legs (CDRs) once written. A click-to-call "
    "Asterisk has not started yet is `starting`, one it never took `not-placed`." + _WHO,
)
async def get_call(scope: Member, session: DbSession, request: Request, call_id: CallId) -> CallOut:
    return await calls.call_out(session, scope, _routes(request), call_id)


@router.post(
    "/{call_id}/hangup",
    response_model=ControlOut,
    responses=_CONTROL_ERRORS,
    summary="Hang a call up",
    description="Every channel of the call is hung up (audit `call-hangup`)." + _WHO,
)
async def hangup_call(scope: Member, request: Request, call_id: CallId) -> ControlOut:
    return await control.hangup(_sessions(request), scope, _routes(request), call_id)


@router.post(
    "/{call_id}/transfer",
    response_model=ControlOut,
    responses=_CONTROL_ERRORS,
    summary="Transfer a call's other party",
    description="Blind (the default): the party the agent talks to goes to the target at "
    "once (an extension of the tenant, one of its queues, or a number its routes reach, "
    "billed as the tenant's outbound call), and the agent's leg ends. Attended: the agent "
    "is put through to the target while the other party hears hold music; the agent "
    "completes it by hanging up (or `*2` on its phone, `*1` to go back); to a queue, the "
    "agent waits in it and talks with the queue's agent first. Only where the agent may "
    "transfer (queue calls, calls dialled to its phone, click-to-calls; else 409 "
    "`attended-transfer-unavailable`). 409 `call-not-connected` when the agent "
    "talks to nobody, `call-held` while on hold, `call-not-two-party` in a conference; 422 "
    "naming the target's field when the tenant has no such target (audit "
    "`call-transfer`)." + _WHO,
)
async def transfer_call(
    body: TransferIn, scope: Member, request: Request, call_id: CallId
) -> ControlOut:
    return await control.transfer(_sessions(request), scope, _routes(request), call_id, body)


@router.post(
    "/{call_id}/hold",
    response_model=ControlOut,
    responses=_CONTROL_ERRORS,
    summary="Put a call on hold",
    description="The other party hears hold music, the agent waits in silence, until "
    "`/resume`; either hanging up meanwhile ends the call. 409 `call-held`, "
    "`call-not-connected`, `call-not-two-party` (audit `call-hold`)." + _WHO,
)
async def hold_call(scope: Member, request: Request, call_id: CallId) -> ControlOut:
    return await hold.hold(_sessions(request), scope, _routes(request), call_id)


@router.post(
    "/{call_id}/resume",
    response_model=ControlOut,
    responses=_CONTROL_ERRORS,
    summary="Take a call off hold",
    description="The two parties held talk again. 409 `call-not-held` (audit "
    "`call-resume`)." + _WHO,
)
async def resume_call(scope: Member, request: Request, call_id: CallId) -> ControlOut:
    return await hold.resume(_sessions(request), scope, _routes(request), call_id)


@router.post(
    "/{call_id}/dtmf",
    response_model=ControlOut,
    responses=_CONTROL_ERRORS,
    summary="Send DTMF digits to a call's other party",
    description="Each digit is sent out to the party the agent talks to (RFC 4733 on SIP), "
    "one after the other, as if the agent had pressed them. 409 `call-not-connected`, "
    "`call-held` (audit `call-dtmf`, with the number of digits, never the digits)." + _WHO,
)
async def dtmf_call(body: DtmfIn, scope: Member, request: Request, call_id: CallId) -> ControlOut:
    return await control.send_dtmf(
        _sessions(request), scope, _routes(request), call_id, body.digits
    )
