from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from graam_pbx.deps import Admin, DbSession, Member, Reader
from graam_pbx.forwarding import follow_me, service
from graam_pbx.forwarding import rules as user_rules
from graam_pbx.forwarding.schemas import (
    ExternalNumberCreate,
    ExternalNumberOut,
    ExternalNumberUpdate,
    FollowMeIn,
    FollowMeOut,
    ForwardingRules,
    ForwardingRulesOut,
)
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

router = APIRouter(prefix="/api/v1/external-numbers", tags=["forwarding"])
NumberId = Annotated[int, id_path("The external number's id")]


@router.post(
    "",
    status_code=201,
    response_model=ExternalNumberOut,
    responses=error_responses(401, 403, 422),
    summary="A number outside the switch calls can be sent to (a destination of type external)",
)
async def create_number(
    body: ExternalNumberCreate, scope: Admin, session: DbSession, response: Response
) -> ExternalNumberOut:
    number = await service.create_number(session, scope, body)
    set_etag(response, number.id, number.version)
    return ExternalNumberOut.model_validate(number)


@router.get("", response_model=Page[ExternalNumberOut], responses=error_responses(401, 403, 422))
async def list_numbers(
    scope: Reader, session: DbSession, page: PageParams
) -> Page[ExternalNumberOut]:
    numbers, after = await service.list_numbers(
        session, scope, after_id=page.after_id, limit=page.limit
    )
    return page_of([ExternalNumberOut.model_validate(n) for n in numbers], after)


@router.get(
    "/{external_id}",
    response_model=ExternalNumberOut,
    responses=error_responses(401, 403, 404, 422),
)
async def get_number(
    external_id: NumberId, scope: Reader, session: DbSession, response: Response
) -> ExternalNumberOut:
    number = await service.get_number(session, scope, external_id)
    set_etag(response, number.id, number.version)
    return ExternalNumberOut.model_validate(number)


@router.patch(
    "/{external_id}",
    response_model=ExternalNumberOut,
    responses=error_responses(401, 403, 404, 412, 422),
)
async def update_number(
    external_id: NumberId,
    body: ExternalNumberUpdate,
    scope: Admin,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> ExternalNumberOut:
    number = await service.update_number(
        session, scope, external_id, body, expected_version(if_match, external_id)
    )
    set_etag(response, number.id, number.version)
    return ExternalNumberOut.model_validate(number)


@router.delete(
    "/{external_id}",
    status_code=204,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Delete an external number (409 while something still sends calls to it)",
)
async def delete_number(external_id: NumberId, scope: Admin, session: DbSession) -> Response:
    await service.delete_number(session, scope, external_id)
    return Response(status_code=204)


users_router = APIRouter(prefix="/api/v1/users", tags=["forwarding"])
UserId = Annotated[int, id_path("The user's id")]


@users_router.get(
    "/{user_id}/forwarding",
    response_model=ForwardingRulesOut,
    responses=error_responses(401, 403, 404, 422),
    summary="A user's forwarding rules (admins: anyone's; others: their own)",
)
async def get_forwarding(
    user_id: UserId, scope: Member, session: DbSession, response: Response
) -> ForwardingRulesOut:
    rules = await user_rules.get_rules(session, scope, user_id)
    set_etag(response, user_id, rules.version)
    return rules


@users_router.put(
    "/{user_id}/forwarding",
    response_model=ForwardingRulesOut,
    responses=error_responses(401, 403, 404, 412, 422),
    summary="Replace a user's forwarding rules (live at the next call)",
)
async def put_forwarding(
    user_id: UserId,
    body: ForwardingRules,
    scope: Member,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> ForwardingRulesOut:
    rules = await user_rules.set_rules(
        session, scope, user_id, body, expected_version(if_match, user_id)
    )
    set_etag(response, user_id, rules.version)
    return rules


follow_me_router = APIRouter(prefix="/api/v1/follow-me", tags=["forwarding"])
FollowMeId = Annotated[int, id_path("The follow-me's id")]


@follow_me_router.post(
    "",
    status_code=201,
    response_model=FollowMeOut,
    responses=error_responses(401, 403, 422),
    summary="A follow-me: phones and external numbers rung in steps (a destination)",
)
async def create_follow_me(
    body: FollowMeIn, scope: Admin, session: DbSession, response: Response
) -> FollowMeOut:
    made = await follow_me.create(session, scope, body)
    set_etag(response, made.id, made.version)
    return made


@follow_me_router.get(
    "", response_model=Page[FollowMeOut], responses=error_responses(401, 403, 422)
)
async def list_follow_me(scope: Reader, session: DbSession, page: PageParams) -> Page[FollowMeOut]:
    found, after = await follow_me.list_all(
        session, scope, after_id=page.after_id, limit=page.limit
    )
    return page_of(found, after)


@follow_me_router.get(
    "/{follow_me_id}", response_model=FollowMeOut, responses=error_responses(401, 403, 404, 422)
)
async def get_follow_me(
    follow_me_id: FollowMeId, scope: Reader, session: DbSession, response: Response
) -> FollowMeOut:
    found = await follow_me.get(session, scope, follow_me_id)
    set_etag(response, found.id, found.version)
    return found


@follow_me_router.put(
    "/{follow_me_id}",
    response_model=FollowMeOut,
    responses=error_responses(401, 403, 404, 412, 422),
)
async def put_follow_me(
    follow_me_id: FollowMeId,
    body: FollowMeIn,
    scope: Admin,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> FollowMeOut:
    changed = await follow_me.replace(
        session, scope, follow_me_id, body, expected_version(if_match, follow_me_id)
    )
    set_etag(response, changed.id, changed.version)
    return changed


@follow_me_router.delete(
    "/{follow_me_id}", status_code=204, responses=error_responses(401, 403, 404, 409, 422)
)
async def delete_follow_me(follow_me_id: FollowMeId, scope: Admin, session: DbSession) -> Response:
    await follow_me.remove(session, scope, follow_me_id)
    return Response(status_code=204)
