"""Call queues and the agents answering them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Scope
from graam_pbx.db import ensure_version, flush_or_conflict, get_in_tenant, keyset_page
from graam_pbx.destinations import service as destinations
from graam_pbx.destinations.schemas import Destination, DestinationType
from graam_pbx.errors import Invalid, NotFound
from graam_pbx.moh import service as moh_service
from graam_pbx.moh.models import MohClass
from graam_pbx.queues.models import Queue, QueueMember
from graam_pbx.queues.schemas import MemberCreate, MemberUpdate, QueueCreate, QueueUpdate

_UNIQUE_NAME = "uq_queues_tenant_id_name"

# Calls can be sent to a queue, and a queue's fallback sends its callers somewhere else.
destinations.register_target(DestinationType.QUEUE, Queue)
destinations.register_holder("queue", Queue, "fallback")

# ---- queues ---------------------------------------------------------------------------------


async def create_queue(session: AsyncSession, scope: Scope, data: QueueCreate) -> Queue:
    """A queue of the scope's tenant; its fallback and hold music must be the tenant's."""
    await destinations.check_destination(session, scope.tenant_id, data.fallback, "body.fallback")
    moh_class = await moh_service.ensure_class(
        session, scope.tenant_id, data.music_on_hold, "body.music_on_hold"
    )
    values = data.model_dump(mode="json", exclude={"fallback"})
    queue = Queue(tenant_id=scope.tenant_id, moh_class_id=_class_id(moh_class), **values)
    _set_fallback(queue, data.fallback)
    _check_wallboard_thresholds(queue)
    session.add(queue)
    await flush_or_conflict(session, taken={_UNIQUE_NAME: ("name", data.name)})
    await audit.record(session, scope, "create", "queue", queue.id, data.model_dump(mode="json"))
    return queue


async def list_queues(
    session: AsyncSession, scope: Scope, *, after_id: int | None, limit: int
) -> tuple[list[Queue], int | None]:
    """The tenant's queues, oldest first."""
    statement = select(Queue).where(Queue.tenant_id == scope.tenant_id)
    return await keyset_page(session, statement, Queue.id, after_id, limit)


async def get_queue(session: AsyncSession, scope: Scope, queue_id: int) -> Queue:
    """One queue of the tenant."""
    return await get_in_tenant(session, Queue, scope.tenant_id, queue_id)


async def update_queue(
    session: AsyncSession, scope: Scope, queue_id: int, data: QueueUpdate, expected: int | None
) -> Queue:
    """Change a queue's settings; a fallback may not lead back to the queue itself."""
    queue = await get_in_tenant(session, Queue, scope.tenant_id, queue_id)
    ensure_version(queue, expected)
    changes = data.model_dump(mode="json", exclude_unset=True, exclude={"fallback"})
    if "fallback" in data.model_fields_set:
        fallback = data.fallback
        if fallback == Destination(type=DestinationType.QUEUE, id=queue.id):
            raise Invalid("body.fallback", "a queue cannot fall back to itself")
        await destinations.check_destination(session, scope.tenant_id, fallback, "body.fallback")
        _set_fallback(queue, fallback)
    if data.music_on_hold is not None:
        moh_class = await moh_service.ensure_class(
            session, scope.tenant_id, data.music_on_hold, "body.music_on_hold"
        )
        queue.moh_class_id = _class_id(moh_class)
    for field, value in changes.items():
        setattr(queue, field, value)
    _check_wallboard_thresholds(queue)
    await flush_or_conflict(session, taken={_UNIQUE_NAME: ("name", queue.name)})
    await audit.record(
        session,
        scope,
        "update",
        "queue",
        queue.id,
        data.model_dump(mode="json", exclude_unset=True),
    )
    return queue


async def delete_queue(session: AsyncSession, scope: Scope, queue_id: int) -> None:
    """Remove a queue (and its members) that no route sends calls to any more."""
    queue = await get_in_tenant(session, Queue, scope.tenant_id, queue_id)
    await destinations.ensure_no_references(
        session, scope.tenant_id, DestinationType.QUEUE, queue.id, f"queue {queue.name!r}"
    )
    await session.delete(queue)
    await session.flush()
    await audit.record(session, scope, "delete", "queue", queue_id, {"name": queue.name})


def _check_wallboard_thresholds(queue: Queue) -> None:
    """A wallboard warning comes before (or with) its alarm."""
    if queue.wallboard_waiting_warn > queue.wallboard_waiting_alarm:
        raise Invalid(
            "body.wallboard_waiting_warn",
            f"must not exceed wallboard_waiting_alarm ({queue.wallboard_waiting_alarm})",
        )
    if queue.wallboard_wait_warn_seconds > queue.wallboard_wait_alarm_seconds:
        raise Invalid(
            "body.wallboard_wait_warn_seconds",
            f"must not exceed wallboard_wait_alarm_seconds ({queue.wallboard_wait_alarm_seconds})",
        )


def _class_id(moh_class: MohClass | None) -> int | None:
    return None if moh_class is None else moh_class.id


def _set_fallback(queue: Queue, fallback: Destination | None) -> None:
    queue.fallback_type = None if fallback is None else fallback.type.value
    queue.fallback_id = None if fallback is None else fallback.id


# ---- members --------------------------------------------------------------------------------


async def list_members(
    session: AsyncSession, scope: Scope, queue_id: int, *, after_id: int | None, limit: int
) -> tuple[list[QueueMember], int | None]:
    """The agents of one of the tenant's queues."""
    await get_in_tenant(session, Queue, scope.tenant_id, queue_id)
    statement = select(QueueMember).where(
        QueueMember.tenant_id == scope.tenant_id, QueueMember.queue_id == queue_id
    )
    return await keyset_page(session, statement, QueueMember.id, after_id, limit)


async def add_member(
    session: AsyncSession, scope: Scope, queue_id: int, data: MemberCreate
) -> QueueMember:
    """Make one of the tenant's agents answer a queue (once per queue)."""
    queue = await get_in_tenant(session, Queue, scope.tenant_id, queue_id)
    await destinations.ensure_exists(
        session, scope.tenant_id, DestinationType.AGENT, data.user_id, "body.user_id"
    )
    member = QueueMember(
        tenant_id=scope.tenant_id, queue_id=queue.id, user_id=data.user_id, penalty=data.penalty
    )
    session.add(member)
    await flush_or_conflict(
        session, taken={"uq_queue_members_queue_id_user_id": ("user_id", data.user_id)}
    )
    await audit.record(
        session,
        scope,
        "add-member",
        "queue",
        queue.id,
        {"member_id": member.id, "user_id": member.user_id, "penalty": member.penalty},
    )
    return member


async def update_member(
    session: AsyncSession, scope: Scope, queue_id: int, member_id: int, data: MemberUpdate
) -> QueueMember:
    """Change a member's penalty."""
    member = await _member(session, scope, queue_id, member_id)
    before = member.penalty
    member.penalty = data.penalty
    await session.flush()
    await audit.record(
        session,
        scope,
        "update-member",
        "queue",
        queue_id,
        {"member_id": member.id, "penalty": {"from": before, "to": data.penalty}},
    )
    return member


async def remove_member(session: AsyncSession, scope: Scope, queue_id: int, member_id: int) -> None:
    """Stop an agent answering a queue."""
    member = await _member(session, scope, queue_id, member_id)
    await session.delete(member)
    await session.flush()
    await audit.record(
        session,
        scope,
        "remove-member",
        "queue",
        queue_id,
        {"member_id": member_id, "user_id": member.user_id},
    )


async def _member(
    session: AsyncSession, scope: Scope, queue_id: int, member_id: int
) -> QueueMember:
    await get_in_tenant(session, Queue, scope.tenant_id, queue_id)
    member = await session.scalar(
        select(QueueMember).where(
            QueueMember.id == member_id,
            QueueMember.queue_id == queue_id,
            QueueMember.tenant_id == scope.tenant_id,
        )
    )
    if member is None:
        raise NotFound(f"no member {member_id} in queue {queue_id}")
    return member
