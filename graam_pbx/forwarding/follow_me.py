"""Follow-me: a destination that rings phones, people and external numbers in steps.

Each step rings its members at once for its seconds; the first to answer takes the call.
An external member with ``confirm`` hears "press 1" when it answers: without the 1 it is hung
up and the step rings on, so a mobile's voicemail never takes the call. After the last step
the call goes to the follow-me's final destination (``dialplans/tenant_dest.conf.j2``).
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Scope
from graam_pbx.db import ensure_version, get_in_tenant, keyset_page
from graam_pbx.destinations import service as destinations
from graam_pbx.destinations.schemas import Destination, DestinationType
from graam_pbx.errors import Invalid
from graam_pbx.forwarding.models import FollowMe, FollowMeMember
from graam_pbx.forwarding.schemas import FollowMeIn, FollowMeMemberIn, FollowMeOut, FollowMeStep

destinations.register_target(DestinationType.FOLLOW_ME, FollowMe)
destinations.register_holder("follow-me", FollowMe, "final")
destinations.register_holder("follow-me member", FollowMeMember, "dest")


async def _check(session: AsyncSession, scope: Scope, data: FollowMeIn) -> None:
    for index, step in enumerate(data.steps):
        for position, member in enumerate(step.ring):
            field = f"body.steps.{index}.ring.{position}"
            if member.confirm and member.type != "external":
                raise Invalid(field, "only an external number is asked to press 1")
            target = Destination(type=DestinationType(member.type), id=member.id)
            await destinations.check_destination(session, scope.tenant_id, target, field)
    await destinations.check_destination(session, scope.tenant_id, data.final, "body.final")


async def _out(session: AsyncSession, follow_me: FollowMe) -> FollowMeOut:
    members = await session.scalars(
        select(FollowMeMember)
        .where(FollowMeMember.follow_me_id == follow_me.id)
        .order_by(FollowMeMember.step, FollowMeMember.id)
    )
    by_step: dict[int, list[FollowMeMemberIn]] = defaultdict(list)
    for member in members:
        by_step[member.step].append(
            FollowMeMemberIn.model_validate(
                {"type": member.dest_type, "id": member.dest_id, "confirm": member.confirm}
            )
        )
    return FollowMeOut(
        id=follow_me.id,
        name=follow_me.name,
        steps=[
            FollowMeStep(ring_seconds=seconds, ring=by_step[index])
            for index, seconds in enumerate(follow_me.step_seconds)
        ],
        final=Destination.stored(follow_me.final_type, follow_me.final_id),
        version=follow_me.version,
        created_at=follow_me.created_at,
        updated_at=follow_me.updated_at,
    )


def _write(session: AsyncSession, scope: Scope, follow_me: FollowMe, data: FollowMeIn) -> None:
    follow_me.name = data.name
    follow_me.step_seconds = [step.ring_seconds for step in data.steps]
    follow_me.final_type = data.final.type.value
    follow_me.final_id = data.final.id
    for index, step in enumerate(data.steps):
        for member in step.ring:
            session.add(
                FollowMeMember(
                    tenant_id=scope.tenant_id,
                    follow_me_id=follow_me.id,
                    step=index,
                    dest_type=member.type,
                    dest_id=member.id,
                    confirm=member.confirm,
                )
            )


async def create(session: AsyncSession, scope: Scope, data: FollowMeIn) -> FollowMeOut:
    """A follow-me of the scope's tenant."""
    await _check(session, scope, data)
    follow_me = FollowMe(
        tenant_id=scope.tenant_id,
        name=data.name,
        step_seconds=[step.ring_seconds for step in data.steps],
        final_type=data.final.type.value,
        final_id=data.final.id,
    )
    session.add(follow_me)
    await session.flush()
    _write(session, scope, follow_me, data)
    await session.flush()
    await audit.record(
        session, scope, "create", "follow_me", follow_me.id, data.model_dump(mode="json")
    )
    await session.refresh(follow_me)
    return await _out(session, follow_me)


async def list_all(
    session: AsyncSession, scope: Scope, *, after_id: int | None, limit: int
) -> tuple[list[FollowMeOut], int | None]:
    """The tenant's follow-mes."""
    statement = select(FollowMe).where(FollowMe.tenant_id == scope.tenant_id)
    found, after = await keyset_page(session, statement, FollowMe.id, after_id, limit)
    return [await _out(session, f) for f in found], after


async def get(session: AsyncSession, scope: Scope, follow_me_id: int) -> FollowMeOut:
    """One follow-me of the tenant."""
    return await _out(
        session, await get_in_tenant(session, FollowMe, scope.tenant_id, follow_me_id)
    )


async def replace(
    session: AsyncSession,
    scope: Scope,
    follow_me_id: int,
    data: FollowMeIn,
    expected: int | None,
) -> FollowMeOut:
    """Replace a follow-me's name, steps and final destination (live at the next call)."""
    follow_me = await get_in_tenant(session, FollowMe, scope.tenant_id, follow_me_id)
    ensure_version(follow_me, expected)
    await _check(session, scope, data)
    await session.execute(delete(FollowMeMember).where(FollowMeMember.follow_me_id == follow_me.id))
    _write(session, scope, follow_me, data)
    await session.flush()
    await audit.record(
        session, scope, "update", "follow_me", follow_me.id, data.model_dump(mode="json")
    )
    await session.refresh(follow_me)
    return await _out(session, follow_me)


async def remove(session: AsyncSession, scope: Scope, follow_me_id: int) -> None:
    """Delete a follow-me nothing sends calls to any more (409 otherwise)."""
    follow_me = await get_in_tenant(session, FollowMe, scope.tenant_id, follow_me_id)
    await destinations.ensure_no_references(
        session,
        scope.tenant_id,
        DestinationType.FOLLOW_ME,
        follow_me.id,
        f"follow-me {follow_me.name}",
    )
    await session.delete(follow_me)
    await session.flush()
    await audit.record(
        session, scope, "delete", "follow_me", follow_me_id, {"name": follow_me.name}
    )
