"""Recording policy (rules and settings) and the recordings themselves, for the API.

Recordings are the tenant's: its admins and supervisors reach all of them, its agents their
own when the tenant allows it, and operators none (they configure the policy on a tenant's
behalf, never listen). Every play, download, deletion and erasure is in the audit log.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.models import User
from graam_pbx.auth.principal import Role, Scope
from graam_pbx.db import ensure_version, flush_or_conflict, get_in_tenant, keyset_page
from graam_pbx.errors import Forbidden, Invalid, NotFound
from graam_pbx.prompts import service as prompts_service
from graam_pbx.queues.models import Queue
from graam_pbx.recordings.models import (
    DEFAULT_RETENTION_DAYS,
    DEFAULT_TELLS_AGENT,
    Recording,
    RecordingRule,
    RecordingSettings,
)
from graam_pbx.recordings.schemas import Erasure, RuleCreate, RuleUpdate, SettingsUpdate
from graam_pbx.recordings.store import RecordingStore

_UNIQUE_RULE = "uq_recording_rules_tenant_id_queue_id_user_id_direction"
ERASE_BATCH = 500

prompts_service.register_prompt_user(
    "recording settings",
    RecordingSettings,
    "announce_prompt_id",
    "recording announcement",
    owner="tenant_id",
)


# ---- settings -------------------------------------------------------------------------------


async def settings_of(session: AsyncSession, tenant_id: int) -> RecordingSettings:
    """The tenant's settings; the defaults (not stored) when it has none."""
    found = await session.get(RecordingSettings, tenant_id)
    if found is not None:
        return found
    return RecordingSettings(
        tenant_id=tenant_id,
        announce_prompt_id=None,
        retention_days=DEFAULT_RETENTION_DAYS,
        agents_play_own=False,
        supervision_tells_agent=DEFAULT_TELLS_AGENT,
    )


async def update_settings(
    session: AsyncSession, scope: Scope, data: SettingsUpdate, expected: int | None
) -> RecordingSettings:
    changes = data.model_dump(exclude_unset=True)
    if "announce_prompt_id" in changes:
        await prompts_service.ensure_prompt(
            session, scope.tenant_id, data.announce_prompt_id, "body.announce_prompt_id"
        )
    settings = await session.get(RecordingSettings, scope.tenant_id, with_for_update=True)
    if settings is None:
        settings = await settings_of(session, scope.tenant_id)
        session.add(settings)
    else:
        ensure_version(settings, expected)
    for field, value in changes.items():
        setattr(settings, field, value)
    await session.flush()
    await audit.record(session, scope, "update", "recording_settings", scope.tenant_id, changes)
    return settings


# ---- rules ----------------------------------------------------------------------------------


async def _ensure_scope(session: AsyncSession, scope: Scope, data: RuleCreate) -> None:
    if data.queue_id is not None:
        found = await session.scalar(
            select(Queue.id).where(Queue.id == data.queue_id, Queue.tenant_id == scope.tenant_id)
        )
        if found is None:
            raise Invalid("body.queue_id", f"no queue {data.queue_id} in this tenant")
    if data.user_id is not None:
        role = await session.scalar(
            select(User.role).where(User.id == data.user_id, User.tenant_id == scope.tenant_id)
        )
        if role != Role.AGENT.value:
            raise Invalid("body.user_id", f"no agent {data.user_id} in this tenant")


async def create_rule(session: AsyncSession, scope: Scope, data: RuleCreate) -> RecordingRule:
    await _ensure_scope(session, scope, data)
    rule = RecordingRule(tenant_id=scope.tenant_id, **data.model_dump())
    session.add(rule)
    await flush_or_conflict(
        session,
        taken={_UNIQUE_RULE: ("scope", "a rule for this scope and direction already exists")},
    )
    await audit.record(
        session, scope, "create", "recording_rule", rule.id, data.model_dump(mode="json")
    )
    return rule


async def list_rules(
    session: AsyncSession, scope: Scope, *, after_id: int | None, limit: int
) -> tuple[list[RecordingRule], int | None]:
    statement = select(RecordingRule).where(RecordingRule.tenant_id == scope.tenant_id)
    return await keyset_page(session, statement, RecordingRule.id, after_id, limit)


async def get_rule(session: AsyncSession, scope: Scope, rule_id: int) -> RecordingRule:
    return await get_in_tenant(session, RecordingRule, scope.tenant_id, rule_id)


async def update_rule(
    session: AsyncSession, scope: Scope, rule_id: int, data: RuleUpdate, expected: int | None
) -> RecordingRule:
    rule = await get_in_tenant(session, RecordingRule, scope.tenant_id, rule_id)
    ensure_version(rule, expected)
    rule.mode = data.mode.value
    await session.flush()
    await audit.record(session, scope, "update", "recording_rule", rule.id, {"mode": rule.mode})
    return rule


async def delete_rule(session: AsyncSession, scope: Scope, rule_id: int) -> None:
    rule = await get_in_tenant(session, RecordingRule, scope.tenant_id, rule_id)
    await session.delete(rule)
    await session.flush()
    await audit.record(session, scope, "delete", "recording_rule", rule_id, {"mode": rule.mode})


# ---- recordings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    agent_user_id: int | None = None
    queue_id: int | None = None
    linkedid: str | None = None
    party_number: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def _visible(session: AsyncSession, scope: Scope) -> Select[Recording]:
    """The scope's recordings: the tenant's for its admins and supervisors, an agent's own
    when the tenant allows it; refused to operators and to agents otherwise."""
    principal = scope.principal
    if principal.is_operator:
        raise Forbidden("recordings are the tenant's: operators do not reach them")
    statement = select(Recording).where(Recording.tenant_id == scope.tenant_id)
    if principal.role is Role.AGENT:
        if not (await settings_of(session, scope.tenant_id)).agents_play_own:
            raise Forbidden("this tenant does not let agents play their recordings")
        statement = statement.where(Recording.agent_user_id == principal.user_id)
    return statement


async def list_recordings(
    session: AsyncSession, scope: Scope, filters: Filters, *, after_id: int | None, limit: int
) -> tuple[list[Recording], int | None]:
    statement = await _visible(session, scope)
    if filters.agent_user_id is not None:
        statement = statement.where(Recording.agent_user_id == filters.agent_user_id)
    if filters.queue_id is not None:
        statement = statement.where(Recording.queue_id == filters.queue_id)
    if filters.linkedid is not None:
        statement = statement.where(Recording.linkedid == filters.linkedid)
    if filters.party_number is not None:
        statement = statement.where(Recording.party_number == filters.party_number)
    if filters.since is not None:
        statement = statement.where(Recording.started_at >= filters.since)
    if filters.until is not None:
        statement = statement.where(Recording.started_at < filters.until)
    return await keyset_page(session, statement, Recording.id, after_id, limit)


async def latest_recordings(session: AsyncSession, scope: Scope, limit: int) -> list[Recording]:
    """The scope's ``limit`` latest recordings, the latest first (the console's list)."""
    statement = (await _visible(session, scope)).order_by(Recording.id.desc()).limit(limit)
    return list((await session.scalars(statement)).all())


async def names(
    session: AsyncSession, scope: Scope, recordings: list[Recording]
) -> tuple[dict[int, str], dict[int, str]]:
    """The agents' and the queues' names of these recordings (those that still exist)."""
    agents = {r.agent_user_id for r in recordings if r.agent_user_id is not None}
    queues = {r.queue_id for r in recordings if r.queue_id is not None}
    agent_rows = await session.execute(
        select(User.id, User.display_name).where(
            User.tenant_id == scope.tenant_id, User.id.in_(agents)
        )
    )
    queue_rows = await session.execute(
        select(Queue.id, Queue.name).where(Queue.tenant_id == scope.tenant_id, Queue.id.in_(queues))
    )
    return (
        {user: name for user, name in agent_rows.all()},
        {queue: name for queue, name in queue_rows.all()},
    )


async def get_recording(session: AsyncSession, scope: Scope, recording_id: int) -> Recording:
    statement = (await _visible(session, scope)).where(Recording.id == recording_id)
    found = await session.scalar(statement)
    if found is None:
        raise NotFound(f"no recording {recording_id}")
    return found


async def audit_access(
    session: AsyncSession, scope: Scope, recording: Recording, action: str, detail: dict[str, Any]
) -> None:
    """``played`` or ``downloaded``: who reached which recording."""
    await audit.record(
        session,
        scope,
        action,
        "recording",
        recording.id,
        {"linkedid": recording.linkedid, **detail},
    )


def _removable(scope: Scope) -> None:
    if scope.principal.role is not Role.ADMIN or scope.principal.is_operator:
        raise Forbidden("only the tenant's admins delete recordings")


async def delete_recording(
    session: AsyncSession, scope: Scope, store: RecordingStore, recording_id: int
) -> None:
    """The file, then the row, in the request's transaction (a file already gone is fine)."""
    _removable(scope)
    recording = await get_recording(session, scope, recording_id)
    await asyncio.to_thread(store.delete, recording.storage_key)
    await session.delete(recording)
    await session.flush()
    await audit.record(
        session, scope, "delete", "recording", recording_id, {"linkedid": recording.linkedid}
    )


async def erase(session: AsyncSession, scope: Scope, store: RecordingStore, data: Erasure) -> int:
    """Every recording of one person (the other party, or an agent): files, then rows."""
    _removable(scope)
    column: Any = (
        Recording.party_number if data.party_number is not None else Recording.agent_user_id
    )
    value = data.party_number if data.party_number is not None else data.agent_user_id
    erased = 0
    while True:
        rows = (
            await session.execute(
                select(Recording.id, Recording.storage_key)
                .where(Recording.tenant_id == scope.tenant_id, column == value)
                .limit(ERASE_BATCH)
            )
        ).all()
        if not rows:
            break
        for _, key in rows:
            await asyncio.to_thread(store.delete, key)
        await session.execute(delete(Recording).where(Recording.id.in_([r for r, _ in rows])))
        erased += len(rows)
    await audit.record(
        session,
        scope,
        "erase",
        "recording",
        None,
        {**data.model_dump(exclude_none=True), "erased": erased},
    )
    return erased
