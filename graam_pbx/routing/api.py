from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from graam_pbx.auth.principal import Principal, Role
from graam_pbx.deps import Admin, Caller, DbSession, Operator, Reader
from graam_pbx.errors import Forbidden
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
from graam_pbx.routing import service
from graam_pbx.routing.schemas import (
    InboundRouteCreate,
    InboundRouteOut,
    InboundRouteUpdate,
    OutboundRouteCreate,
    OutboundRouteOut,
    OutboundRouteUpdate,
    ScheduleCreate,
    ScheduleOut,
    ScheduleUpdate,
    TrunkCreate,
    TrunkOut,
    TrunkUpdate,
)

router = APIRouter(prefix="/api/v1")
RouteId = Annotated[int, id_path("The route's id")]
TrunkId = Annotated[int, id_path("The trunk's id")]
ScheduleId = Annotated[int, id_path("The schedule's id")]


async def _trunk_reader(principal: Caller) -> Principal:
    # Trunks are the platform's, not a tenant's: no tenant header, admins may look.
    if principal.role not in (Role.OPERATOR, Role.ADMIN):
        raise Forbidden(f"a {principal.role} may not see trunks")
    return principal


TrunkReader = Annotated[Principal, Depends(_trunk_reader)]


# ---- trunks ---------------------------------------------------------------------------------


@router.post(
    "/trunks",
    tags=["trunks"],
    status_code=201,
    response_model=TrunkOut,
    responses=error_responses(401, 403, 409, 422),
)
async def create_trunk(
    body: TrunkCreate, principal: Operator, session: DbSession, response: Response
) -> TrunkOut:
    trunk = await service.create_trunk(session, principal, body)
    set_etag(response, trunk.id, trunk.version)
    return TrunkOut.of(trunk)


@router.get(
    "/trunks",
    tags=["trunks"],
    response_model=Page[TrunkOut],
    responses=error_responses(401, 403, 422),
)
async def list_trunks(
    principal: TrunkReader, session: DbSession, page: PageParams
) -> Page[TrunkOut]:
    trunks, after = await service.list_trunks(session, after_id=page.after_id, limit=page.limit)
    return page_of([TrunkOut.of(t) for t in trunks], after)


@router.get(
    "/trunks/{trunk_id}",
    tags=["trunks"],
    response_model=TrunkOut,
    responses=error_responses(401, 403, 404, 422),
)
async def get_trunk(
    trunk_id: TrunkId, principal: TrunkReader, session: DbSession, response: Response
) -> TrunkOut:
    trunk = await service.get_trunk(session, trunk_id)
    set_etag(response, trunk.id, trunk.version)
    return TrunkOut.of(trunk)


@router.patch(
    "/trunks/{trunk_id}",
    tags=["trunks"],
    response_model=TrunkOut,
    responses=error_responses(401, 403, 404, 409, 412, 422),
)
async def update_trunk(
    trunk_id: TrunkId,
    body: TrunkUpdate,
    principal: Operator,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> TrunkOut:
    trunk = await service.update_trunk(
        session, principal, trunk_id, body, expected_version(if_match, trunk_id)
    )
    set_etag(response, trunk.id, trunk.version)
    return TrunkOut.of(trunk)


@router.delete(
    "/trunks/{trunk_id}",
    tags=["trunks"],
    status_code=204,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def delete_trunk(trunk_id: TrunkId, principal: Operator, session: DbSession) -> Response:
    await service.delete_trunk(session, principal, trunk_id)
    return Response(status_code=204)


# ---- outbound routes ------------------------------------------------------------------------


@router.post(
    "/outbound-routes",
    tags=["outbound routes"],
    status_code=201,
    response_model=OutboundRouteOut,
    responses=error_responses(401, 403, 409, 422),
)
async def create_outbound_route(
    body: OutboundRouteCreate, scope: Admin, session: DbSession, response: Response
) -> OutboundRouteOut:
    route = await service.create_outbound_route(session, scope, body)
    set_etag(response, route.id, route.version)
    return OutboundRouteOut.model_validate(route)


@router.get(
    "/outbound-routes",
    tags=["outbound routes"],
    response_model=Page[OutboundRouteOut],
    responses=error_responses(401, 403, 422),
)
async def list_outbound_routes(
    scope: Reader, session: DbSession, page: PageParams
) -> Page[OutboundRouteOut]:
    routes, after = await service.list_outbound_routes(
        session, scope, after_id=page.after_id, limit=page.limit
    )
    return page_of([OutboundRouteOut.model_validate(r) for r in routes], after)


@router.get(
    "/outbound-routes/{route_id}",
    tags=["outbound routes"],
    response_model=OutboundRouteOut,
    responses=error_responses(401, 403, 404, 422),
)
async def get_outbound_route(
    route_id: RouteId, scope: Reader, session: DbSession, response: Response
) -> OutboundRouteOut:
    route = await service.get_outbound_route(session, scope, route_id)
    set_etag(response, route.id, route.version)
    return OutboundRouteOut.model_validate(route)


@router.patch(
    "/outbound-routes/{route_id}",
    tags=["outbound routes"],
    response_model=OutboundRouteOut,
    responses=error_responses(401, 403, 404, 409, 412, 422),
)
async def update_outbound_route(
    route_id: RouteId,
    body: OutboundRouteUpdate,
    scope: Admin,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> OutboundRouteOut:
    route = await service.update_outbound_route(
        session, scope, route_id, body, expected_version(if_match, route_id)
    )
    set_etag(response, route.id, route.version)
    return OutboundRouteOut.model_validate(route)


@router.delete(
    "/outbound-routes/{route_id}",
    tags=["outbound routes"],
    status_code=204,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def delete_outbound_route(route_id: RouteId, scope: Admin, session: DbSession) -> Response:
    await service.delete_outbound_route(session, scope, route_id)
    return Response(status_code=204)


# ---- schedules ------------------------------------------------------------------------------


@router.post(
    "/schedules",
    tags=["schedules"],
    status_code=201,
    response_model=ScheduleOut,
    responses=error_responses(401, 403, 409, 422),
)
async def create_schedule(
    body: ScheduleCreate, scope: Admin, session: DbSession, response: Response
) -> ScheduleOut:
    schedule = await service.create_schedule(session, scope, body)
    set_etag(response, schedule.id, schedule.version)
    return ScheduleOut.model_validate(schedule)


@router.get(
    "/schedules",
    tags=["schedules"],
    response_model=Page[ScheduleOut],
    responses=error_responses(401, 403, 422),
)
async def list_schedules(scope: Reader, session: DbSession, page: PageParams) -> Page[ScheduleOut]:
    schedules, after = await service.list_schedules(
        session, scope, after_id=page.after_id, limit=page.limit
    )
    return page_of([ScheduleOut.model_validate(s) for s in schedules], after)


@router.get(
    "/schedules/{schedule_id}",
    tags=["schedules"],
    response_model=ScheduleOut,
    responses=error_responses(401, 403, 404, 422),
)
async def get_schedule(
    schedule_id: ScheduleId, scope: Reader, session: DbSession, response: Response
) -> ScheduleOut:
    schedule = await service.get_schedule(session, scope, schedule_id)
    set_etag(response, schedule.id, schedule.version)
    return ScheduleOut.model_validate(schedule)


@router.patch(
    "/schedules/{schedule_id}",
    tags=["schedules"],
    response_model=ScheduleOut,
    responses=error_responses(401, 403, 404, 409, 412, 422),
)
async def update_schedule(
    schedule_id: ScheduleId,
    body: ScheduleUpdate,
    scope: Admin,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> ScheduleOut:
    schedule = await service.update_schedule(
        session, scope, schedule_id, body, expected_version(if_match, schedule_id)
    )
    set_etag(response, schedule.id, schedule.version)
    return ScheduleOut.model_validate(schedule)


@router.delete(
    "/schedules/{schedule_id}",
    tags=["schedules"],
    status_code=204,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def delete_schedule(schedule_id: ScheduleId, scope: Admin, session: DbSession) -> Response:
    await service.delete_schedule(session, scope, schedule_id)
    return Response(status_code=204)


# ---- inbound routes -------------------------------------------------------------------------


@router.post(
    "/inbound-routes",
    tags=["inbound routes"],
    status_code=201,
    response_model=InboundRouteOut,
    responses=error_responses(401, 403, 409, 422),
)
async def create_inbound_route(
    body: InboundRouteCreate, scope: Admin, session: DbSession, response: Response
) -> InboundRouteOut:
    route = await service.create_inbound_route(session, scope, body)
    set_etag(response, route.id, route.version)
    return InboundRouteOut.of(route)


@router.get(
    "/inbound-routes",
    tags=["inbound routes"],
    response_model=Page[InboundRouteOut],
    responses=error_responses(401, 403, 422),
)
async def list_inbound_routes(
    scope: Reader, session: DbSession, page: PageParams
) -> Page[InboundRouteOut]:
    routes, after = await service.list_inbound_routes(
        session, scope, after_id=page.after_id, limit=page.limit
    )
    return page_of([InboundRouteOut.of(r) for r in routes], after)


@router.get(
    "/inbound-routes/{route_id}",
    tags=["inbound routes"],
    response_model=InboundRouteOut,
    responses=error_responses(401, 403, 404, 422),
)
async def get_inbound_route(
    route_id: RouteId, scope: Reader, session: DbSession, response: Response
) -> InboundRouteOut:
    route = await service.get_inbound_route(session, scope, route_id)
    set_etag(response, route.id, route.version)
    return InboundRouteOut.of(route)


@router.patch(
    "/inbound-routes/{route_id}",
    tags=["inbound routes"],
    response_model=InboundRouteOut,
    responses=error_responses(401, 403, 404, 409, 412, 422),
)
async def update_inbound_route(
    route_id: RouteId,
    body: InboundRouteUpdate,
    scope: Admin,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> InboundRouteOut:
    route = await service.update_inbound_route(
        session, scope, route_id, body, expected_version(if_match, route_id)
    )
    set_etag(response, route.id, route.version)
    return InboundRouteOut.of(route)


@router.delete(
    "/inbound-routes/{route_id}",
    tags=["inbound routes"],
    status_code=204,
    responses=error_responses(401, 403, 404, 422),
)
async def delete_inbound_route(route_id: RouteId, scope: Admin, session: DbSession) -> Response:
    await service.delete_inbound_route(session, scope, route_id)
    return Response(status_code=204)
