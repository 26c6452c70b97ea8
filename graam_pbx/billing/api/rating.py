"""Billing API: rating runs and the report of calls no rate matched (operators only)."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request

from graam_pbx.audit import service as audit
from graam_pbx.billing import rating
from graam_pbx.billing.schemas.rating import (
    FIRST_MONTH,
    LAST_MONTH,
    RatingReportOut,
    RatingRunCreate,
    UnratedCallOut,
)
from graam_pbx.deps import DbSession, Operator
from graam_pbx.errors import Invalid, NotFound
from graam_pbx.rest import Page, PageParams, error_responses, page_of
from graam_pbx.tenants.models import Tenant

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])


def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.runtime.settings.billing_timezone)


@router.get(
    "/unrated-calls",
    response_model=Page[UnratedCallOut],
    responses=error_responses(401, 403, 422),
    summary="Calls of a month no rate matched (operators)",
    description="Billable outbound calls stored without a price (no prefix of the deck in "
    "force matched their number, origin and type), oldest CDR first. Rate them by correcting "
    "the deck, then POST /api/v1/billing/rating-runs.",
)
async def list_unrated_calls(
    session: DbSession,
    principal: Operator,
    page: PageParams,
    month: Annotated[date, Query(description="The billing month, as its first day (YYYY-MM-01).")],
) -> Page[UnratedCallOut]:
    if month.day != 1 or not FIRST_MONTH <= month <= LAST_MONTH:
        raise Invalid("query.month", "a billing month's first day (YYYY-MM-01), 2000 to 2999")
    rows, after = await rating.unrated_calls(session, principal, month, page.after_id, page.limit)
    return page_of(
        [
            UnratedCallOut(
                cdr_id=row.cdr_id,
                tenant_id=row.tenant_id,
                to_number=row.to_number,
                origin=row.origin_country,
                destination_country=row.destination_country,
                type=row.number_type,
                started_at=row.started_at,
                billsec=row.billsec,
                billed_seconds=row.billed_seconds,
            )
            for row in rows
        ],
        after,
    )


@router.post(
    "/rating-runs",
    response_model=RatingReportOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Rate a month now (operators)",
    description="Rates every billable outbound call of the month (all tenants, or one): new "
    "calls are stored, calls not yet invoiced are priced again at the deck in force when they "
    "started (after a deck correction), invoiced calls never change. Answers how many calls "
    "got a price and how many no rate matched.",
)
async def run_rating(
    body: RatingRunCreate, session: DbSession, principal: Operator, request: Request
) -> RatingReportOut:
    if body.tenant_id is not None and await session.get(Tenant, body.tenant_id) is None:
        raise NotFound(f"no tenant {body.tenant_id}")
    report = await rating.rate_period(
        session, month=body.month, zone=_zone(request), tenant_id=body.tenant_id
    )
    await audit.record(
        session,
        principal,
        "billing.rating_run",
        "billing_month",
        body.month.isoformat(),
        {"tenant_id": body.tenant_id, "rated": report.rated, "unrated": report.unrated},
    )
    return RatingReportOut(
        month=body.month, tenant_id=body.tenant_id, rated=report.rated, unrated=report.unrated
    )
