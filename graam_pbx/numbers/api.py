from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response

from graam_pbx.deps import Admin, DbSession, Operator, Reader
from graam_pbx.numbers import service
from graam_pbx.numbers.models import NumberStatus, NumberType
from graam_pbx.numbers.schemas import (
    MAX_CATALOGUE_BATCH,
    AvailableNumberOut,
    CatalogueNumberIn,
    CatalogueNumberOut,
    NumberOut,
    NumberPurchase,
    NumberRelease,
)
from graam_pbx.rest import (
    IfMatch,
    Page,
    PageParams,
    error_responses,
    expected_version,
    id_path,
    id_query,
    page_of,
    set_etag,
)

router = APIRouter(prefix="/api/v1")
CountryFilter = Annotated[
    str | None, Query(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 country code")
]
TypeFilter = Annotated[NumberType | None, Query()]
StatusFilter = Annotated[NumberStatus | None, Query()]
NumberId = Annotated[int, id_path("The number's id")]
CatalogueBatch = Annotated[
    list[CatalogueNumberIn],
    Body(
        min_length=1,
        max_length=MAX_CATALOGUE_BATCH,
        examples=[[{"e164": "+33142685300", "monthly_price": "1.50", "currency": "EUR"}]],
    ),
]


# ---- the operator's catalogue ---------------------------------------------------------------


@router.post(
    "/catalogue/numbers",
    tags=["catalogue"],
    status_code=201,
    response_model=list[CatalogueNumberOut],
    responses=error_responses(401, 403, 409, 422),
    summary="Add up to 1000 numbers to the catalogue, all or none",
)
async def load_catalogue(
    body: CatalogueBatch, principal: Operator, session: DbSession
) -> list[CatalogueNumberOut]:
    numbers = await service.load_catalogue(session, principal, body)
    return [CatalogueNumberOut.model_validate(n) for n in numbers]


@router.get(
    "/catalogue/numbers",
    tags=["catalogue"],
    response_model=Page[CatalogueNumberOut],
    responses=error_responses(401, 403, 422),
)
async def list_catalogue(
    principal: Operator,
    session: DbSession,
    page: PageParams,
    country: CountryFilter = None,
    number_type: TypeFilter = None,
    status: StatusFilter = None,
    tenant_id: Annotated[int | None, id_query("Numbers this tenant holds")] = None,
) -> Page[CatalogueNumberOut]:
    numbers, after = await service.list_catalogue(
        session,
        country=country,
        number_type=number_type,
        status=status,
        tenant_id=tenant_id,
        after_id=page.after_id,
        limit=page.limit,
    )
    return page_of([CatalogueNumberOut.model_validate(n) for n in numbers], after)


# ---- a tenant's numbers ---------------------------------------------------------------------


@router.get(
    "/numbers/available",
    tags=["numbers"],
    response_model=Page[AvailableNumberOut],
    responses=error_responses(401, 403, 422),
    summary="Numbers on sale",
)
async def list_available(
    scope: Reader,
    session: DbSession,
    page: PageParams,
    country: CountryFilter = None,
    number_type: TypeFilter = None,
) -> Page[AvailableNumberOut]:
    numbers, after = await service.list_available(
        session,
        country=country,
        number_type=number_type,
        after_id=page.after_id,
        limit=page.limit,
    )
    return page_of([AvailableNumberOut.model_validate(n) for n in numbers], after)


@router.post(
    "/numbers",
    tags=["numbers"],
    status_code=201,
    response_model=NumberOut,
    responses=error_responses(401, 403, 409, 422),
    summary="Buy an available number",
)
async def buy_number(
    body: NumberPurchase, scope: Admin, session: DbSession, response: Response
) -> NumberOut:
    number = await service.buy_number(session, scope, body.e164)
    set_etag(response, number.id, number.version)
    return NumberOut.model_validate(number)


@router.get(
    "/numbers",
    tags=["numbers"],
    response_model=Page[NumberOut],
    responses=error_responses(401, 403, 422),
)
async def list_numbers(
    scope: Reader,
    session: DbSession,
    page: PageParams,
    country: CountryFilter = None,
    number_type: TypeFilter = None,
    status: StatusFilter = None,
) -> Page[NumberOut]:
    numbers, after = await service.list_numbers(
        session,
        scope,
        country=country,
        number_type=number_type,
        status=status,
        after_id=page.after_id,
        limit=page.limit,
    )
    return page_of([NumberOut.model_validate(n) for n in numbers], after)


@router.get(
    "/numbers/{number_id}",
    tags=["numbers"],
    response_model=NumberOut,
    responses=error_responses(401, 403, 404),
)
async def get_number(
    number_id: NumberId, scope: Reader, session: DbSession, response: Response
) -> NumberOut:
    number = await service.get_number(session, scope, number_id)
    set_etag(response, number.id, number.version)
    return NumberOut.model_validate(number)


@router.post(
    "/numbers/{number_id}/release",
    tags=["numbers"],
    response_model=NumberOut,
    responses=error_responses(401, 403, 404, 409, 412, 422),
    summary="Give a number back, or keep it for a port-out",
)
async def release_number(
    number_id: NumberId,
    body: NumberRelease,
    scope: Admin,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> NumberOut:
    number = await service.release_number(
        session,
        scope,
        number_id,
        port_out=body.port_out,
        expected=expected_version(if_match, number_id),
    )
    set_etag(response, number.id, number.version)
    return NumberOut.model_validate(number)
