"""IVR menus: a greeting, then a keypad digit chooses where the call goes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Scope
from graam_pbx.db import ensure_version, flush_or_conflict, get_in_tenant, keyset_page
from graam_pbx.destinations import service as destinations
from graam_pbx.destinations.schemas import Destination, DestinationType
from graam_pbx.errors import Invalid
from graam_pbx.ivr.models import IvrMenu, IvrOption
from graam_pbx.ivr.schemas import DIGITS, IvrCreate, IvrUpdate
from graam_pbx.prompts import service as prompts_service

_UNIQUE_NAME = "uq_ivr_menus_tenant_id_name"

# Calls can be sent to a menu; its timeout, invalid choice and options send them on; its
# greeting plays a prompt.
destinations.register_target(DestinationType.IVR, IvrMenu)
destinations.register_holder("IVR menu", IvrMenu, "timeout_dest", "invalid_dest")
destinations.register_holder("IVR option", IvrOption, "dest")
prompts_service.register_prompt_user("IVR menu", IvrMenu, "greeting_prompt_id", "greeting")


@dataclass(frozen=True)
class MenuWithOptions:
    menu: IvrMenu
    options: list[IvrOption]


async def create_menu(session: AsyncSession, scope: Scope, data: IvrCreate) -> MenuWithOptions:
    """A menu of the scope's tenant; every prompt and destination must be the tenant's own."""
    await _check_options(session, scope.tenant_id, data.options, menu_id=None)
    await prompts_service.ensure_prompt(
        session, scope.tenant_id, data.greeting_prompt_id, "body.greeting_prompt_id"
    )
    for field in ("timeout_destination", "invalid_destination"):
        await destinations.check_destination(
            session, scope.tenant_id, getattr(data, field), f"body.{field}"
        )
    menu = IvrMenu(
        tenant_id=scope.tenant_id,
        name=data.name,
        greeting_prompt_id=data.greeting_prompt_id,
        timeout_s=data.timeout_s,
        repeat_count=data.repeat_count,
    )
    _set_destinations(menu, data.timeout_destination, data.invalid_destination)
    session.add(menu)
    await flush_or_conflict(session, taken={_UNIQUE_NAME: ("name", data.name)})
    options = _add_options(session, menu, data.options)
    await session.flush()
    await audit.record(session, scope, "create", "ivr_menu", menu.id, data.model_dump(mode="json"))
    return MenuWithOptions(menu, options)


async def list_menus(
    session: AsyncSession, scope: Scope, *, after_id: int | None, limit: int
) -> tuple[list[MenuWithOptions], int | None]:
    """The tenant's menus with their options."""
    statement = select(IvrMenu).where(IvrMenu.tenant_id == scope.tenant_id)
    menus, after = await keyset_page(session, statement, IvrMenu.id, after_id, limit)
    by_menu: dict[int, list[IvrOption]] = {menu.id: [] for menu in menus}
    if menus:
        rows = await session.scalars(
            select(IvrOption).where(
                IvrOption.tenant_id == scope.tenant_id, IvrOption.menu_id.in_(list(by_menu))
            )
        )
        for option in rows:
            by_menu[option.menu_id].append(option)
    return [MenuWithOptions(menu, by_menu[menu.id]) for menu in menus], after


async def get_menu(session: AsyncSession, scope: Scope, menu_id: int) -> MenuWithOptions:
    """One menu of the tenant with its options."""
    menu = await get_in_tenant(session, IvrMenu, scope.tenant_id, menu_id)
    return MenuWithOptions(menu, await _options(session, menu))


async def update_menu(
    session: AsyncSession, scope: Scope, menu_id: int, data: IvrUpdate, expected: int | None
) -> MenuWithOptions:
    """Change a menu; given ``options`` replace all of the menu's options."""
    menu = await get_in_tenant(session, IvrMenu, scope.tenant_id, menu_id)
    ensure_version(menu, expected)
    given = data.model_fields_set
    if data.options is not None:
        await _check_options(session, scope.tenant_id, data.options, menu_id=menu.id)
    if "greeting_prompt_id" in given:
        await prompts_service.ensure_prompt(
            session, scope.tenant_id, data.greeting_prompt_id, "body.greeting_prompt_id"
        )
        menu.greeting_prompt_id = data.greeting_prompt_id
    for field in ("timeout_destination", "invalid_destination"):
        destination = getattr(data, field)
        if destination is not None:
            await _check_destination(
                session, scope.tenant_id, destination, f"body.{field}", menu.id
            )
    _set_destinations(
        menu,
        data.timeout_destination
        or Destination.stored(menu.timeout_dest_type, menu.timeout_dest_id),
        data.invalid_destination
        or Destination.stored(menu.invalid_dest_type, menu.invalid_dest_id),
    )
    for field in ("name", "timeout_s", "repeat_count"):
        if field in given:
            setattr(menu, field, getattr(data, field))
    if data.options is not None:
        await session.execute(
            delete(IvrOption).where(
                IvrOption.menu_id == menu.id, IvrOption.tenant_id == scope.tenant_id
            )
        )
        options = _add_options(session, menu, data.options)
        # Options are rows of their own: touch the menu so its version (the ETag) moves.
        menu.updated_at = datetime.now(UTC)
    else:
        options = await _options(session, menu)
    await flush_or_conflict(session, taken={_UNIQUE_NAME: ("name", menu.name)})
    await audit.record(
        session,
        scope,
        "update",
        "ivr_menu",
        menu.id,
        data.model_dump(mode="json", exclude_unset=True),
    )
    return MenuWithOptions(menu, options)


async def delete_menu(session: AsyncSession, scope: Scope, menu_id: int) -> None:
    """Remove a menu (and its options) that nothing routes calls to any more."""
    menu = await get_in_tenant(session, IvrMenu, scope.tenant_id, menu_id)
    await destinations.ensure_no_references(
        session, scope.tenant_id, DestinationType.IVR, menu.id, f"IVR menu {menu.name!r}"
    )
    await session.delete(menu)
    await session.flush()
    await audit.record(session, scope, "delete", "ivr_menu", menu_id, {"name": menu.name})


async def _check_options(
    session: AsyncSession,
    tenant_id: int,
    options: dict[str, Destination],
    *,
    menu_id: int | None,
) -> None:
    for digit in options:
        if len(digit) != 1 or digit not in DIGITS:
            raise Invalid(f"body.options.{digit}", "not a keypad digit: 0-9, * or #")
    for digit, destination in options.items():
        await _check_destination(session, tenant_id, destination, f"body.options.{digit}", menu_id)


async def _check_destination(
    session: AsyncSession,
    tenant_id: int,
    destination: Destination,
    field: str,
    menu_id: int | None,
) -> None:
    if destination.type is DestinationType.IVR and destination.id == menu_id:
        raise Invalid(field, "a menu cannot lead to itself")
    await destinations.check_destination(session, tenant_id, destination, field)


def _set_destinations(menu: IvrMenu, on_timeout: Destination, on_invalid: Destination) -> None:
    menu.timeout_dest_type = on_timeout.type.value
    menu.timeout_dest_id = on_timeout.id
    menu.invalid_dest_type = on_invalid.type.value
    menu.invalid_dest_id = on_invalid.id


def _add_options(
    session: AsyncSession, menu: IvrMenu, options: dict[str, Destination]
) -> list[IvrOption]:
    rows = [
        IvrOption(
            tenant_id=menu.tenant_id,
            menu_id=menu.id,
            digit=digit,
            dest_type=destination.type.value,
            dest_id=destination.id,
        )
        for digit, destination in options.items()
    ]
    session.add_all(rows)
    return rows


async def _options(session: AsyncSession, menu: IvrMenu) -> list[IvrOption]:
    rows = await session.scalars(
        select(IvrOption).where(IvrOption.menu_id == menu.id, IvrOption.tenant_id == menu.tenant_id)
    )
    return list(rows.all())
