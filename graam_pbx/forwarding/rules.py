"""Users' forwarding rules: where the calls made to a user go when they are away.

A user's rules apply to the calls made to them (one of their extensions dialled, or a route,
an IVR option or a fallback naming them or one of their phones), never to the queue calls an
agent takes: a logged-in agent is in the queue for the queue's calls. The dialplan follows
them (``dialplans/tenant_dest.conf.j2``); a chain of forwards is cut at
``graam_pbx.asterisk.render.MAX_FORWARDS`` (docs/forwarding.md).

Admins set anyone's rules; every other user sets their own (the API, the console, the
phone's feature codes).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.models import User
from graam_pbx.auth.principal import Role, Scope
from graam_pbx.db import ensure_version
from graam_pbx.destinations import service as destinations
from graam_pbx.destinations.schemas import Destination, DestinationType
from graam_pbx.errors import Forbidden, Invalid, NotFound, PreconditionFailed
from graam_pbx.forwarding.models import RULE_TARGETS, UserForwarding
from graam_pbx.forwarding.schemas import ForwardingRules, ForwardingRulesOut

destinations.register_holder(
    "forwarding of user",
    UserForwarding,
    "unconditional",
    "busy",
    "no_answer",
    "unreachable",
    "dnd_dest",
)

# API field → the model's column prefix.
_RULES = {
    "unconditional": "unconditional",
    "busy": "busy",
    "no_answer": "no_answer",
    "unreachable": "unreachable",
    "do_not_disturb_to": "dnd_dest",
}


async def _user(session: AsyncSession, scope: Scope, user_id: int) -> None:
    """Refuse another user's rules (403) unless an admin asks; a user of no tenant's (404)."""
    if scope.role is not Role.ADMIN and scope.principal.user_id != user_id:
        raise Forbidden("only an admin sets another user's forwarding")
    found = await session.scalar(
        select(User.id).where(User.id == user_id, User.tenant_id == scope.tenant_id)
    )
    if found is None:
        raise NotFound(f"no user {user_id}")


def _out(user_id: int, row: UserForwarding | None) -> ForwardingRulesOut:
    if row is None:
        return ForwardingRulesOut(user_id=user_id)
    rules: dict[str, Any] = {
        field: Destination.of(getattr(row, f"{prefix}_type"), getattr(row, f"{prefix}_id"))
        for field, prefix in _RULES.items()
    }
    return ForwardingRulesOut(
        user_id=user_id,
        version=row.version,
        do_not_disturb=row.do_not_disturb,
        no_answer_seconds=row.no_answer_seconds,
        **rules,
    )


async def _row(session: AsyncSession, scope: Scope, user_id: int) -> UserForwarding | None:
    return await session.scalar(
        select(UserForwarding)
        .where(UserForwarding.id == user_id, UserForwarding.tenant_id == scope.tenant_id)
        .with_for_update()
    )


async def get_rules(session: AsyncSession, scope: Scope, user_id: int) -> ForwardingRulesOut:
    """The user's rules (every one off until first saved)."""
    await _user(session, scope, user_id)
    return _out(user_id, await _row(session, scope, user_id))


async def _check(
    session: AsyncSession, scope: Scope, user_id: int, field: str, target: Destination | None
) -> None:
    if target is None:
        return
    place = f"body.{field}"
    if field == "do_not_disturb_to" and target.type is not DestinationType.VOICEMAIL:
        raise Invalid(place, "do-not-disturb sends calls to a voicemail box only")
    if target.type.value not in RULE_TARGETS:
        raise Invalid(place, f"forwarding goes to one of {', '.join(RULE_TARGETS)}")
    if target.type is DestinationType.AGENT and target.id == user_id:
        raise Invalid(place, "is this user: the call would come back to them")
    await destinations.check_destination(session, scope.tenant_id, target, place)


async def set_rules(
    session: AsyncSession,
    scope: Scope,
    user_id: int,
    data: ForwardingRules,
    expected: int | None,
) -> ForwardingRulesOut:
    """Replace the user's rules (live at the next call: the tenant's dialplan is rendered
    again, as for any configuration change)."""
    await _user(session, scope, user_id)
    for field in _RULES:
        await _check(session, scope, user_id, field, getattr(data, field))
    row = await _row(session, scope, user_id)
    if row is None:
        if expected not in (None, 0):
            raise PreconditionFailed("the object changed since it was read", current_version=0)
        row = UserForwarding(id=user_id, tenant_id=scope.tenant_id)
        session.add(row)
    else:
        ensure_version(row, expected)
    row.do_not_disturb = data.do_not_disturb
    row.no_answer_seconds = data.no_answer_seconds
    for field, prefix in _RULES.items():
        target: Destination | None = getattr(data, field)
        setattr(row, f"{prefix}_type", None if target is None else target.type.value)
        setattr(row, f"{prefix}_id", None if target is None else target.id)
    await session.flush()
    await audit.record(
        session, scope, "update", "user_forwarding", user_id, data.model_dump(mode="json")
    )
    return _out(user_id, row)


async def change_rules(
    session: AsyncSession, scope: Scope, user_id: int, **changes: Any
) -> ForwardingRulesOut:
    """Change some of the user's rules, keeping the others (the phone's feature codes)."""
    current = await get_rules(session, scope, user_id)
    rules = ForwardingRules.model_validate(
        {**current.model_dump(exclude={"user_id", "version"}), **changes}
    )
    return await set_rules(session, scope, user_id, rules, None)
