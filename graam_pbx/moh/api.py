from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from graam_pbx.deps import Admin, DbSession, Reader
from graam_pbx.moh import service
from graam_pbx.moh.schemas import MohClassCreate, MohClassOut, MohClassUpdate
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

router = APIRouter(prefix="/api/v1/moh-classes", tags=["music on hold"])
ClassId = Annotated[int, id_path("The hold music class's id")]


@router.post(
    "",
    status_code=201,
    response_model=MohClassOut,
    responses=error_responses(401, 403, 409, 422),
    summary="Make a hold music class of the tenant's prompts (queues name it in music_on_hold)",
)
async def create_class(
    body: MohClassCreate, scope: Admin, session: DbSession, response: Response
) -> MohClassOut:
    moh_class = await service.create_class(session, scope, body)
    set_etag(response, moh_class.id, moh_class.version)
    return MohClassOut.of(moh_class, body.prompt_ids)


@router.get("", response_model=Page[MohClassOut], responses=error_responses(401, 403, 422))
async def list_classes(scope: Reader, session: DbSession, page: PageParams) -> Page[MohClassOut]:
    classes, after = await service.list_classes(
        session, scope, after_id=page.after_id, limit=page.limit
    )
    return page_of([MohClassOut.of(c, prompts) for c, prompts in classes], after)


@router.get(
    "/{moh_class_id}", response_model=MohClassOut, responses=error_responses(401, 403, 404, 422)
)
async def get_class(
    moh_class_id: ClassId, scope: Reader, session: DbSession, response: Response
) -> MohClassOut:
    moh_class, prompts = await service.get_class(session, scope, moh_class_id)
    set_etag(response, moh_class.id, moh_class.version)
    return MohClassOut.of(moh_class, prompts)


@router.patch(
    "/{moh_class_id}",
    response_model=MohClassOut,
    responses=error_responses(401, 403, 404, 412, 422),
    summary="Replace the class's prompts (its name never changes)",
)
async def update_class(
    moh_class_id: ClassId,
    body: MohClassUpdate,
    scope: Admin,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> MohClassOut:
    moh_class = await service.update_class(
        session, scope, moh_class_id, body, expected_version(if_match, moh_class_id)
    )
    set_etag(response, moh_class.id, moh_class.version)
    return MohClassOut.of(moh_class, body.prompt_ids)


@router.delete(
    "/{moh_class_id}",
    status_code=204,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Delete a class (409 while a queue plays it)",
)
async def delete_class(moh_class_id: ClassId, scope: Admin, session: DbSession) -> Response:
    await service.delete_class(session, scope, moh_class_id)
    return Response(status_code=204)
