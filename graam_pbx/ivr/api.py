from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from graam_pbx.deps import Admin, DbSession, Reader
from graam_pbx.ivr import service
from graam_pbx.ivr.schemas import IvrCreate, IvrOut, IvrUpdate
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

router = APIRouter(prefix="/api/v1/ivrs", tags=["ivr"])
MenuId = Annotated[int, id_path("The menu's id")]


def _out(found: service.MenuWithOptions, response: Response | None = None) -> IvrOut:
    if response is not None:
        set_etag(response, found.menu.id, found.menu.version)
    return IvrOut.of(found.menu, found.options)


@router.post(
    "", status_code=201, response_model=IvrOut, responses=error_responses(401, 403, 409, 422)
)
async def create_menu(
    body: IvrCreate, scope: Admin, session: DbSession, response: Response
) -> IvrOut:
    return _out(await service.create_menu(session, scope, body), response)


@router.get("", response_model=Page[IvrOut], responses=error_responses(401, 403, 422))
async def list_menus(scope: Reader, session: DbSession, page: PageParams) -> Page[IvrOut]:
    menus, after = await service.list_menus(
        session, scope, after_id=page.after_id, limit=page.limit
    )
    return page_of([_out(m) for m in menus], after)


@router.get("/{menu_id}", response_model=IvrOut, responses=error_responses(401, 403, 404, 422))
async def get_menu(
    menu_id: MenuId, scope: Reader, session: DbSession, response: Response
) -> IvrOut:
    return _out(await service.get_menu(session, scope, menu_id), response)


@router.patch(
    "/{menu_id}",
    response_model=IvrOut,
    responses=error_responses(401, 403, 404, 409, 412, 422),
    summary="Change a menu; a given `options` mapping replaces all options",
)
async def update_menu(
    menu_id: MenuId,
    body: IvrUpdate,
    scope: Admin,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> IvrOut:
    found = await service.update_menu(
        session, scope, menu_id, body, expected_version(if_match, menu_id)
    )
    return _out(found, response)


@router.delete(
    "/{menu_id}",
    status_code=204,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Delete a menu (409 while something still routes calls to it)",
)
async def delete_menu(menu_id: MenuId, scope: Admin, session: DbSession) -> Response:
    await service.delete_menu(session, scope, menu_id)
    return Response(status_code=204)
