"""Support requests: filing, the conversation, the operator's queue; every query scoped here.

A tenant's admins and supervisors file and follow their own tenant's requests; operators
see every tenant's, answer and close them. Who is told by e-mail is decided here (a
``Notification``), but e-mails leave only after the commit (``notify.dispatch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import ColumnElement, Select, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.auth.models import User
from graam_pbx.auth.principal import Principal, Role, Scope
from graam_pbx.errors import Conflict, Forbidden, NotFound
from graam_pbx.support.models import SupportMessage, SupportRequest
from graam_pbx.support.notify import Notification
from graam_pbx.support.schemas import (
    ANSWER_WITHIN,
    Priority,
    Status,
    SupportRequestCreate,
)
from graam_pbx.tenants.models import Tenant

# Who may see a tenant's requests besides operators: the API's "Supervising" roles.
CLIENT_ROLES = (Role.ADMIN, Role.SUPERVISOR)

Selected = TypeVar("Selected")


@dataclass(frozen=True)
class Posted:
    """A request with the message just added to it, and who to tell once committed."""

    request: SupportRequest
    message: SupportMessage
    notification: Notification


def due_at(priority: Priority, created_at: datetime) -> datetime:
    """When the operator must have answered: filed plus the priority's delay (contract)."""
    return created_at + ANSWER_WITHIN[priority]


def is_overdue(request: SupportRequest, now: datetime | None = None) -> bool:
    """Not answered by the operator, not closed, and its due time has passed."""
    now = now or datetime.now(UTC)
    return (
        request.answered_at is None
        and request.status != Status.CLOSED.value
        and now > request.due_at
    )


def _ensure_reader(principal: Principal) -> None:
    if not principal.is_operator and principal.role not in CLIENT_ROLES:
        raise Forbidden(f"a {principal.role} may not see support requests")


async def file_request(
    session: AsyncSession, scope: Scope, data: SupportRequestCreate, *, now: datetime | None = None
) -> Posted:
    """A new request of the scope's tenant, due by its priority's delay; the operator is told."""
    if scope.principal.is_operator:
        raise Forbidden("clients file support requests; operators answer them")
    _ensure_reader(scope.principal)
    created = now or datetime.now(UTC)
    # The user's address, never the caller's label: an API key's label is its name.
    requester_email = await session.scalar(
        select(User.email).where(User.id == scope.principal.user_id)
    )
    request = SupportRequest(
        tenant_id=scope.tenant_id,
        requester_user_id=scope.principal.user_id,
        requester_email=requester_email,
        subject=data.subject,
        priority=data.priority.value,
        status=Status.OPEN.value,
        created_at=created,
        due_at=due_at(data.priority, created),
    )
    session.add(request)
    await session.flush()
    message = await _add(session, request, scope.principal, data.body, created)
    return Posted(request, message, await _notification(session, request, message, filed=True))


async def get_request(
    session: AsyncSession, principal: Principal, request_id: int
) -> SupportRequest:
    """The request, if the caller may see it: operators any, clients their tenant's only."""
    return await _found(session, principal, request_id)


def missing(request_id: int) -> NotFound:
    """The error for a request the caller may not see: for it, it does not exist."""
    return NotFound(f"no support request {request_id}")


async def tenant_names(session: AsyncSession, tenant_ids: list[int]) -> dict[int, str]:
    """The names of the tenants of some requests (the operator's queue shows them)."""
    if not tenant_ids:
        return {}
    rows = await session.execute(select(Tenant.id, Tenant.name).where(Tenant.id.in_(tenant_ids)))
    return {int(row.id): str(row.name) for row in rows}


async def conversation(session: AsyncSession, request: SupportRequest) -> list[SupportMessage]:
    """The request's messages, oldest first."""
    rows = await session.scalars(
        select(SupportMessage)
        .where(SupportMessage.request_id == request.id)
        .order_by(SupportMessage.created_at, SupportMessage.id)
    )
    return list(rows.all())


async def list_requests(
    session: AsyncSession,
    principal: Principal,
    *,
    tenant_id: int | None = None,
    status: Status | None = None,
    offset: int = 0,
    limit: int = 50,
    now: datetime | None = None,
) -> tuple[list[SupportRequest], bool]:
    """Requests the caller may see, overdue first, then by due time; and whether more follow.

    Operators see every tenant's (``tenant_id`` narrows it); a client only its own tenant's.
    """
    statement = _seen_by(principal, select(SupportRequest))
    if tenant_id is not None and principal.is_operator:  # a client: its own, whatever named
        statement = statement.where(SupportRequest.tenant_id == tenant_id)
    if status is not None:
        statement = statement.where(SupportRequest.status == status.value)
    statement = statement.order_by(
        case((_overdue(now or datetime.now(UTC)), 0), else_=1),
        case((SupportRequest.status == Status.CLOSED.value, 1), else_=0),
        SupportRequest.due_at,
        SupportRequest.id,
    )
    rows = list((await session.scalars(statement.offset(offset).limit(limit + 1))).all())
    return rows[:limit], len(rows) > limit


async def count_overdue(session: AsyncSession, principal: Principal) -> int:
    """How many requests the caller may see are overdue now."""
    statement = _seen_by(principal, select(func.count()).where(_overdue(func.now())))
    return int(await session.scalar(statement) or 0)


async def add_message(
    session: AsyncSession,
    principal: Principal,
    request_id: int,
    body: str,
    *,
    now: datetime | None = None,
) -> Posted:
    """A message in the conversation: the operator's answers the request (the requester is
    told), the client's puts it back in the operator's hands (the operator is told)."""
    # The row is locked so that two answers at once set answered_at once.
    request = await _found(session, principal, request_id, lock=True)
    if request.status == Status.CLOSED.value:
        raise Conflict(f"support request {request_id} is closed")
    written = now or datetime.now(UTC)
    if principal.is_operator:
        request.status = Status.ANSWERED.value
        if request.answered_at is None:
            request.answered_at = written
    else:
        request.status = Status.OPEN.value
    message = await _add(session, request, principal, body, written)
    return Posted(request, message, await _notification(session, request, message, filed=False))


async def close_request(
    session: AsyncSession, principal: Principal, request_id: int, *, now: datetime | None = None
) -> SupportRequest:
    """The operator closes a request (closing twice changes nothing)."""
    request = await _found(session, principal, request_id, lock=True)  # another's: NotFound
    if not principal.is_operator:
        raise Forbidden("only the operator closes support requests")
    if request.status != Status.CLOSED.value:
        request.status = Status.CLOSED.value
        request.closed_at = now or datetime.now(UTC)
        await session.flush()
    return request


async def _found(
    session: AsyncSession, principal: Principal, request_id: int, *, lock: bool = False
) -> SupportRequest:
    statement = _seen_by(principal, select(SupportRequest).where(SupportRequest.id == request_id))
    found = await session.scalar(statement.with_for_update() if lock else statement)
    if found is None:
        raise missing(request_id)
    return found


def _seen_by(principal: Principal, statement: Select[Selected]) -> Select[Selected]:
    # The one rule of whose requests a caller sees: operators every tenant's, clients their own.
    _ensure_reader(principal)
    if principal.is_operator:
        return statement
    return statement.where(SupportRequest.tenant_id == principal.tenant_id)


def _overdue(now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    # ``is_overdue`` in SQL.
    return and_(
        SupportRequest.answered_at.is_(None),
        SupportRequest.status != Status.CLOSED.value,
        SupportRequest.due_at < now,
    )


async def _add(
    session: AsyncSession,
    request: SupportRequest,
    principal: Principal,
    body: str,
    written: datetime,
) -> SupportMessage:
    message = SupportMessage(
        request_id=request.id,
        author_user_id=principal.user_id,
        author_label=principal.label,
        from_operator=principal.is_operator,
        body=body,
        created_at=written,
    )
    session.add(message)
    await session.flush()
    return message


async def _notification(
    session: AsyncSession, request: SupportRequest, message: SupportMessage, *, filed: bool
) -> Notification:
    tenant = await session.get(Tenant, request.tenant_id)
    return Notification(
        to_operator=not message.from_operator,
        filed=filed,
        requester_email=request.requester_email,
        tenant_name=tenant.name if tenant is not None else str(request.tenant_id),
        request_id=request.id,
        subject=request.subject,
        priority=request.priority,
        due_at=request.due_at,
        author=message.author_label,
        body=message.body,
    )
