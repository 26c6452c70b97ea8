"""Billing API: plans and monthly prices (operators write; a tenant's users read theirs)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from graam_pbx.billing import prices as service
from graam_pbx.billing.models import Price
from graam_pbx.billing.schemas.prices import PlanCreate, PlanOut, PriceCreate, PriceOut
from graam_pbx.deps import Caller, DbSession, Operator
from graam_pbx.errors import Forbidden
from graam_pbx.rest import Page, error_responses, page_of

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])


def price_out(price: Price) -> PriceOut:
    today = datetime.now(UTC).date()
    return PriceOut(
        id=price.id,
        item=price.item,
        plan_code=price.plan_code,
        country=price.country,
        number_type=price.number_type,
        amount=price.amount,
        currency=price.currency,
        effective_on=price.effective_on,
        published_at=price.published_at,
        notice_id=price.notice_id,
        in_force=price.effective_on <= today,
    )


@router.post(
    "/plans",
    status_code=201,
    response_model=PlanOut,
    responses=error_responses(401, 403, 409, 422),
    summary="Create a plan (operators)",
)
async def create_plan(body: PlanCreate, principal: Operator, session: DbSession) -> PlanOut:
    plan = await service.create_plan(session, principal, code=body.code, name=body.name)
    return PlanOut.model_validate(plan)


@router.get(
    "/plans",
    response_model=Page[PlanOut],
    responses=error_responses(401),
    summary="Every plan (one page)",
)
async def list_plans(principal: Caller, session: DbSession) -> Page[PlanOut]:
    del principal  # any authenticated caller: plans are what tenants subscribe to
    plans = await service.list_plans(session)
    return page_of([PlanOut.model_validate(plan) for plan in plans], None)


@router.post(
    "/prices",
    status_code=201,
    response_model=PriceOut,
    responses=error_responses(401, 403, 409, 422),
    summary="Publish a monthly price (operators)",
    description="effective_on at least one month after today (UTC), else 422 on "
    "body.effective_on; an item's very first price may take effect today. A notice goes to "
    "every tenant the price concerns (those on its plan; for numbers, those holding one of "
    "its country and type); none when no tenant is concerned.",
)
async def publish_price(body: PriceCreate, principal: Operator, session: DbSession) -> PriceOut:
    price = await service.publish_price(
        session,
        principal,
        service.PriceInput(
            item=body.item,
            plan_code=body.plan_code,
            country=body.country,
            number_type=body.number_type.value if body.number_type else None,
            amount=body.amount,
            currency=body.currency,
            effective_on=body.effective_on,
        ),
    )
    return price_out(price)


@router.get(
    "/prices",
    response_model=Page[PriceOut],
    responses=error_responses(401),
    summary="Monthly prices: every one (operators), those of the caller's tenant (its users)",
    description="A tenant's users see, for each item of their plan, the price in force today "
    "and every upcoming one; number prices only for countries and types the tenant holds.",
)
async def list_prices(principal: Caller, session: DbSession) -> Page[PriceOut]:
    if principal.is_operator:
        rows = await service.list_prices(session, principal)
    elif principal.tenant_id is None:
        raise Forbidden("no tenant")
    else:
        rows = await service.prices_for_tenant(session, principal.tenant_id)
    return page_of([price_out(row) for row in rows], None)
