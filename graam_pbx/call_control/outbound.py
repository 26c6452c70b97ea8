"""Whether a tenant may call a number out now, known before anything reaches Asterisk.

The same rules as the tenant's outbound dialplan (``dialplans/tenant_outbound.conf.j2``, its
patterns from ``graam_pbx.asterisk.render.outbound_patterns``): a suspended tenant's calls are
refused; a number is reached when one of the tenant's outbound routes allows its country's
calling code (a route whose trunk is enabled and whose caller ID number the tenant holds);
``+1`` numbers only in the North American form the dialplan matches (``_+1NXXNXXXXXX``).
What the dialplan would refuse with an announcement is refused here with the reason.
"""

from __future__ import annotations

import re

import phonenumbers
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.errors import Conflict, Invalid, NotFound
from graam_pbx.numbers.models import PhoneNumber
from graam_pbx.routing.models import OutboundRoute, Trunk
from graam_pbx.tenants.models import Tenant, TenantStatus

_NANP = re.compile(r"^\+1[2-9][0-9]{2}[2-9][0-9]{6}$")


class TenantRefused(Conflict):
    """The tenant's outbound calls are refused (suspended, or its service ended)."""

    error_id = "tenant-calls-refused"


async def check_tenant_calls(session: AsyncSession, tenant_id: int) -> None:
    """409 ``tenant-calls-refused`` (``details.reason``: the tenant's status) unless the
    tenant may call out."""
    status = await session.scalar(select(Tenant.status).where(Tenant.id == tenant_id))
    if status is None:
        raise NotFound(f"no tenant {tenant_id}")
    if status == TenantStatus.SUSPENDED.value:
        raise TenantRefused(
            "the tenant is suspended: its outbound calls are refused until it is reactivated",
            reason=status,
        )
    if status == TenantStatus.TERMINATED.value:
        raise TenantRefused("the tenant's service has ended", reason=status)


async def allowed_calling_codes(session: AsyncSession, tenant_id: int) -> set[int]:
    """The country calling codes the tenant's outbound routes reach, as the dialplan's
    patterns do."""
    rows = await session.scalars(
        select(OutboundRoute.allowed_countries)
        .join(Trunk, Trunk.id == OutboundRoute.trunk_id)
        .join(PhoneNumber, PhoneNumber.id == OutboundRoute.caller_id_number_id)
        .where(
            OutboundRoute.tenant_id == tenant_id,
            Trunk.enabled.is_(True),
            PhoneNumber.tenant_id == tenant_id,
        )
    )
    return {
        code
        for countries in rows
        for country in countries
        if (code := phonenumbers.country_code_for_region(country))
    }


def reached(number: str, codes: set[int]) -> bool:
    """Whether the dialplan's patterns for ``codes`` match ``number`` (E.164)."""
    try:
        code = int(phonenumbers.parse(number).country_code or 0)
    except phonenumbers.NumberParseException:
        return False
    if code not in codes:
        return False
    return code != 1 or bool(_NANP.match(number))


async def check_reachable(session: AsyncSession, tenant_id: int, number: str, field: str) -> None:
    """422 on ``field`` unless one of the tenant's outbound routes reaches ``number``."""
    if not reached(number, await allowed_calling_codes(session, tenant_id)):
        raise Invalid(field, f"no outbound route of the tenant reaches {number}")
