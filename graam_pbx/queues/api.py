from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from graam_pbx.deps import DbSession, Supervising
from graam_pbx.queues import service
from graam_pbx.queues.schemas import (
    MemberCreate,
    MemberOut,
    MemberUpdate,
    QueueCreate,
    QueueOut,
    QueueUpdate,
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

# Supervisors manage queues and their members as much as admins do.
router = APIRouter(prefix="/api/v1/queues", tags=["queues"])
QueueId = Annotated[int, id_path("The queue's id")]
MemberId = Annotated[int, id_path("The membership's id")]


@router.post(
    "", status_code=201, response_model=QueueOut, responses=error_responses(401, 403, 409, 422)
)
async def create_queue(
    body: QueueCreate, scope: Supervising, session: DbSession, response: Response
) -> QueueOut:
    queue = await service.create_queue(session, scope, body)
    set_etag(response, queue.id, queue.version)
    return QueueOut.of(queue)


@router.get("", response_model=Page[QueueOut], responses=error_responses(401, 403, 422))
async def list_queues(scope: Supervising, session: DbSession, page: PageParams) -> Page[QueueOut]:
    queues, after = await service.list_queues(
        session, scope, after_id=page.after_id, limit=page.limit
    )
    return page_of([QueueOut.of(q) for q in queues], after)


@router.get("/{queue_id}", response_model=QueueOut, responses=error_responses(401, 403, 404, 422))
async def get_queue(
    queue_id: QueueId, scope: Supervising, session: DbSession, response: Response
) -> QueueOut:
    queue = await service.get_queue(session, scope, queue_id)
    set_etag(response, queue.id, queue.version)
    return QueueOut.of(queue)


@router.patch(
    "/{queue_id}",
    response_model=QueueOut,
    responses=error_responses(401, 403, 404, 409, 412, 422),
)
async def update_queue(
    queue_id: QueueId,
    body: QueueUpdate,
    scope: Supervising,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> QueueOut:
    queue = await service.update_queue(
        session, scope, queue_id, body, expected_version(if_match, queue_id)
    )
    set_etag(response, queue.id, queue.version)
    return QueueOut.of(queue)


@router.delete(
    "/{queue_id}",
    status_code=204,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Delete a queue and its members (409 while a route still sends calls to it)",
)
async def delete_queue(queue_id: QueueId, scope: Supervising, session: DbSession) -> Response:
    await service.delete_queue(session, scope, queue_id)
    return Response(status_code=204)


# ---- members --------------------------------------------------------------------------------


@router.get(
    "/{queue_id}/members",
    response_model=Page[MemberOut],
    responses=error_responses(401, 403, 404, 422),
)
async def list_members(
    queue_id: QueueId, scope: Supervising, session: DbSession, page: PageParams
) -> Page[MemberOut]:
    members, after = await service.list_members(
        session, scope, queue_id, after_id=page.after_id, limit=page.limit
    )
    return page_of([MemberOut.model_validate(m) for m in members], after)


@router.post(
    "/{queue_id}/members",
    status_code=201,
    response_model=MemberOut,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def add_member(
    queue_id: QueueId, body: MemberCreate, scope: Supervising, session: DbSession
) -> MemberOut:
    return MemberOut.model_validate(await service.add_member(session, scope, queue_id, body))


@router.patch(
    "/{queue_id}/members/{member_id}",
    response_model=MemberOut,
    responses=error_responses(401, 403, 404, 422),
)
async def update_member(
    queue_id: QueueId,
    member_id: MemberId,
    body: MemberUpdate,
    scope: Supervising,
    session: DbSession,
) -> MemberOut:
    member = await service.update_member(session, scope, queue_id, member_id, body)
    return MemberOut.model_validate(member)


@router.delete(
    "/{queue_id}/members/{member_id}",
    status_code=204,
    responses=error_responses(401, 403, 404, 422),
)
async def remove_member(
    queue_id: QueueId, member_id: MemberId, scope: Supervising, session: DbSession
) -> Response:
    await service.remove_member(session, scope, queue_id, member_id)
    return Response(status_code=204)
