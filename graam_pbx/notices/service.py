"""Notices of changes to the service: the operator publishes, each concerned tenant reads.

The contract: a change is announced at least one month before it takes effect. A notice is
shown to the users of every tenant it concerns from its publication until
``SHOWN_AFTER_EFFECT`` after its effective date (so a client back from holiday still sees
what changed).
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit_service
from graam_pbx.auth.principal import Principal
from graam_pbx.db import keyset_page
from graam_pbx.errors import Forbidden, Invalid, NotFound
from graam_pbx.notices.models import Notice
from graam_pbx.notices.schemas import NoticeCreate
from graam_pbx.tenants.models import Tenant

SHOWN_AFTER_EFFECT = timedelta(days=30)


def one_month_after(day: date) -> date:
    """The same day of the next month (its last day when shorter): the notice period's end."""
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def earliest_effective_date(now: datetime | None = None) -> date:
    """The first effective date a notice published ``now`` may have (UTC days)."""
    return one_month_after((now or datetime.now(UTC)).astimezone(UTC).date())


def shown_until(notice: Notice) -> date:
    return notice.effective_on + SHOWN_AFTER_EFFECT


async def publish(
    session: AsyncSession, principal: Principal, data: NoticeCreate, *, now: datetime | None = None
) -> Notice:
    """Publish a notice now (operators), refused when it takes effect in less than a month."""
    if not principal.is_operator:
        raise Forbidden("only operators publish notices")
    earliest = earliest_effective_date(now)
    if data.effective_on < earliest:
        raise Invalid(
            "body.effective_on",
            f"must be at least one month after publication: {earliest.isoformat()} or later",
        )
    tenant_ids = sorted(set(data.tenant_ids)) if data.tenant_ids is not None else None
    if tenant_ids:
        known = set(
            (await session.scalars(select(Tenant.id).where(Tenant.id.in_(tenant_ids)))).all()
        )
        missing = [t for t in tenant_ids if t not in known]
        if missing:
            raise Invalid("body.tenant_ids", f"no tenant {missing[0]}")
    notice = Notice(
        title=data.title,
        body=data.body,
        effective_on=data.effective_on,
        tenant_ids=tenant_ids,
        published_by_user_id=principal.user_id,
        published_by=principal.label,
    )
    if now is not None:
        notice.published_at = now
    session.add(notice)
    await session.flush()
    await session.refresh(notice, ["published_at"])
    await audit_service.record(
        session,
        principal,
        "publish",
        "notice",
        notice.id,
        {
            "title": notice.title,
            "effective_on": notice.effective_on.isoformat(),
            "tenant_ids": tenant_ids,
        },
    )
    return notice


async def list_notices(
    session: AsyncSession, principal: Principal, *, after_id: int | None, limit: int
) -> tuple[list[Notice], int | None]:
    """Every notice ever published (operators), oldest first."""
    if not principal.is_operator:
        raise Forbidden("only operators list every notice")
    return await keyset_page(session, select(Notice), Notice.id, after_id, limit)


async def latest_notices(
    session: AsyncSession, principal: Principal, *, limit: int = 100
) -> list[Notice]:
    """The most recently published notices (operators), newest first."""
    if not principal.is_operator:
        raise Forbidden("only operators list every notice")
    rows = await session.scalars(select(Notice).order_by(Notice.id.desc()).limit(limit))
    return list(rows.all())


def is_current(notice: Notice, now: datetime | None = None) -> bool:
    """Whether its tenants' users are shown it now."""
    moment = now or datetime.now(UTC)
    return notice.published_at <= moment and moment.date() <= shown_until(notice)


def _current(tenant_id: int, now: datetime | None) -> list[ColumnElement[bool]]:
    moment = now or datetime.now(UTC)
    return [
        Notice.published_at <= (moment if now is not None else func.now()),
        Notice.effective_on >= moment.astimezone(UTC).date() - SHOWN_AFTER_EFFECT,
        or_(Notice.tenant_ids.is_(None), Notice.tenant_ids.contains([tenant_id])),
    ]


async def current_notices(
    session: AsyncSession, tenant_id: int, *, now: datetime | None = None
) -> list[Notice]:
    """The notices a tenant's users are shown now, the soonest effective first."""
    rows = await session.scalars(
        select(Notice).where(*_current(tenant_id, now)).order_by(Notice.effective_on, Notice.id)
    )
    return list(rows.all())


async def get_notice(session: AsyncSession, principal: Principal, notice_id: int) -> Notice:
    """A notice: operators any; a tenant's user one shown to its tenant now."""
    statement = select(Notice).where(Notice.id == notice_id)
    if not principal.is_operator:
        if principal.tenant_id is None:
            raise NotFound(f"no notice {notice_id}")
        statement = statement.where(*_current(principal.tenant_id, None))
    found = await session.scalar(statement)
    if found is None:
        raise NotFound(f"no notice {notice_id}")
    return found
