from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from graam_pbx.deps import Admin, DbSession, Reader
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
from graam_pbx.voicemail import service
from graam_pbx.voicemail.schemas import BoxCreate, BoxOut, BoxUpdate

router = APIRouter(prefix="/api/v1/voicemail-boxes", tags=["voicemail"])
BoxId = Annotated[int, id_path("The box's id")]


@router.post(
    "", status_code=201, response_model=BoxOut, responses=error_responses(401, 403, 409, 422)
)
async def create_box(
    body: BoxCreate, scope: Admin, session: DbSession, response: Response
) -> BoxOut:
    box = await service.create_box(session, scope, body)
    set_etag(response, box.id, box.version)
    return BoxOut.model_validate(box)


@router.get("", response_model=Page[BoxOut], responses=error_responses(401, 403, 422))
async def list_boxes(scope: Reader, session: DbSession, page: PageParams) -> Page[BoxOut]:
    boxes, after = await service.list_boxes(
        session, scope, after_id=page.after_id, limit=page.limit
    )
    return page_of([BoxOut.model_validate(b) for b in boxes], after)


@router.get("/{box_id}", response_model=BoxOut, responses=error_responses(401, 403, 404, 422))
async def get_box(box_id: BoxId, scope: Reader, session: DbSession, response: Response) -> BoxOut:
    box = await service.get_box(session, scope, box_id)
    set_etag(response, box.id, box.version)
    return BoxOut.model_validate(box)


@router.patch(
    "/{box_id}",
    response_model=BoxOut,
    responses=error_responses(401, 403, 404, 409, 412, 422),
)
async def update_box(
    box_id: BoxId,
    body: BoxUpdate,
    scope: Admin,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> BoxOut:
    box = await service.update_box(session, scope, box_id, body, expected_version(if_match, box_id))
    set_etag(response, box.id, box.version)
    return BoxOut.model_validate(box)


@router.delete(
    "/{box_id}",
    status_code=204,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Delete a box (409 while something still routes calls to it)",
)
async def delete_box(box_id: BoxId, scope: Admin, session: DbSession) -> Response:
    await service.delete_box(session, scope, box_id)
    return Response(status_code=204)
