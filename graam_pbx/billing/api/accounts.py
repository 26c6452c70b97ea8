"""Billing API: a tenant's billing account (its admin; operators name the tenant)."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response

from graam_pbx.auth.principal import Principal
from graam_pbx.billing import accounts as service
from graam_pbx.billing.models import BillingAccount
from graam_pbx.billing.schemas.accounts import AccountOut, AccountWrite
from graam_pbx.deps import Caller, DbSession
from graam_pbx.errors import Invalid, NotFound
from graam_pbx.rest import IfMatch, error_responses, expected_version, id_query, set_etag

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])

TenantQuery = Annotated[int | None, id_query("Operators: the tenant whose account it is")]


def _tenant_of(principal: Principal, tenant_id: int | None) -> int:
    if principal.is_operator:
        if tenant_id is None:
            raise Invalid("query.tenant_id", "operators name the tenant")
        return tenant_id
    if principal.tenant_id is None or (tenant_id is not None and tenant_id != principal.tenant_id):
        raise NotFound(f"no billing account of tenant {tenant_id}")
    return principal.tenant_id


def account_out(account: BillingAccount, response: Response) -> AccountOut:
    set_etag(response, account.tenant_id, account.version)
    return AccountOut.model_validate(account)


@router.get(
    "/account",
    response_model=AccountOut,
    responses=error_responses(401, 403, 404, 422),
    summary="The tenant's billing account (its admin; operators with ?tenant_id=)",
)
async def get_account(
    principal: Caller, session: DbSession, response: Response, tenant_id: TenantQuery = None
) -> AccountOut:
    tenant = _tenant_of(principal, tenant_id)
    return account_out(await service.read_account(session, principal, tenant), response)


@router.put(
    "/account",
    response_model=AccountOut,
    responses={
        201: {"model": AccountOut, "description": "Created"},
        **error_responses(401, 403, 404, 412, 422),
    },
    summary="Write the tenant's billing account (its admin; operators with ?tenant_id=)",
    description="Creates it (201) or replaces it (200). subscribed_on and grace_days are the "
    "operator's: an admin may leave them out or resend them unchanged (else 403). If-Match "
    "takes the ETag of the version read (412 when it changed since).",
)
async def put_account(
    body: AccountWrite,
    request: Request,
    principal: Caller,
    session: DbSession,
    response: Response,
    tenant_id: TenantQuery = None,
    if_match: IfMatch = None,
) -> AccountOut:
    tenant = _tenant_of(principal, tenant_id)
    account, created = await service.write_account(
        session,
        principal,
        tenant,
        service.AccountInput(
            legal_name=body.legal_name,
            address=body.address,
            country=body.country,
            siren=body.siren,
            vat_number=body.vat_number,
            tax_status=body.tax_status,
            billing_email=body.billing_email,
            locale=body.locale,
            subscribed_on=body.subscribed_on,
            grace_days=body.grace_days,
        ),
        expected_version(if_match, tenant),
        zone=ZoneInfo(request.app.state.runtime.settings.billing_timezone),
    )
    if created:
        response.status_code = 201
    return account_out(account, response)
