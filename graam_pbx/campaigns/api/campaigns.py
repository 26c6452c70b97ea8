from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Request, Response

from graam_pbx.campaigns import service, stats
from graam_pbx.campaigns.models import Campaign
from graam_pbx.campaigns.schemas.campaigns import (
    AgentStats,
    AttemptOut,
    CallRefusalOut,
    CampaignCreate,
    CampaignOut,
    CampaignProgress,
    CampaignStatsOut,
    CampaignUpdate,
)
from graam_pbx.deps import Admin, DbSession, Reader, Supervising
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

router = APIRouter(prefix="/api/v1", tags=["campaigns"])
CampaignId = Annotated[int, id_path("The campaign's id")]


def wake_dialer(request: Request) -> None:
    """Ask the dialer to look at campaigns now (after the commit), if this process runs one."""
    dialer = getattr(request.app.state.runtime, "dialer", None)
    if dialer is not None:
        dialer.request()


def _out(campaign: Campaign, response: Response) -> CampaignOut:
    set_etag(response, campaign.id, campaign.version)
    return CampaignOut.of(campaign)


@router.post(
    "/campaigns",
    status_code=201,
    response_model=CampaignOut,
    responses=error_responses(401, 403, 409, 422),
    summary="Create a campaign (a draft)",
    description="The list, queue, prompts and caller ID must be the tenant's (422 on the field); "
    "for progressive and predictive modes a French caller ID must be in ARCEP's ranges for "
    "automated calling (422 on body.caller_id_number_id). Calling hours are clipped to the "
    "law's; retries not named take their defaults.",
)
async def create_campaign(
    body: CampaignCreate, scope: Admin, session: DbSession, response: Response
) -> CampaignOut:
    return _out(await service.create_campaign(session, scope, body), response)


@router.get(
    "/campaigns",
    response_model=Page[CampaignOut],
    responses=error_responses(401, 403, 422),
    summary="The tenant's campaigns",
)
async def list_campaigns(scope: Reader, session: DbSession, page: PageParams) -> Page[CampaignOut]:
    rows, after = await service.list_campaigns(
        session, scope, after_id=page.after_id, limit=page.limit
    )
    return page_of([CampaignOut.of(c) for c in rows], after)


@router.get(
    "/campaigns/{campaign_id}",
    response_model=CampaignOut,
    responses=error_responses(401, 403, 404, 422),
    summary="One campaign",
)
async def get_campaign(
    campaign_id: CampaignId, scope: Reader, session: DbSession, response: Response
) -> CampaignOut:
    return _out(await service.get_campaign(session, scope, campaign_id), response)


@router.patch(
    "/campaigns/{campaign_id}",
    response_model=CampaignOut,
    responses=error_responses(401, 403, 404, 409, 412, 422),
    summary="Change a draft or paused campaign (409 otherwise)",
)
async def update_campaign(
    campaign_id: CampaignId,
    body: CampaignUpdate,
    scope: Admin,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> CampaignOut:
    campaign = await service.update_campaign(
        session, scope, campaign_id, body, expected_version(if_match, campaign_id)
    )
    return _out(campaign, response)


@router.delete(
    "/campaigns/{campaign_id}",
    status_code=204,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Delete a draft campaign (409 once started)",
)
async def delete_campaign(campaign_id: CampaignId, scope: Admin, session: DbSession) -> Response:
    await service.delete_campaign(session, scope, campaign_id)
    return Response(status_code=204)


_LIFECYCLE = error_responses(401, 403, 404, 409, 422)


@router.post(
    "/campaigns/{campaign_id}/start",
    response_model=CampaignOut,
    responses=_LIFECYCLE,
    summary="Start a draft campaign: its list's contacts become pending",
    description="409 when the tenant is suspended, the list is empty, or a progressive or "
    "predictive campaign has no abandon_prompt_id; 409 with the status from any other status.",
)
async def start_campaign(
    campaign_id: CampaignId,
    scope: Supervising,
    session: DbSession,
    request: Request,
    response: Response,
    background: BackgroundTasks,
) -> CampaignOut:
    campaign = await service.start_campaign(session, scope, campaign_id)
    background.add_task(wake_dialer, request)
    return _out(campaign, response)


@router.post(
    "/campaigns/{campaign_id}/pause",
    response_model=CampaignOut,
    responses=_LIFECYCLE,
    summary="Pause a running campaign: no new calls; calls in progress finish",
)
async def pause_campaign(
    campaign_id: CampaignId, scope: Supervising, session: DbSession, response: Response
) -> CampaignOut:
    return _out(await service.pause_campaign(session, scope, campaign_id), response)


@router.post(
    "/campaigns/{campaign_id}/resume",
    response_model=CampaignOut,
    responses=_LIFECYCLE,
    summary="Resume a paused campaign; contacts added to its list since join it",
)
async def resume_campaign(
    campaign_id: CampaignId,
    scope: Supervising,
    session: DbSession,
    request: Request,
    response: Response,
    background: BackgroundTasks,
) -> CampaignOut:
    campaign = await service.resume_campaign(session, scope, campaign_id)
    background.add_task(wake_dialer, request)
    return _out(campaign, response)


@router.post(
    "/campaigns/{campaign_id}/stop",
    response_model=CampaignOut,
    responses=_LIFECYCLE,
    summary="Stop a running or paused campaign for good; calls in progress finish",
)
async def stop_campaign(
    campaign_id: CampaignId, scope: Supervising, session: DbSession, response: Response
) -> CampaignOut:
    return _out(await service.stop_campaign(session, scope, campaign_id), response)


@router.get(
    "/campaigns/{campaign_id}/progress",
    response_model=CampaignProgress,
    responses=error_responses(401, 403, 404, 422),
    summary="Contacts called and remaining, by state, and attempts by outcome",
)
async def campaign_progress(
    campaign_id: CampaignId, scope: Reader, session: DbSession
) -> CampaignProgress:
    campaign = await service.get_campaign(session, scope, campaign_id)
    figures = await stats.progress(session, campaign.id)
    return CampaignProgress(
        contacts=figures.contacts,
        called=figures.called,
        remaining=figures.remaining,
        by_state=figures.by_state,
        by_outcome=figures.by_outcome,
        attempts=figures.attempts,
    )


@router.get(
    "/campaigns/{campaign_id}/stats",
    response_model=CampaignStatsOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Attempts, answers, machines, abandons (24 h and 30 days), dispositions, by agent",
)
async def campaign_stats(
    campaign_id: CampaignId, scope: Reader, session: DbSession
) -> CampaignStatsOut:
    campaign = await service.get_campaign(session, scope, campaign_id)
    figures = await stats.campaign_figures(session, campaign.id, datetime.now(UTC))
    return CampaignStatsOut(
        attempts=figures.attempts,
        answered=figures.answered,
        machines=figures.machines,
        abandoned=figures.abandoned,
        abandon_rate_24h=figures.abandon_rate_24h,
        abandon_rate_30d=figures.abandon_rate_30d,
        contacts_reached=figures.contacts_reached,
        dispositions=figures.dispositions,
        talk_seconds=figures.talk_seconds,
        agents=[
            AgentStats(
                user_id=a.user_id,
                display_name=a.display_name,
                calls=a.calls,
                talk_seconds=a.talk_seconds,
                dispositions=a.dispositions,
            )
            for a in figures.agents
        ],
    )


@router.get(
    "/campaigns/{campaign_id}/attempts",
    response_model=Page[AttemptOut],
    responses=error_responses(401, 403, 404, 422),
    summary="The campaign's calls, oldest first",
)
async def list_attempts(
    campaign_id: CampaignId, scope: Reader, session: DbSession, page: PageParams
) -> Page[AttemptOut]:
    rows, after = await service.list_attempts(
        session, scope, campaign_id, after_id=page.after_id, limit=page.limit
    )
    return page_of([AttemptOut.model_validate(a) for a in rows], after)


@router.get(
    "/campaigns/{campaign_id}/refusals",
    response_model=Page[CallRefusalOut],
    responses=error_responses(401, 403, 404, 422),
    summary="The compliance log: calls not placed and the rule that forbade each",
)
async def list_refusals(
    campaign_id: CampaignId, scope: Reader, session: DbSession, page: PageParams
) -> Page[CallRefusalOut]:
    rows, after = await service.list_refusals(
        session, scope, campaign_id, after_id=page.after_id, limit=page.limit
    )
    return page_of([CallRefusalOut.model_validate(r) for r in rows], after)
