from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from graam_pbx.campaigns import dispositions as service
from graam_pbx.campaigns.schemas.dispositions import (
    DispositionCreate,
    DispositionOut,
    DispositionUpdate,
)
from graam_pbx.deps import Admin, DbSession, Reader
from graam_pbx.rest import Page, PageParams, error_responses, id_path, page_of

router = APIRouter(prefix="/api/v1", tags=["campaigns"])
DispositionId = Annotated[int, id_path("The disposition's id")]


@router.get(
    "/dispositions",
    response_model=Page[DispositionOut],
    responses=error_responses(401, 403, 422),
    summary="The tenant's catalogue of dispositions (the defaults are made on first use)",
)
async def list_dispositions(
    scope: Reader, session: DbSession, page: PageParams
) -> Page[DispositionOut]:
    rows, after = await service.list_dispositions(
        session, scope, after_id=page.after_id, limit=page.limit
    )
    return page_of([DispositionOut.of(d) for d in rows], after)


@router.post(
    "/dispositions",
    status_code=201,
    response_model=DispositionOut,
    responses=error_responses(401, 403, 409, 422),
    summary="Add a disposition to the catalogue (409 when its code is taken)",
)
async def create_disposition(
    body: DispositionCreate, scope: Admin, session: DbSession
) -> DispositionOut:
    return DispositionOut.of(await service.create_disposition(session, scope, body))


@router.patch(
    "/dispositions/{disposition_id}",
    response_model=DispositionOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Change a disposition's label or flags ('refused' keeps its refusal flag)",
)
async def update_disposition(
    disposition_id: DispositionId, body: DispositionUpdate, scope: Admin, session: DbSession
) -> DispositionOut:
    return DispositionOut.of(await service.update_disposition(session, scope, disposition_id, body))


@router.delete(
    "/dispositions/{disposition_id}",
    status_code=204,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Delete a disposition no call has used ('refused' stays)",
)
async def delete_disposition(
    disposition_id: DispositionId, scope: Admin, session: DbSession
) -> Response:
    await service.delete_disposition(session, scope, disposition_id)
    return Response(status_code=204)
