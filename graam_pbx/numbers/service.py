"""The number catalogue (operators load it) and the DIDs tenants buy and release from it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Principal, Scope
from graam_pbx.db import ensure_version, get_in_tenant, keyset_page, violated_constraint
from graam_pbx.errors import Conflict, Invalid, NotFound
from graam_pbx.numbers.models import NumberStatus, NumberType, PhoneNumber
from graam_pbx.numbers.schemas import CatalogueNumberIn, classify

# The column's scale: what is stored reads back the same in the response that stored it.
_PRICE_STEP = Decimal("0.0001")
# Conflict messages name this many numbers at most; details carry them all.
_NAMED_IN_MESSAGE = 5

# What still uses one of a tenant's numbers: ("inbound route 4", …) for a number id.
NumberUsers = Callable[[AsyncSession, int, int], Awaitable[list[str]]]
_NUMBER_USERS: list[NumberUsers] = []


def register_number_user(finder: NumberUsers) -> NumberUsers:
    """Declare where a domain keeps tenant numbers: a number it uses cannot be released."""
    if finder not in _NUMBER_USERS:
        _NUMBER_USERS.append(finder)
    return finder


# ---- the operator's catalogue ---------------------------------------------------------------


async def load_catalogue(
    session: AsyncSession, principal: Principal, entries: list[CatalogueNumberIn]
) -> list[PhoneNumber]:
    """Add numbers to the catalogue, all or none; a number already there is a conflict."""
    first_seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if entry.e164 in first_seen:
            raise Invalid(f"body.{index}.e164", f"repeats entry {first_seen[entry.e164]}")
        first_seen[entry.e164] = index
    taken = await _in_catalogue(session, list(first_seen))
    if taken:
        raise _already_in_catalogue(taken)
    numbers = []
    for entry in entries:
        kind = classify(entry.e164)
        numbers.append(
            PhoneNumber(
                e164=entry.e164,
                country=kind.country,
                number_type=kind.number_type.value,
                monthly_price=entry.monthly_price.quantize(_PRICE_STEP),
                currency=entry.currency,
                status=NumberStatus.AVAILABLE.value,
            )
        )
    try:
        # A savepoint, unlike flush_or_conflict: after a failed insert the transaction must
        # still answer the query naming the numbers taken. The rows are added inside it, as
        # begin_nested() flushes what is pending before it starts.
        async with session.begin_nested():
            session.add_all(numbers)
            await session.flush()
    except IntegrityError as err:
        if violated_constraint(err) != "uq_phone_numbers_e164":
            raise
        # Another load committed some of these numbers between our check and our insert.
        raise _already_in_catalogue(await _in_catalogue(session, list(first_seen))) from err
    await audit.record(
        session,
        principal,
        "load",
        "phone_number",
        None,
        {"count": len(numbers), "e164": [n.e164 for n in numbers]},
        tenant_id=None,
    )
    return numbers


async def _in_catalogue(session: AsyncSession, e164s: list[str]) -> list[str]:
    rows = await session.scalars(
        select(PhoneNumber.e164).where(PhoneNumber.e164.in_(e164s)).order_by(PhoneNumber.e164)
    )
    return list(rows.all())


async def rings_here(session: AsyncSession, e164: str) -> bool:
    """Whether ``e164`` is a number of this switch that some tenant holds (its calls come
    here): forwarding a call to it through a carrier would loop back in."""
    held = await session.scalar(
        select(PhoneNumber.id).where(
            PhoneNumber.e164 == e164, PhoneNumber.status.in_(("assigned", "port_out"))
        )
    )
    return held is not None


def _already_in_catalogue(e164s: list[str]) -> Conflict:
    named = ", ".join(e164s[:_NAMED_IN_MESSAGE]) + (" …" if len(e164s) > _NAMED_IN_MESSAGE else "")
    return Conflict(f"already in the catalogue: {named}", field="e164", e164=e164s)


async def list_catalogue(
    session: AsyncSession,
    *,
    country: str | None,
    number_type: NumberType | None,
    status: NumberStatus | None,
    tenant_id: int | None,
    after_id: int | None,
    limit: int,
) -> tuple[list[PhoneNumber], int | None]:
    """The whole catalogue, for operators."""
    statement = _filtered(select(PhoneNumber), country, number_type, status)
    if tenant_id is not None:
        statement = statement.where(PhoneNumber.tenant_id == tenant_id)
    return await keyset_page(session, statement, PhoneNumber.id, after_id, limit)


def _filtered(
    statement: Select[PhoneNumber],
    country: str | None,
    number_type: NumberType | None,
    status: NumberStatus | None,
) -> Select[PhoneNumber]:
    if country is not None:
        statement = statement.where(PhoneNumber.country == country)
    if number_type is not None:
        statement = statement.where(PhoneNumber.number_type == number_type.value)
    if status is not None:
        statement = statement.where(PhoneNumber.status == status.value)
    return statement


# ---- a tenant's numbers ---------------------------------------------------------------------


async def list_available(
    session: AsyncSession,
    *,
    country: str | None,
    number_type: NumberType | None,
    after_id: int | None,
    limit: int,
) -> tuple[list[PhoneNumber], int | None]:
    """Numbers on sale: catalogue entries no tenant holds (not tenant data)."""
    statement = _filtered(select(PhoneNumber), country, number_type, NumberStatus.AVAILABLE)
    return await keyset_page(session, statement, PhoneNumber.id, after_id, limit)


async def buy_number(session: AsyncSession, scope: Scope, e164: str) -> PhoneNumber:
    """Assign an available number to the tenant; of two concurrent buyers one gets 409."""
    # The row lock makes a second buyer wait for the first one's commit, then see it sold.
    number = await session.scalar(
        select(PhoneNumber).where(PhoneNumber.e164 == e164).with_for_update()
    )
    if number is None:
        raise Invalid("body.e164", "not in the catalogue")
    if number.status != NumberStatus.AVAILABLE.value:
        raise Conflict(f"{e164} is not available", field="e164")
    number.status = NumberStatus.ASSIGNED.value
    number.tenant_id = scope.tenant_id
    number.assigned_at = datetime.now(UTC)
    number.released_at = None
    await session.flush()
    await audit.record(
        session,
        scope,
        "buy",
        "phone_number",
        number.id,
        {
            "e164": number.e164,
            "monthly_price": str(number.monthly_price),
            "currency": number.currency,
        },
    )
    return number


async def list_numbers(
    session: AsyncSession,
    scope: Scope,
    *,
    country: str | None,
    number_type: NumberType | None,
    status: NumberStatus | None,
    after_id: int | None,
    limit: int,
) -> tuple[list[PhoneNumber], int | None]:
    """The tenant's numbers: assigned, and kept for a port-out."""
    statement = _filtered(
        select(PhoneNumber).where(PhoneNumber.tenant_id == scope.tenant_id),
        country,
        number_type,
        status,
    )
    return await keyset_page(session, statement, PhoneNumber.id, after_id, limit)


async def count_numbers(session: AsyncSession, scope: Scope) -> int:
    """How many numbers the tenant holds (what ``list_numbers`` pages through unfiltered)."""
    statement = (
        select(func.count())
        .select_from(PhoneNumber)
        .where(PhoneNumber.tenant_id == scope.tenant_id)
    )
    return int(await session.scalar(statement) or 0)


async def get_number(session: AsyncSession, scope: Scope, number_id: int) -> PhoneNumber:
    """One of the tenant's numbers, or NotFound."""
    return await get_in_tenant(session, PhoneNumber, scope.tenant_id, number_id)


async def assigned_number(
    session: AsyncSession, tenant_id: int, number_id: int
) -> PhoneNumber | None:
    """The tenant's number if it is assigned (usable by routes), share-locked until commit.

    The lock makes a concurrent release wait, so a route never points at a released number.
    """
    number: PhoneNumber | None = await session.scalar(
        select(PhoneNumber)
        .where(
            PhoneNumber.id == number_id,
            PhoneNumber.tenant_id == tenant_id,
            PhoneNumber.status == NumberStatus.ASSIGNED.value,
        )
        .with_for_update(read=True)
    )
    return number


async def release_number(
    session: AsyncSession, scope: Scope, number_id: int, *, port_out: bool, expected: int | None
) -> PhoneNumber:
    """Give a number back to the catalogue, or keep it for the tenant's port-out."""
    number = await session.scalar(
        select(PhoneNumber)
        .where(PhoneNumber.id == number_id, PhoneNumber.tenant_id == scope.tenant_id)
        .with_for_update()
    )
    if number is None:
        raise NotFound(f"no phone number {number_id}")
    ensure_version(number, expected)
    if number.status != NumberStatus.ASSIGNED.value:
        raise Conflict(f"{number.e164} is already released for a port-out")
    users = await _users_of(session, scope.tenant_id, number.id)
    if users:
        raise Conflict(f"{number.e164} is still used by {', '.join(users)}", used_by=users)
    number.released_at = datetime.now(UTC)
    if port_out:
        number.status = NumberStatus.PORT_OUT.value
    else:
        number.status = NumberStatus.AVAILABLE.value
        number.tenant_id = None
        number.assigned_at = None
    await session.flush()
    await audit.record(
        session,
        scope,
        "release",
        "phone_number",
        number.id,
        {"e164": number.e164, "port_out": port_out},
    )
    return number


async def users_of(session: AsyncSession, tenant_id: int, number_id: int) -> list[str]:
    """What of the tenant's still uses the number ("inbound route 4", …): it cannot leave."""
    return await _users_of(session, tenant_id, number_id)


async def _users_of(session: AsyncSession, tenant_id: int, number_id: int) -> list[str]:
    return [
        user for finder in _NUMBER_USERS for user in await finder(session, tenant_id, number_id)
    ]
