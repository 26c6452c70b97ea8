"""Port-out requests: a client takes one of its numbers to another operator.

States: ``requested`` (the client asked) → ``accepted`` (the operator agreed with the new
operator) → ``completed`` (the number left); ``rejected`` by the operator from requested or
accepted; ``cancelled`` by the client (or the operator) while requested. At completion the
number is ``ported_out``: held by no one (the billing_holdings trigger closes the tenant's
holding; the month it was held is billed) and never sold again. A number one of the
tenant's routes still uses cannot leave: completion is refused (409, naming the routes), as
releasing such a number is, so no route ever points at a number the tenant no longer holds.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Principal, Role, Scope
from graam_pbx.billing.models import PortOutRequest
from graam_pbx.billing.termination import PENDING_PORT_OUT
from graam_pbx.db import keyset_page
from graam_pbx.errors import Conflict, Forbidden, GraamError, Invalid, NotFound
from graam_pbx.numbers import service as numbers_service
from graam_pbx.numbers.models import NumberStatus, PhoneNumber


class PortOutState(StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


# Where each state may go next; completed, rejected and cancelled are final.
TRANSITIONS: dict[PortOutState, frozenset[PortOutState]] = {
    PortOutState.REQUESTED: frozenset(
        {PortOutState.ACCEPTED, PortOutState.REJECTED, PortOutState.CANCELLED}
    ),
    PortOutState.ACCEPTED: frozenset({PortOutState.COMPLETED, PortOutState.REJECTED}),
    PortOutState.COMPLETED: frozenset(),
    PortOutState.REJECTED: frozenset(),
    PortOutState.CANCELLED: frozenset(),
}
# What a tenant's admin may do to its own request; every other move is the operator's.
CLIENT_MOVES = frozenset({PortOutState.CANCELLED})


class PortOutPending(GraamError):
    """A port-out of that number is already under way."""

    status_code = 409
    error_id = "port-out-pending"


class PortOutStateConflict(GraamError):
    """The request's state does not allow that move."""

    status_code = 409
    error_id = "port-out-state"


class NumberInUse(GraamError):
    """The number still routes calls: it cannot leave before the routes are changed."""

    status_code = 409
    error_id = "number-in-use"


def can_move(current: PortOutState, target: PortOutState) -> bool:
    """Whether a request in ``current`` may go to ``target``."""
    return target in TRANSITIONS[current]


async def request_port_out(
    session: AsyncSession, scope: Scope, number_id: int, now: datetime
) -> PortOutRequest:
    """The tenant asks to take its number ``number_id`` to another operator. Audited."""
    # The number's row lock serialises two requests for it (the unique index backs it up).
    number: PhoneNumber | None = await session.scalar(
        select(PhoneNumber)
        .where(PhoneNumber.id == number_id, PhoneNumber.tenant_id == scope.tenant_id)
        .with_for_update()
    )
    if number is None:
        raise Invalid("body.number_id", "not one of the tenant's numbers")
    pending = await session.scalar(
        select(PortOutRequest.id).where(
            PortOutRequest.phone_number_id == number.id,
            PortOutRequest.state.in_(PENDING_PORT_OUT),
        )
    )
    if pending is not None:
        raise PortOutPending(
            f"a port-out of {number.e164} is already under way (request {pending})",
            port_out_id=pending,
        )
    request = PortOutRequest(
        tenant_id=scope.tenant_id,
        phone_number_id=number.id,
        e164=number.e164,
        state=PortOutState.REQUESTED.value,
        requested_at=now,
        requested_by=scope.principal.label,
        updated_at=now,
        note="",
    )
    session.add(request)
    await session.flush()
    await audit.record(
        session,
        scope,
        "request-port-out",
        "port_out_request",
        request.id,
        {"number_id": number.id, "e164": number.e164},
    )
    return request


async def list_port_outs(
    session: AsyncSession,
    principal: Principal,
    *,
    tenant_id: int | None,
    state: PortOutState | None,
    after_id: int | None,
    limit: int,
) -> tuple[list[PortOutRequest], int | None]:
    """Requests oldest first: a tenant's own, or (operators) every tenant's or one's."""
    if not principal.is_operator:
        tenant_id = principal.tenant_id
    statement = select(PortOutRequest)
    if tenant_id is not None:
        statement = statement.where(PortOutRequest.tenant_id == tenant_id)
    if state is not None:
        statement = statement.where(PortOutRequest.state == state.value)
    return await keyset_page(session, statement, PortOutRequest.id, after_id, limit)


async def get_port_out(
    session: AsyncSession, principal: Principal, request_id: int, *, lock: bool = False
) -> PortOutRequest:
    """One request the caller may see (a tenant: its own), else NotFound."""
    statement = select(PortOutRequest).where(PortOutRequest.id == request_id)
    if not principal.is_operator:
        statement = statement.where(PortOutRequest.tenant_id == principal.tenant_id)
    if lock:
        statement = statement.with_for_update()
    request: PortOutRequest | None = await session.scalar(statement)
    if request is None:
        raise NotFound(f"no port-out request {request_id}")
    return request


async def move_port_out(
    session: AsyncSession,
    principal: Principal,
    request_id: int,
    target: PortOutState,
    note: str | None,
    now: datetime,
    address: str | None = None,
) -> PortOutRequest:
    """Move a request to ``target``: the operator accepts, rejects or completes it; the
    tenant's admin (or the operator) cancels it while requested. Audited."""
    request = await get_port_out(session, principal, request_id, lock=True)
    if not principal.is_operator:
        if principal.role is not Role.ADMIN:
            raise Forbidden(f"a {principal.role} may not change a port-out request")
        if target not in CLIENT_MOVES:
            raise Forbidden(f"only the operator may move a port-out request to {target}")
    current = PortOutState(request.state)
    if not can_move(current, target):
        raise PortOutStateConflict(
            f"a {current} port-out request cannot become {target}",
            state=current.value,
            allowed=sorted(s.value for s in TRANSITIONS[current]),
        )
    changes: dict[str, object] = {
        "e164": request.e164,
        "state": {"from": current.value, "to": target.value},
    }
    if target is PortOutState.COMPLETED:
        await _number_leaves(session, request, now)
    request.state = target.value
    request.updated_at = now
    if note is not None:
        request.note = note
        changes["note"] = note
    await session.flush()
    await audit.record(
        session,
        Scope(request.tenant_id, principal, address),
        f"port-out-{target.value}",
        "port_out_request",
        request.id,
        changes,
    )
    return request


async def _number_leaves(session: AsyncSession, request: PortOutRequest, now: datetime) -> None:
    number = await session.scalar(
        select(PhoneNumber).where(PhoneNumber.id == request.phone_number_id).with_for_update()
    )
    if number is None or number.tenant_id != request.tenant_id:
        # Defensive: the request's number is held by its tenant while the request is pending
        # (termination keeps it, releasing is refused below for a routed one).
        raise Conflict(f"{request.e164} is no longer held by tenant {request.tenant_id}")
    users = await numbers_service.users_of(session, request.tenant_id, number.id)
    if users:
        raise NumberInUse(
            f"{number.e164} is still used by {', '.join(users)}: change them first",
            used_by=users,
        )
    # Through the ORM: the billing_holdings trigger closes the tenant's holding of it.
    number.status = NumberStatus.PORTED_OUT.value
    number.tenant_id = None
    number.assigned_at = None
    number.released_at = now
    await session.flush()
