from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami.supervisor import ami_routes
from graam_pbx.deps import Supervising
from graam_pbx.rest import error_responses
from graam_pbx.supervision import service
from graam_pbx.supervision.schemas import SupervisionOut, SupervisionStart

router = APIRouter(prefix="/api/v1/supervision", tags=["supervision"])


@router.post(
    "",
    status_code=202,
    response_model=SupervisionOut,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Listen to, whisper to or barge into an agent's call from the supervisor's device",
    description="The supervisor's device (its own; the first one unless `device_id` names "
    "another) is called and, once answered, hears the agent's call: `listen` hears both sides "
    "unheard, `whisper` speaks to the agent alone, `barge` to both. Admins and supervisors of "
    "the agent's tenant (and operators acting in it) only: an agent of another tenant is 404 "
    "and nothing reaches Asterisk. 409 `agent-not-on-call` when the agent has no answered "
    "call, 409 `supervisor-has-no-device` when there is no device to call. Every start is in "
    "the audit log (`supervise`, object `agent`) before the device is called. Whether the "
    "agent hears a short tone when the supervisor starts is the tenant's recording setting "
    "`supervision_tells_agent` (default: it does).",
)
async def start_supervision(
    body: SupervisionStart, scope: Supervising, request: Request
) -> SupervisionOut:
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    # Its own transaction, committed before the call is placed: the audit entry first.
    async with sessions() as session, session.begin():
        supervision = await service.prepare(
            session, scope, body, ami_routes(request.app.state.runtime)
        )
    await service.call_supervisor(supervision)
    return SupervisionOut(
        id=supervision.id,
        agent_user_id=supervision.agent_user_id,
        mode=supervision.mode,
        device_id=supervision.device_id,
        agent_channel=supervision.agent_channel.name,
        agent_told=supervision.agent_told,
    )
