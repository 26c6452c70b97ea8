"""Which objects can be called, and what still sends calls to them.

Each domain registers itself when its service module is imported: a target domain says which
model holds the objects of its destination type, a holder domain says where it keeps
destinations. Checks then run over whatever is registered, so this module imports no domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.destinations.schemas import Destination, DestinationType
from graam_pbx.errors import Conflict, Invalid


@dataclass(frozen=True)
class _Target:
    model: Any  # a mapped class with ``id`` and ``tenant_id`` columns
    condition: ColumnElement[bool] | None


@dataclass(frozen=True)
class _Holder:
    label: str  # how a 409 names the holder: "<label> <id>"
    model: Any  # a mapped class with ``id`` and ``tenant_id`` columns
    type_column: str
    id_column: str


_TARGETS: dict[DestinationType, _Target] = {}
_HOLDERS: list[_Holder] = []


def register_target(
    kind: DestinationType, model: Any, condition: ColumnElement[bool] | None = None
) -> None:
    """Declare that destinations of ``kind`` name rows of ``model`` (matching ``condition``)."""
    if kind is DestinationType.HANGUP:
        raise ValueError("hangup names no object")
    _TARGETS[kind] = _Target(model, condition)


def register_holder(label: str, model: Any, *prefixes: str) -> None:
    """Declare that ``model`` keeps destinations in (<prefix>_type, <prefix>_id) column pairs."""
    for prefix in prefixes:
        holder = _Holder(label, model, f"{prefix}_type", f"{prefix}_id")
        if holder not in _HOLDERS:
            _HOLDERS.append(holder)


def registered_targets() -> frozenset[DestinationType]:
    """The destination types some domain has registered (every one but hangup, once wired)."""
    return frozenset(_TARGETS)


def registered_holders() -> frozenset[tuple[str, str]]:
    """(table, prefix) of every registered destination column pair."""
    return frozenset(
        (holder.model.__tablename__, holder.type_column.removesuffix("_type"))
        for holder in _HOLDERS
    )


async def ensure_exists(
    session: AsyncSession, tenant_id: int, kind: DestinationType, object_id: int, field: str
) -> None:
    """Refuse (422 on ``field``) an id that names no ``kind`` object of this tenant."""
    target = _TARGETS.get(kind)
    if target is None:
        raise RuntimeError(f"no domain registered the destination type {kind.value!r}")
    model = target.model
    statement = select(model.id).where(model.id == object_id, model.tenant_id == tenant_id)
    if target.condition is not None:
        statement = statement.where(target.condition)
    if await session.scalar(statement) is None:
        raise Invalid(field, f"no {kind} {object_id} in this tenant")


async def check_destination(
    session: AsyncSession, tenant_id: int, destination: Destination | None, field: str
) -> None:
    """Refuse (422 on ``field``) a destination that is not an object of this tenant."""
    if destination is None or destination.type is DestinationType.HANGUP:
        return
    assert destination.id is not None  # noqa: S101 - every type but hangup has one
    await ensure_exists(session, tenant_id, destination.type, destination.id, field)


async def references_to(
    session: AsyncSession, tenant_id: int, kind: DestinationType, object_id: int
) -> list[str]:
    """What still routes calls to an object ("inbound route 4", …): it cannot be deleted."""
    found: list[str] = []
    for holder in _HOLDERS:
        model = holder.model
        rows = await session.scalars(
            select(model.id).where(
                model.tenant_id == tenant_id,
                getattr(model, holder.type_column) == kind.value,
                getattr(model, holder.id_column) == object_id,
            )
        )
        found.extend(f"{holder.label} {row}" for row in rows)
    return found


async def ensure_no_references(
    session: AsyncSession, tenant_id: int, kind: DestinationType, object_id: int, name: str
) -> None:
    """Refuse (409) to delete an object (``name`` says which) that calls are still routed to."""
    used_by = await references_to(session, tenant_id, kind, object_id)
    if used_by:
        raise Conflict(f"{name} is still a destination of: {', '.join(used_by)}", used_by=used_by)
