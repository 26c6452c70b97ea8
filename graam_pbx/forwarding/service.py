"""External numbers: numbers outside the switch a destination can send calls to.

A call sent to one is placed through the tenant's outbound routes exactly as an outbound
call (``t<id>-outbound``): the allowed destinations, the suspension and the rating are those
of every outbound call, so an external number is not checked against the routes when it is
saved: a number no route allows is refused when called, the caller hearing why.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Scope
from graam_pbx.db import ensure_version, get_in_tenant, keyset_page
from graam_pbx.destinations import service as destinations
from graam_pbx.destinations.schemas import DestinationType
from graam_pbx.errors import Invalid
from graam_pbx.forwarding.models import ExternalNumber
from graam_pbx.forwarding.schemas import ExternalNumberCreate, ExternalNumberUpdate
from graam_pbx.numbers import service as numbers

destinations.register_target(DestinationType.EXTERNAL, ExternalNumber)


async def _ensure_outside(session: AsyncSession, number: str) -> None:
    # A call forwarded through a carrier to a number of this switch would come back in, and
    # be forwarded again: refused, the number's own route is the way there.
    if await numbers.rings_here(session, number):
        raise Invalid(
            "body.number",
            "is a number of this switch: send calls to its destination instead",
        )


async def create_number(
    session: AsyncSession, scope: Scope, data: ExternalNumberCreate
) -> ExternalNumber:
    """An external number of the scope's tenant."""
    await _ensure_outside(session, data.number)
    number = ExternalNumber(tenant_id=scope.tenant_id, **data.model_dump())
    session.add(number)
    await session.flush()
    await audit.record(session, scope, "create", "external_number", number.id, data.model_dump())
    return number


async def number_named(
    session: AsyncSession, scope: Scope, data: ExternalNumberCreate
) -> ExternalNumber:
    """The tenant's external number ``data.number`` (the first one, if several), made from
    ``data`` if the tenant has none (a phone's ``*72`` forwarding to a number)."""
    found = await session.scalar(
        select(ExternalNumber)
        .where(ExternalNumber.tenant_id == scope.tenant_id, ExternalNumber.number == data.number)
        .order_by(ExternalNumber.id)
        .limit(1)
    )
    return found if found is not None else await create_number(session, scope, data)


async def list_numbers(
    session: AsyncSession, scope: Scope, *, after_id: int | None, limit: int
) -> tuple[list[ExternalNumber], int | None]:
    """The tenant's external numbers."""
    statement = select(ExternalNumber).where(ExternalNumber.tenant_id == scope.tenant_id)
    return await keyset_page(session, statement, ExternalNumber.id, after_id, limit)


async def get_number(session: AsyncSession, scope: Scope, number_id: int) -> ExternalNumber:
    """One external number of the tenant."""
    return await get_in_tenant(session, ExternalNumber, scope.tenant_id, number_id)


async def update_number(
    session: AsyncSession,
    scope: Scope,
    number_id: int,
    data: ExternalNumberUpdate,
    expected: int | None,
) -> ExternalNumber:
    """Rename an external number or change where it leads (live at the next call)."""
    number = await get_in_tenant(session, ExternalNumber, scope.tenant_id, number_id)
    ensure_version(number, expected)
    changes = data.model_dump(exclude_unset=True)
    if data.number is not None:
        await _ensure_outside(session, data.number)
    for field, value in changes.items():
        setattr(number, field, value)
    await session.flush()
    await audit.record(session, scope, "update", "external_number", number.id, changes)
    return number


async def delete_number(session: AsyncSession, scope: Scope, number_id: int) -> None:
    """Remove an external number nothing sends calls to any more (409 otherwise)."""
    number = await get_in_tenant(session, ExternalNumber, scope.tenant_id, number_id)
    await destinations.ensure_no_references(
        session,
        scope.tenant_id,
        DestinationType.EXTERNAL,
        number.id,
        f"external number {number.name}",
    )
    await session.delete(number)
    await session.flush()
    await audit.record(
        session, scope, "delete", "external_number", number_id, {"number": number.number}
    )
