from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from graam_pbx.campaigns import calls
from graam_pbx.campaigns.models import Campaign, Contact
from graam_pbx.campaigns.schemas.calls import (
    AttemptDisposed,
    CampaignRef,
    ContactCard,
    CurrentCall,
    DispositionSet,
    PreviewContact,
    PreviewDialed,
)
from graam_pbx.campaigns.schemas.dispositions import DispositionOut
from graam_pbx.deps import DbSession, Member
from graam_pbx.errors import Unavailable
from graam_pbx.rest import error_responses, id_path

router = APIRouter(prefix="/api/v1", tags=["campaigns"])
AttemptId = Annotated[int, id_path("The campaign call's (attempt's) id")]
CampaignId = Annotated[int, id_path("The campaign's id")]
ContactId = Annotated[int, id_path("The contact's id")]


class DialerUnavailable(Unavailable):
    error_id = "dialer-unavailable"


def _campaign_ref(campaign: Campaign) -> CampaignRef:
    return CampaignRef(id=campaign.id, name=campaign.name, mode=campaign.mode)


def _card(contact: Contact) -> ContactCard:
    return ContactCard(
        id=contact.id,
        number=contact.number,
        name=contact.name,
        region=contact.region,
        fields=dict(contact.fields or {}),
    )


@router.get(
    "/campaign-calls/current",
    response_model=CurrentCall,
    responses=error_responses(401, 403, 404),
    summary="The caller's campaign call: in progress, or ended and awaiting its disposition",
    description="The contact with its fields, the script rendered with them, and the "
    "dispositions to choose from; 404 when there is none.",
)
async def current_call(scope: Member, session: DbSession) -> CurrentCall:
    screen = await calls.current_call(session, scope)
    return CurrentCall(
        attempt_id=screen.attempt.id,
        state=screen.state,
        placed_at=screen.attempt.placed_at,
        answered_at=screen.attempt.answered_at,
        ended_at=screen.attempt.ended_at,
        campaign=_campaign_ref(screen.campaign),
        contact=_card(screen.contact),
        script=screen.script,
        dispositions=[DispositionOut.of(d) for d in screen.dispositions],
    )


@router.post(
    "/campaign-calls/{attempt_id}/disposition",
    response_model=AttemptDisposed,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Set what came of an answered campaign call (by the agent who took it)",
    description="Once the call has ended and only once (409 otherwise). Refused: the contact "
    "is done and the number blocked for the law's period; machine: the call counts as a "
    "machine; callback: the contact is called again after the no-answer delay.",
)
async def set_disposition(
    attempt_id: AttemptId, body: DispositionSet, scope: Member, session: DbSession
) -> AttemptDisposed:
    attempt, contact = await calls.set_disposition(session, scope, attempt_id, body.disposition_id)
    return AttemptDisposed(
        attempt_id=attempt.id,
        disposition_id=body.disposition_id,
        outcome=attempt.outcome,
        contact_state=contact.state,
    )


_PREVIEW = error_responses(401, 403, 404, 409, 422)


@router.post(
    "/campaigns/{campaign_id}/preview/next",
    response_model=PreviewContact,
    responses=_PREVIEW,
    summary="Preview: reserve the next contact to call for the caller",
    description="The contact already reserved for the caller, if any; 404 when none is due; "
    "409 unless the campaign is a running preview campaign.",
)
async def preview_next(
    campaign_id: CampaignId, scope: Member, session: DbSession
) -> PreviewContact:
    reserved = await calls.reserve_next(session, scope, campaign_id)
    return PreviewContact(
        campaign=_campaign_ref(reserved.campaign),
        contact=_card(reserved.contact),
        attempts=reserved.row.attempts,
        last_outcome=reserved.row.last_outcome,
        script=reserved.script,
    )


@router.post(
    "/campaigns/{campaign_id}/preview/{contact_id}/dial",
    status_code=202,
    response_model=PreviewDialed,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Preview: call the contact reserved for the caller",
    description="The call is placed by the dialer (the law's rules checked first): this "
    "process's, or the active worker's for an API process; 503 dialer-unavailable when no "
    "dialer can place it now (nothing was placed).",
)
async def preview_dial(
    campaign_id: CampaignId,
    contact_id: ContactId,
    scope: Member,
    session: DbSession,
    request: Request,
) -> PreviewDialed:
    # Checked without a row lock: the dialer takes the contact in its own transaction.
    await calls.ensure_reserved(session, scope, campaign_id, contact_id, lock=False)
    runtime = request.app.state.runtime
    # This process's dialer, or (an API process) the active worker's through Postgres.
    dialer = getattr(runtime, "dialer", None) or getattr(runtime, "remote_dialer", None)
    if dialer is None:
        raise DialerUnavailable("no dialer runs in this process", retry_after=5)
    attempt_id = await dialer.dial_preview(
        scope.tenant_id, campaign_id, contact_id, scope.principal.user_id
    )
    return PreviewDialed(attempt_id=attempt_id)


@router.post(
    "/campaigns/{campaign_id}/preview/{contact_id}/skip",
    status_code=204,
    responses=_PREVIEW,
    summary="Preview: give the reserved contact back; it comes again after the others",
)
async def preview_skip(
    campaign_id: CampaignId, contact_id: ContactId, scope: Member, session: DbSession
) -> Response:
    await calls.skip_contact(session, scope, campaign_id, contact_id)
    return Response(status_code=204)
