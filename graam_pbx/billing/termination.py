"""Termination: a client's notice, its withdrawal, and the end of service after the last day.

The contract: termination takes effect 30 days after notice or later
(``periods.TERMINATION_NOTICE_DAYS``) and any started month is due: the account's
``terminates_on`` cuts the last billing period (``periods.period_of_month``), which invoicing
bills with the full monthly prices. While the notice runs the tenant is ``terminating``
(service unchanged); the day after its last day ``finish_terminations`` makes it
``terminated`` (no login, no configuration in Asterisk, no licences) and gives its numbers
back to the catalogue, but for those a port-out is pending for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit import service as audit
from graam_pbx.audit.models import AuditEntry
from graam_pbx.auth.principal import Scope
from graam_pbx.billing.models import BillingAccount, PortOutRequest
from graam_pbx.billing.periods import TERMINATION_NOTICE_DAYS
from graam_pbx.errors import GraamError, Invalid, NotFound
from graam_pbx.numbers import service as numbers_service
from graam_pbx.numbers.models import NumberStatus, PhoneNumber
from graam_pbx.settings import Settings
from graam_pbx.tenants.models import Tenant, TenantStatus

log = logging.getLogger(__name__)

# Port-out requests still under way: their number stays with the tenant until it leaves.
PENDING_PORT_OUT = ("requested", "accepted")


class NoBillingAccount(GraamError):
    """Termination is a contract's: a tenant without a billing account has none to end."""

    status_code = 409
    error_id = "no-billing-account"


class NoticeAlreadyGiven(GraamError):
    """A notice runs already: withdraw it before giving another."""

    status_code = 409
    error_id = "notice-already-given"


class NoticeTooLate(GraamError):
    """The notice can no longer be withdrawn (its last day has come), or the tenant is gone."""

    status_code = 409
    error_id = "termination-final"


@dataclass(frozen=True)
class Termination:
    """A tenant's termination as the API shows it."""

    tenant_id: int
    status: str
    notice_given_on: date | None
    terminates_on: date | None
    earliest_last_day: date


def billing_today(settings: Settings, now: datetime) -> date:
    """The day ``now`` falls on, on the billing clock."""
    return now.astimezone(ZoneInfo(settings.billing_timezone)).date()


def earliest_last_day(today: date) -> date:
    """The first last day of service a notice given ``today`` may name (contract: 30 days)."""
    return today + timedelta(days=TERMINATION_NOTICE_DAYS)


async def _locked(session: AsyncSession, tenant_id: int) -> tuple[BillingAccount | None, Tenant]:
    # The account's row first, as dunning does: one order of locks, no deadlock between them.
    account: BillingAccount | None = await session.scalar(
        select(BillingAccount).where(BillingAccount.tenant_id == tenant_id).with_for_update()
    )
    tenant = await session.get(Tenant, tenant_id, with_for_update=True)
    if tenant is None:
        raise NotFound(f"no tenant {tenant_id}")
    return account, tenant


def _view(tenant: Tenant, account: BillingAccount | None, today: date) -> Termination:
    return Termination(
        tenant_id=tenant.id,
        status=tenant.status,
        notice_given_on=account.notice_given_on if account else None,
        terminates_on=account.terminates_on if account else None,
        earliest_last_day=earliest_last_day(today),
    )


async def get_termination(session: AsyncSession, scope: Scope, today: date) -> Termination:
    """The tenant's notice if one runs, its status, and the earliest last day it may name."""
    tenant = await session.get(Tenant, scope.tenant_id)
    if tenant is None:
        raise NotFound(f"no tenant {scope.tenant_id}")
    account = await session.get(BillingAccount, scope.tenant_id)
    return _view(tenant, account, today)


async def give_notice(
    session: AsyncSession, scope: Scope, last_day: date, today: date
) -> Termination:
    """Record the tenant's notice ending the service after ``last_day`` (30 days or more
    from ``today``); the tenant becomes ``terminating``. Audited."""
    account, tenant = await _locked(session, scope.tenant_id)
    if account is None:
        raise NoBillingAccount(f"tenant {tenant.id} has no billing account")
    if tenant.status == TenantStatus.TERMINATED.value:
        raise NoticeTooLate(f"tenant {tenant.id} is terminated")
    if account.terminates_on is not None:
        raise NoticeAlreadyGiven(
            f"notice already given: the last day is {account.terminates_on.isoformat()}",
            terminates_on=account.terminates_on.isoformat(),
        )
    earliest = earliest_last_day(today)
    if last_day < earliest:
        raise Invalid(
            "body.last_day",
            f"at least {TERMINATION_NOTICE_DAYS} days after today: {earliest.isoformat()} or later",
        )
    account.notice_given_on = today
    account.terminates_on = last_day
    tenant.ends_on = last_day
    # A tenant suspended (for payment or by hand) stays suspended until its last day: the
    # notice must not lift a suspension. Only an active tenant shows it is terminating.
    if tenant.status == TenantStatus.ACTIVE.value:
        tenant.status = TenantStatus.TERMINATING.value
    await session.flush()
    await audit.record(
        session,
        scope,
        "give-notice",
        "billing_account",
        tenant.id,
        {
            "notice_given_on": today.isoformat(),
            "terminates_on": last_day.isoformat(),
            "status": tenant.status,
        },
    )
    return _view(tenant, account, today)


async def withdraw_notice(session: AsyncSession, scope: Scope, today: date) -> Termination:
    """Withdraw the tenant's notice before its last day: the tenant is active again. Audited."""
    account, tenant = await _locked(session, scope.tenant_id)
    if account is None or account.terminates_on is None:
        raise NotFound(f"tenant {tenant.id} has given no notice")
    if tenant.status == TenantStatus.TERMINATED.value or today >= account.terminates_on:
        raise NoticeTooLate(
            f"the notice can be withdrawn only before its last day "
            f"({account.terminates_on.isoformat()})"
        )
    withdrawn = account.terminates_on
    account.notice_given_on = None
    account.terminates_on = None
    tenant.ends_on = None
    if tenant.status == TenantStatus.TERMINATING.value:
        tenant.status = TenantStatus.ACTIVE.value
    await session.flush()
    await audit.record(
        session,
        scope,
        "withdraw-notice",
        "billing_account",
        tenant.id,
        {"terminates_on": withdrawn.isoformat(), "status": tenant.status},
    )
    return _view(tenant, account, today)


def _system_audit(
    session: AsyncSession,
    tenant_id: int,
    action: str,
    object_type: str,
    object_id: int,
    changes: dict[str, Any],
) -> None:
    session.add(
        AuditEntry(
            tenant_id=tenant_id,
            actor_role="system",
            actor_label="billing-termination",
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            changes=changes,
        )
    )


async def release_numbers(
    session: AsyncSession, tenant_id: int, now: datetime, *, note_kept: bool
) -> list[str]:
    """Give a terminated tenant's numbers back to the catalogue, in the caller's transaction.

    A number a port-out is pending for stays held until the port-out ends; one still used by
    one of the tenant's routes stays too (the route holds it: routes name one number each)
    until the operator deletes the route (``note_kept``: audit those kept, once). Returns the
    E.164s released.
    """
    pending = set(
        await session.scalars(
            select(PortOutRequest.phone_number_id).where(
                PortOutRequest.tenant_id == tenant_id,
                PortOutRequest.state.in_(PENDING_PORT_OUT),
            )
        )
    )
    numbers = (
        await session.scalars(
            select(PhoneNumber)
            .where(PhoneNumber.tenant_id == tenant_id)
            .order_by(PhoneNumber.id)
            .with_for_update()
        )
    ).all()
    released: list[str] = []
    for number in numbers:
        if number.id in pending:
            continue
        users = await numbers_service.users_of(session, tenant_id, number.id)
        if users:
            if note_kept:
                _system_audit(
                    session,
                    tenant_id,
                    "keep-number",
                    "phone_number",
                    number.id,
                    {"e164": number.e164, "used_by": users},
                )
            continue
        # Through the ORM: the billing_holdings trigger closes the tenant's holding.
        number.status = NumberStatus.AVAILABLE.value
        number.tenant_id = None
        number.assigned_at = None
        number.released_at = now
        released.append(number.e164)
        _system_audit(
            session,
            tenant_id,
            "release",
            "phone_number",
            number.id,
            {"e164": number.e164, "reason": "terminated"},
        )
    await session.flush()
    return released


async def finish_tenant(session: AsyncSession, tenant_id: int, today: date, now: datetime) -> bool:
    """Terminate one tenant whose last day is before ``today`` (or release what a terminated
    tenant still holds); in the caller's transaction. True when it became terminated now."""
    account, tenant = await _locked(session, tenant_id)
    if account is None or account.terminates_on is None or account.terminates_on >= today:
        return False
    terminated_now = tenant.status != TenantStatus.TERMINATED.value
    if terminated_now:
        before = tenant.status
        # Through the ORM: the config applier removes the tenant's configuration on commit.
        tenant.status = TenantStatus.TERMINATED.value
        tenant.ends_on = account.terminates_on
        await session.flush()
        _system_audit(
            session,
            tenant_id,
            "terminate",
            "tenant",
            tenant_id,
            {
                "status": {"from": before, "to": TenantStatus.TERMINATED.value},
                "terminates_on": account.terminates_on.isoformat(),
            },
        )
    await release_numbers(session, tenant_id, now, note_kept=terminated_now)
    return terminated_now


async def finish_terminations(
    session_factory: async_sessionmaker[AsyncSession], settings: Settings, now: datetime
) -> int:
    """The scheduler's pass: terminate each tenant whose last day has passed, and give back
    the numbers terminated tenants still hold that nothing keeps now. Returns how many
    tenants it terminated. Idempotent: one transaction per tenant, under its rows' locks."""
    today = billing_today(settings, now)
    async with session_factory() as session:
        due = list(
            await session.scalars(
                select(BillingAccount.tenant_id)
                .join(Tenant, Tenant.id == BillingAccount.tenant_id)
                .where(
                    BillingAccount.terminates_on < today,
                    or_(
                        Tenant.status != TenantStatus.TERMINATED.value,
                        # A terminated tenant's numbers a port-out or a route kept.
                        select(PhoneNumber.id).where(PhoneNumber.tenant_id == Tenant.id).exists(),
                    ),
                )
                .order_by(BillingAccount.tenant_id)
            )
        )
    terminated = 0
    for tenant_id in due:
        async with session_factory() as session, session.begin():
            if await finish_tenant(session, tenant_id, today, now):
                terminated += 1
                log.info("tenant terminated tenant=%d", tenant_id)
    return terminated
