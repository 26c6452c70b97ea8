"""Routes in and out of a tenant (inbound and outbound routes, schedules) and the trunks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Principal, Scope
from graam_pbx.db import ensure_version, flush_or_conflict, get_in_tenant, keyset_page
from graam_pbx.destinations import service as destinations
from graam_pbx.destinations.schemas import Destination
from graam_pbx.errors import Conflict, Invalid, NotFound
from graam_pbx.numbers import service as numbers_service
from graam_pbx.routing.models import InboundRoute, OutboundRoute, Schedule, Trunk
from graam_pbx.routing.schemas import (
    InboundRouteCreate,
    InboundRouteUpdate,
    OpeningHours,
    OutboundRouteCreate,
    OutboundRouteUpdate,
    ScheduleCreate,
    ScheduleUpdate,
    TrunkCreate,
    TrunkMatch,
    TrunkUpdate,
    clock_minutes,
)
from graam_pbx.tenants.models import Tenant

# Inbound routes send calls to destinations: what still routes to an object keeps it.
destinations.register_holder("inbound route", InboundRoute, "open_dest", "closed_dest")


@numbers_service.register_number_user
async def _routes_using_number(session: AsyncSession, tenant_id: int, number_id: int) -> list[str]:
    inbound = await session.scalars(
        select(InboundRoute.id)
        .where(InboundRoute.tenant_id == tenant_id, InboundRoute.number_id == number_id)
        .order_by(InboundRoute.id)
    )
    outbound = await session.execute(
        select(OutboundRoute.id, OutboundRoute.name)
        .where(
            OutboundRoute.tenant_id == tenant_id,
            OutboundRoute.caller_id_number_id == number_id,
        )
        .order_by(OutboundRoute.id)
    )
    return [f"inbound route {row}" for row in inbound] + [
        f"outbound route {name!r} ({route_id})" for route_id, name in outbound
    ]


# ---- business hours -------------------------------------------------------------------------


class ScheduleLike(Protocol):
    """What ``is_open`` reads: a stored Schedule, or anything shaped like one."""

    @property
    def timezone(self) -> str: ...

    @property
    def weekly(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def holidays(self) -> Sequence[str]: ...


def is_open(schedule: ScheduleLike, at: datetime) -> bool:
    """Whether ``at`` (an aware datetime) falls in opening hours, read in the schedule's zone.

    Ranges are wall-clock times, so on a DST change day they keep their local meaning;
    a holiday (a local date) is closed all day.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be timezone-aware")
    local = at.astimezone(ZoneInfo(schedule.timezone))
    if local.date().isoformat() in schedule.holidays:
        return False
    minute = local.hour * 60 + local.minute
    return any(
        hours["day"] == local.weekday()
        and clock_minutes(hours["open"]) <= minute < clock_minutes(hours["close"])
        for hours in schedule.weekly
    )


def _check_opening_hours(weekly: list[OpeningHours]) -> None:
    ranges_by_day: dict[int, list[tuple[int, int, int]]] = {}
    for index, hours in enumerate(weekly):
        start, end = clock_minutes(hours.open), clock_minutes(hours.close)
        for other, other_start, other_end in ranges_by_day.get(hours.day, []):
            if start < other_end and other_start < end:
                raise Invalid(f"body.weekly.{index}", f"overlaps entry {other} on the same day")
        ranges_by_day.setdefault(hours.day, []).append((index, start, end))


# ---- trunks (the operator's, shared by every tenant) ----------------------------------------


async def list_trunks(
    session: AsyncSession, *, after_id: int | None, limit: int
) -> tuple[list[Trunk], int | None]:
    """Every trunk of the platform."""
    return await keyset_page(session, select(Trunk), Trunk.id, after_id, limit)


async def get_trunk(session: AsyncSession, trunk_id: int) -> Trunk:
    """One trunk, or NotFound."""
    trunk = await session.get(Trunk, trunk_id)
    if trunk is None:
        raise NotFound(f"no trunk {trunk_id}")
    return trunk


async def create_trunk(session: AsyncSession, principal: Principal, data: TrunkCreate) -> Trunk:
    """A new trunk (operators only, checked by the route)."""
    trunk = Trunk(
        name=data.name,
        host=data.host,
        port=data.port,
        transport=data.transport.value,
        country=data.country,
        username=data.username,
        password=data.password.get_secret_value() if data.password else None,
        enabled=data.enabled,
        match=data.match.value,
        inbound_addresses=data.inbound_addresses,
        match_header=data.match_header,
        inbound_username=data.inbound_username,
        inbound_password=(
            data.inbound_password.get_secret_value() if data.inbound_password else None
        ),
        forwarded_caller_id=data.forwarded_caller_id,
    )
    _check_trunk_match(trunk)
    session.add(trunk)
    await flush_or_conflict(session, taken=_trunk_unique(trunk))
    await audit.record(
        session, principal, "create", "trunk", trunk.id, _trunk_changes(data), tenant_id=None
    )
    return trunk


async def update_trunk(
    session: AsyncSession,
    principal: Principal,
    trunk_id: int,
    data: TrunkUpdate,
    expected: int | None,
) -> Trunk:
    """Change a trunk; disabling it keeps the routes using it, which then cannot dial out."""
    trunk = await get_trunk(session, trunk_id)
    ensure_version(trunk, expected)
    secrets = {"password", "inbound_password"}
    for field, value in data.model_dump(exclude_unset=True, exclude=secrets).items():
        setattr(trunk, field, value)
    if "password" in data.model_fields_set:
        trunk.password = data.password.get_secret_value() if data.password else None
    if "inbound_password" in data.model_fields_set:
        secret = data.inbound_password
        trunk.inbound_password = secret.get_secret_value() if secret else None
    _check_trunk_match(trunk)
    await flush_or_conflict(session, taken=_trunk_unique(trunk))
    await audit.record(
        session, principal, "update", "trunk", trunk.id, _trunk_changes(data), tenant_id=None
    )
    return trunk


async def delete_trunk(session: AsyncSession, principal: Principal, trunk_id: int) -> None:
    """Remove a trunk no outbound route uses."""
    trunk = await get_trunk(session, trunk_id)
    users = (
        await session.execute(
            select(OutboundRoute.id, OutboundRoute.tenant_id)
            .where(OutboundRoute.trunk_id == trunk.id)
            .order_by(OutboundRoute.id)
        )
    ).all()
    if users:
        named = [f"outbound route {route_id} (tenant {tenant_id})" for route_id, tenant_id in users]
        raise Conflict(f"trunk {trunk_id} is still used by {', '.join(named)}", used_by=named)
    await session.delete(trunk)
    await flush_or_conflict(
        session, otherwise=f"trunk {trunk_id} is still used by an outbound route"
    )
    await audit.record(
        session, principal, "delete", "trunk", trunk_id, {"name": trunk.name}, tenant_id=None
    )


def _check_trunk_match(trunk: Trunk) -> None:
    """A trunk's way of recognising its carrier's calls has what it needs, or Invalid."""
    if trunk.match == TrunkMatch.IP_AND_HEADER and trunk.match_header is None:
        raise Invalid("body.match_header", "match ip_and_header needs the header to match")
    if trunk.match == TrunkMatch.AUTH:
        if trunk.inbound_username is None:
            raise Invalid("body.inbound_username", "match auth needs the carrier's username")
        if trunk.inbound_password is None:
            raise Invalid("body.inbound_password", "match auth needs the carrier's password")


def _trunk_unique(trunk: Trunk) -> dict[str, tuple[str, object]]:
    taken: dict[str, tuple[str, object]] = {"uq_trunks_name": ("name", trunk.name)}
    if trunk.inbound_username is not None:
        # Asterisk finds the trunk of an authenticating carrier by this username alone.
        taken["uq_trunks_inbound_username"] = ("inbound_username", trunk.inbound_username)
    return taken


def _trunk_changes(data: TrunkCreate | TrunkUpdate) -> dict[str, Any]:
    partial = isinstance(data, TrunkUpdate)
    secrets = {"password", "inbound_password"}
    changes = data.model_dump(mode="json", exclude_unset=partial, exclude=secrets)
    for secret in sorted(secrets & data.model_fields_set):
        # The audit says it changed, never to what.
        changes[secret] = "set" if getattr(data, secret) else "removed"
    return changes


# ---- outbound routes ------------------------------------------------------------------------


async def list_outbound_routes(
    session: AsyncSession, scope: Scope, *, after_id: int | None, limit: int
) -> tuple[list[OutboundRoute], int | None]:
    """The tenant's outbound routes."""
    statement = select(OutboundRoute).where(OutboundRoute.tenant_id == scope.tenant_id)
    return await keyset_page(session, statement, OutboundRoute.id, after_id, limit)


async def get_outbound_route(session: AsyncSession, scope: Scope, route_id: int) -> OutboundRoute:
    """One of the tenant's outbound routes, or NotFound."""
    return await get_in_tenant(session, OutboundRoute, scope.tenant_id, route_id)


async def create_outbound_route(
    session: AsyncSession, scope: Scope, data: OutboundRouteCreate
) -> OutboundRoute:
    """A route out through an enabled trunk, showing one of the tenant's numbers."""
    await _check_trunk(session, data.trunk_id)
    await _check_own_number(
        session, scope.tenant_id, data.caller_id_number_id, "body.caller_id_number_id"
    )
    route = OutboundRoute(
        tenant_id=scope.tenant_id,
        name=data.name,
        trunk_id=data.trunk_id,
        caller_id_number_id=data.caller_id_number_id,
        allowed_countries=data.allowed_countries,
        priority=data.priority,
        caller_id_name=data.caller_id_name,
    )
    session.add(route)
    await flush_or_conflict(
        session, taken={"uq_outbound_routes_tenant_id_name": ("name", data.name)}
    )
    await audit.record(
        session, scope, "create", "outbound_route", route.id, data.model_dump(mode="json")
    )
    return route


async def update_outbound_route(
    session: AsyncSession,
    scope: Scope,
    route_id: int,
    data: OutboundRouteUpdate,
    expected: int | None,
) -> OutboundRoute:
    """Change an outbound route; a new trunk or caller ID is checked like on creation."""
    route = await get_in_tenant(session, OutboundRoute, scope.tenant_id, route_id)
    ensure_version(route, expected)
    if data.trunk_id is not None:
        await _check_trunk(session, data.trunk_id)
    if data.caller_id_number_id is not None:
        await _check_own_number(
            session, scope.tenant_id, data.caller_id_number_id, "body.caller_id_number_id"
        )
    changes = data.model_dump(exclude_unset=True)
    for field, value in changes.items():
        setattr(route, field, value)
    await flush_or_conflict(
        session, taken={"uq_outbound_routes_tenant_id_name": ("name", route.name)}
    )
    await audit.record(
        session,
        scope,
        "update",
        "outbound_route",
        route.id,
        data.model_dump(mode="json", exclude_unset=True),
    )
    return route


async def delete_outbound_route(session: AsyncSession, scope: Scope, route_id: int) -> None:
    """Remove one of the tenant's outbound routes."""
    route = await get_in_tenant(session, OutboundRoute, scope.tenant_id, route_id)
    await session.delete(route)
    await flush_or_conflict(session, otherwise=f"outbound route {route_id} is still in use")
    await audit.record(session, scope, "delete", "outbound_route", route_id, {"name": route.name})


async def _check_trunk(session: AsyncSession, trunk_id: int) -> None:
    trunk = await session.get(Trunk, trunk_id)
    if trunk is None:
        raise Invalid("body.trunk_id", f"no trunk {trunk_id}")
    if not trunk.enabled:
        raise Invalid("body.trunk_id", f"trunk {trunk_id} is disabled")


async def _check_own_number(
    session: AsyncSession, tenant_id: int, number_id: int, field: str
) -> None:
    # Another tenant's number reads exactly like a missing one: nothing leaks.
    if await numbers_service.assigned_number(session, tenant_id, number_id) is None:
        raise Invalid(field, f"no assigned number {number_id} in this tenant")


# ---- schedules ------------------------------------------------------------------------------


async def list_schedules(
    session: AsyncSession, scope: Scope, *, after_id: int | None, limit: int
) -> tuple[list[Schedule], int | None]:
    """The tenant's schedules."""
    statement = select(Schedule).where(Schedule.tenant_id == scope.tenant_id)
    return await keyset_page(session, statement, Schedule.id, after_id, limit)


async def get_schedule(session: AsyncSession, scope: Scope, schedule_id: int) -> Schedule:
    """One of the tenant's schedules, or NotFound."""
    return await get_in_tenant(session, Schedule, scope.tenant_id, schedule_id)


async def create_schedule(session: AsyncSession, scope: Scope, data: ScheduleCreate) -> Schedule:
    """Weekly hours and holidays; the time zone defaults to the tenant's."""
    _check_opening_hours(data.weekly)
    timezone = data.timezone
    if timezone is None:
        tenant = await session.get(Tenant, scope.tenant_id)
        if tenant is None:
            raise NotFound(f"no tenant {scope.tenant_id}")
        timezone = tenant.timezone
    schedule = Schedule(
        tenant_id=scope.tenant_id,
        name=data.name,
        timezone=timezone,
        weekly=[hours.model_dump() for hours in data.weekly],
        holidays=[day.isoformat() for day in data.holidays],
    )
    session.add(schedule)
    await flush_or_conflict(session, taken={"uq_schedules_tenant_id_name": ("name", data.name)})
    await audit.record(
        session,
        scope,
        "create",
        "schedule",
        schedule.id,
        {**data.model_dump(mode="json"), "timezone": timezone},
    )
    return schedule


async def update_schedule(
    session: AsyncSession,
    scope: Scope,
    schedule_id: int,
    data: ScheduleUpdate,
    expected: int | None,
) -> Schedule:
    """Change a schedule; ``weekly`` and ``holidays`` are replaced whole."""
    schedule = await get_in_tenant(session, Schedule, scope.tenant_id, schedule_id)
    ensure_version(schedule, expected)
    if data.name is not None:
        schedule.name = data.name
    if data.timezone is not None:
        schedule.timezone = data.timezone
    if data.weekly is not None:
        _check_opening_hours(data.weekly)
        schedule.weekly = [hours.model_dump() for hours in data.weekly]
    if data.holidays is not None:
        schedule.holidays = [day.isoformat() for day in data.holidays]
    await flush_or_conflict(session, taken={"uq_schedules_tenant_id_name": ("name", schedule.name)})
    await audit.record(
        session,
        scope,
        "update",
        "schedule",
        schedule.id,
        data.model_dump(mode="json", exclude_unset=True),
    )
    return schedule


async def delete_schedule(session: AsyncSession, scope: Scope, schedule_id: int) -> None:
    """Remove a schedule no inbound route uses."""
    schedule = await get_in_tenant(session, Schedule, scope.tenant_id, schedule_id)
    users = (
        await session.scalars(
            select(InboundRoute.id)
            .where(
                InboundRoute.tenant_id == scope.tenant_id, InboundRoute.schedule_id == schedule_id
            )
            .order_by(InboundRoute.id)
        )
    ).all()
    if users:
        named = [f"inbound route {route_id}" for route_id in users]
        raise Conflict(f"schedule {schedule_id} is still used by {', '.join(named)}", used_by=named)
    await session.delete(schedule)
    await flush_or_conflict(
        session, otherwise=f"schedule {schedule_id} is still used by an inbound route"
    )
    await audit.record(session, scope, "delete", "schedule", schedule_id, {"name": schedule.name})


# ---- inbound routes -------------------------------------------------------------------------


async def list_inbound_routes(
    session: AsyncSession, scope: Scope, *, after_id: int | None, limit: int
) -> tuple[list[InboundRoute], int | None]:
    """The tenant's inbound routes."""
    statement = select(InboundRoute).where(InboundRoute.tenant_id == scope.tenant_id)
    return await keyset_page(session, statement, InboundRoute.id, after_id, limit)


async def get_inbound_route(session: AsyncSession, scope: Scope, route_id: int) -> InboundRoute:
    """One of the tenant's inbound routes, or NotFound."""
    return await get_in_tenant(session, InboundRoute, scope.tenant_id, route_id)


async def create_inbound_route(
    session: AsyncSession, scope: Scope, data: InboundRouteCreate
) -> InboundRoute:
    """Route one of the tenant's numbers (one route per number) to its destinations."""
    await _check_own_number(session, scope.tenant_id, data.number_id, "body.number_id")
    await _check_not_routed(session, scope.tenant_id, data.number_id, None)
    await _check_inbound_targets(
        session, scope.tenant_id, data.schedule_id, data.open_destination, data.closed_destination
    )
    route = InboundRoute(tenant_id=scope.tenant_id, number_id=data.number_id)
    _set_inbound_fields(route, data.schedule_id, data.open_destination, data.closed_destination)
    session.add(route)
    await flush_or_conflict(session, taken=_routed(data.number_id))
    await audit.record(
        session, scope, "create", "inbound_route", route.id, data.model_dump(mode="json")
    )
    return route


async def update_inbound_route(
    session: AsyncSession,
    scope: Scope,
    route_id: int,
    data: InboundRouteUpdate,
    expected: int | None,
) -> InboundRoute:
    """Change an inbound route; the result is checked as a whole, like a new one."""
    route = await get_in_tenant(session, InboundRoute, scope.tenant_id, route_id)
    ensure_version(route, expected)
    given = data.model_fields_set
    number_id = data.number_id if data.number_id is not None else route.number_id
    schedule_id = data.schedule_id if "schedule_id" in given else route.schedule_id
    open_destination = data.open_destination or Destination.stored(
        route.open_dest_type, route.open_dest_id
    )
    closed_destination = (
        data.closed_destination
        if "closed_destination" in given
        else Destination.of(route.closed_dest_type, route.closed_dest_id)
    )
    if number_id != route.number_id:
        await _check_own_number(session, scope.tenant_id, number_id, "body.number_id")
        await _check_not_routed(session, scope.tenant_id, number_id, route.id)
    await _check_inbound_targets(
        session, scope.tenant_id, schedule_id, open_destination, closed_destination
    )
    route.number_id = number_id
    _set_inbound_fields(route, schedule_id, open_destination, closed_destination)
    await flush_or_conflict(session, taken=_routed(number_id))
    await audit.record(
        session,
        scope,
        "update",
        "inbound_route",
        route.id,
        data.model_dump(mode="json", exclude_unset=True),
    )
    return route


async def delete_inbound_route(session: AsyncSession, scope: Scope, route_id: int) -> None:
    """Remove one of the tenant's inbound routes: its number then takes no calls."""
    route = await get_in_tenant(session, InboundRoute, scope.tenant_id, route_id)
    await session.delete(route)
    await session.flush()
    await audit.record(
        session, scope, "delete", "inbound_route", route_id, {"number_id": route.number_id}
    )


async def _check_not_routed(
    session: AsyncSession, tenant_id: int, number_id: int, route_id: int | None
) -> None:
    existing = await session.scalar(
        select(InboundRoute.id).where(
            InboundRoute.tenant_id == tenant_id, InboundRoute.number_id == number_id
        )
    )
    if existing is not None and existing != route_id:
        raise Conflict(
            f"number {number_id} is already routed by inbound route {existing}", field="number_id"
        )


async def _check_inbound_targets(
    session: AsyncSession,
    tenant_id: int,
    schedule_id: int | None,
    open_destination: Destination | None,
    closed_destination: Destination | None,
) -> None:
    if open_destination is None:
        raise Invalid("body.open_destination", "required")
    if schedule_id is not None:
        schedule = await session.scalar(
            select(Schedule.id)
            .where(Schedule.id == schedule_id, Schedule.tenant_id == tenant_id)
            # Keeps the schedule from being deleted before this route is committed.
            .with_for_update(read=True)
        )
        if schedule is None:
            raise Invalid("body.schedule_id", f"no schedule {schedule_id} in this tenant")
        if closed_destination is None:
            raise Invalid("body.closed_destination", "required with a schedule")
    elif closed_destination is not None:
        raise Invalid("body.closed_destination", "only a route with a schedule is ever closed")
    await destinations.check_destination(
        session, tenant_id, open_destination, "body.open_destination"
    )
    await destinations.check_destination(
        session, tenant_id, closed_destination, "body.closed_destination"
    )


def _set_inbound_fields(
    route: InboundRoute,
    schedule_id: int | None,
    open_destination: Destination | None,
    closed_destination: Destination | None,
) -> None:
    assert open_destination is not None  # noqa: S101 - checked by _check_inbound_targets
    route.schedule_id = schedule_id
    route.open_dest_type = open_destination.type.value
    route.open_dest_id = open_destination.id
    route.closed_dest_type = closed_destination.type.value if closed_destination else None
    route.closed_dest_id = closed_destination.id if closed_destination else None


def _routed(number_id: int) -> dict[str, tuple[str, object]]:
    # Two routes for one number made at once: the unique constraint decides.
    return {"uq_inbound_routes_number_id": ("number_id", number_id)}
