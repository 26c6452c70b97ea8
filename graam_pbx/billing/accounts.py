"""Billing accounts: who a tenant is on its invoices, how it is taxed, when it subscribed.

A tenant's admin keeps its own account; the operator alone sets the subscription day (the
first billing period starts on it) and the grace before suspension for non-payment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit_service
from graam_pbx.auth.principal import Principal, Role
from graam_pbx.billing.models import BillingAccount
from graam_pbx.db import ensure_version
from graam_pbx.errors import Forbidden, Invalid, NotFound, PreconditionFailed
from graam_pbx.tenants.models import Tenant

# The European Union's member states (ISO 3166), France included.
EU_COUNTRIES: Final = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
        "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
    }
)  # fmt: skip
# VAT numbers start with the country's ISO code, except Greece's (EL).
VAT_PREFIX: Final = {country: ("EL" if country == "GR" else country) for country in EU_COUNTRIES}
_FR_VAT: Final = re.compile(r"^FR([0-9]{2})([0-9]{9})$")
_EU_VAT: Final = re.compile(r"^([A-Z]{2})([0-9A-Z+*]{2,12})$")
DEFAULT_GRACE_DAYS: Final = 15
LA_POSTE_SIREN: Final = "356000000"  # the one SIREN that fails Luhn's check


def siren_problem(siren: str) -> str | None:
    """Why ``siren`` is no SIREN (9 digits passing Luhn's check), or None."""
    if not re.fullmatch(r"[0-9]{9}", siren):
        return "a SIREN is 9 digits"
    if siren == LA_POSTE_SIREN:
        return None
    total = 0
    for index, char in enumerate(reversed(siren)):
        digit = int(char) * (2 if index % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return None if total % 10 == 0 else "not a SIREN (its check digit is wrong)"


def french_vat_key(siren: str) -> int:
    """The two check digits of a French VAT number: (12 + 3 * (SIREN mod 97)) mod 97."""
    return (12 + 3 * (int(siren) % 97)) % 97


def vat_problem(vat: str) -> str | None:
    """Why ``vat`` is not a French (FR, key, SIREN) or other EU VAT number, or None."""
    french = _FR_VAT.match(vat)
    if vat.startswith("FR"):
        if french is None:
            return "a French VAT number is FR, 2 check digits and the 9-digit SIREN"
        if int(french.group(1)) != french_vat_key(french.group(2)):
            return "not a French VAT number (its check digits do not match the SIREN)"
        return None
    other = _EU_VAT.match(vat)
    if other is None or other.group(1) not in VAT_PREFIX.values():
        return "must start with an EU country's VAT prefix (FR, DE, EL, …) then 2 to 12 characters"
    return None


@dataclass(frozen=True)
class AccountInput:
    """An account as a client writes it (validated formats); None: not given."""

    legal_name: str
    address: str
    country: str
    siren: str | None
    vat_number: str | None
    tax_status: str
    billing_email: str
    locale: str
    subscribed_on: date | None = None
    grace_days: int | None = None


def consistency_problems(data: AccountInput) -> list[tuple[str, str]]:
    """Where the tax status, country, SIREN and VAT number contradict one another."""
    problems: list[tuple[str, str]] = []
    if data.siren is not None and data.country != "FR":
        problems.append(("body.siren", "a SIREN is for a company registered in France"))
    if data.tax_status == "fr":
        if data.country != "FR":
            problems.append(("body.country", "tax status fr is for a client in France"))
        if data.vat_number is not None:
            if not data.vat_number.startswith("FR"):
                problems.append(("body.vat_number", "a client in France has a French VAT number"))
            elif data.siren is not None and data.vat_number[4:] != data.siren:
                problems.append(("body.vat_number", "its SIREN is not the account's SIREN"))
    elif data.tax_status == "eu_business":
        if data.country not in EU_COUNTRIES or data.country == "FR":
            problems.append(
                ("body.country", "tax status eu_business is for an EU country other than France")
            )
        if data.vat_number is None:
            problems.append(
                ("body.vat_number", "an EU business customer's VAT number is required "
                 "(the reverse charge mention names it)")
            )  # fmt: skip
        elif data.country in VAT_PREFIX and not data.vat_number.startswith(
            VAT_PREFIX[data.country]
        ):
            problems.append(
                ("body.vat_number", f"a VAT number of {data.country} starts with "
                 f"{VAT_PREFIX[data.country]}")
            )  # fmt: skip
    elif data.tax_status == "outside_eu":
        if data.country in EU_COUNTRIES:
            problems.append(("body.country", "tax status outside_eu is for a non-EU country"))
        if data.vat_number is not None:
            problems.append(("body.vat_number", "an EU VAT number is for a client in the EU"))
    return problems


async def get_account(session: AsyncSession, tenant_id: int) -> BillingAccount | None:
    """A tenant's billing account, or None when none was written yet."""
    return await session.get(BillingAccount, tenant_id)


def _may_read(principal: Principal, tenant_id: int) -> None:
    if principal.is_operator:
        return
    if principal.tenant_id != tenant_id:
        raise NotFound(f"no billing account of tenant {tenant_id}")
    if principal.role is not Role.ADMIN:
        raise Forbidden(f"a {principal.role} may not read the billing account")


async def read_account(
    session: AsyncSession, principal: Principal, tenant_id: int
) -> BillingAccount:
    """A tenant's account (its admin, the operator), or NotFound."""
    _may_read(principal, tenant_id)
    account = await get_account(session, tenant_id)
    if account is None:
        raise NotFound(f"tenant {tenant_id} has no billing account yet")
    return account


async def write_account(
    session: AsyncSession,
    principal: Principal,
    tenant_id: int,
    data: AccountInput,
    expected_version: int | None,
    *,
    zone: ZoneInfo,
) -> tuple[BillingAccount, bool]:
    """Create or replace a tenant's account (its admin, the operator); True when created.

    The subscription day and the grace days are the operator's: a tenant's admin may resend
    them unchanged (or leave them out), never change them.
    """
    _may_read(principal, tenant_id)
    # The account's row first, then the tenant's, as dunning, payments and termination take
    # them: one order of locks, so a write never deadlocks with a dunning pass.
    account = await session.get(BillingAccount, tenant_id, with_for_update=True)
    tenant = await session.get(Tenant, tenant_id, with_for_update=True)
    if tenant is None:
        raise NotFound(f"no tenant {tenant_id}")
    problems = consistency_problems(data)
    if problems:
        field, reason = problems[0]
        raise Invalid(field, reason)
    if account is None:
        # Made meanwhile by a concurrent first write: the tenant's row lock waited for it.
        account = await session.get(BillingAccount, tenant_id, with_for_update=True)
    if account is None and expected_version is not None:
        raise PreconditionFailed("the account does not exist yet", current_version=None)
    if account is not None:
        ensure_version(account, expected_version)
    if not principal.is_operator:
        current_day = account.subscribed_on if account else None
        current_grace = account.grace_days if account else None
        if data.subscribed_on is not None and data.subscribed_on != current_day:
            raise Forbidden(
                "only the operator sets the subscription day", field="body.subscribed_on"
            )
        if data.grace_days is not None and data.grace_days != current_grace:
            raise Forbidden("only the operator sets the grace days", field="body.grace_days")
    before = _fields(account) if account is not None else {}
    created = account is None
    if account is None:
        # Without the operator's date, the subscription started when the tenant was created.
        account = BillingAccount(
            tenant_id=tenant_id,
            subscribed_on=data.subscribed_on or tenant.created_at.astimezone(zone).date(),
            grace_days=DEFAULT_GRACE_DAYS if data.grace_days is None else data.grace_days,
        )
        session.add(account)
    else:
        if data.subscribed_on is not None:
            account.subscribed_on = data.subscribed_on
        if data.grace_days is not None:
            account.grace_days = data.grace_days
    account.legal_name = data.legal_name
    account.address = data.address
    account.country = data.country
    account.siren = data.siren
    account.vat_number = data.vat_number
    account.tax_status = data.tax_status
    account.billing_email = data.billing_email
    account.locale = data.locale
    await session.flush()
    after = _fields(account)
    changes = {key: value for key, value in after.items() if before.get(key) != value}
    await audit_service.record(
        session,
        principal,
        "create" if created else "update",
        "billing_account",
        tenant_id,
        changes,
        tenant_id=tenant_id,
    )
    return account, created


def _fields(account: BillingAccount) -> dict[str, object]:
    return {
        "legal_name": account.legal_name,
        "address": account.address,
        "country": account.country,
        "siren": account.siren,
        "vat_number": account.vat_number,
        "tax_status": account.tax_status,
        "billing_email": account.billing_email,
        "locale": account.locale,
        "subscribed_on": account.subscribed_on.isoformat(),
        "grace_days": account.grace_days,
    }
