"""Prompts: a tenant's greetings and announcements, checked WAVs kept in Postgres."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Scope
from graam_pbx.db import ensure_version, flush_or_conflict, get_in_tenant, keyset_page
from graam_pbx.destinations import service as destinations
from graam_pbx.destinations.schemas import DestinationType
from graam_pbx.errors import Conflict, Invalid, NotFound
from graam_pbx.prompts import wav
from graam_pbx.prompts.models import Prompt
from graam_pbx.prompts.schemas import PromptUpdate

_UNIQUE_NAME = "uq_prompts_tenant_id_name"

# An announcement destination plays a prompt, then hangs up.
destinations.register_target(DestinationType.ANNOUNCEMENT, Prompt)


@dataclass(frozen=True)
class _PromptUser:
    label: str  # how a 409 names the user: "<label> <owner> (<role>)"
    model: Any  # a mapped class with a ``tenant_id`` column
    column: str
    role: str
    owner: str  # the column naming the user in the 409: its id, or its parent's


_PROMPT_USERS: list[_PromptUser] = []


def register_prompt_user(
    label: str, model: Any, column: str, role: str, *, owner: str = "id"
) -> None:
    """Declare that ``model`` plays the prompt named by ``column``: a prompt in use is kept."""
    user = _PromptUser(label, model, column, role, owner)
    if user not in _PROMPT_USERS:
        _PROMPT_USERS.append(user)


def _inspect(audio: bytes) -> tuple[wav.WavInfo, str]:
    return wav.inspect_greeting(audio), hashlib.sha256(audio).hexdigest()


async def create_prompt(session: AsyncSession, scope: Scope, name: str, audio: bytes) -> Prompt:
    """Keep an uploaded WAV after checking it (422 on ``body.file`` saying what is wrong)."""
    try:
        # Up to 20 MB to parse and hash: off the event loop.
        info, digest = await asyncio.to_thread(_inspect, audio)
    except ValueError as err:
        raise Invalid("body.file", str(err)) from None
    prompt = Prompt(
        tenant_id=scope.tenant_id,
        name=name,
        sample_rate=info.sample_rate,
        duration_ms=info.duration_ms,
        size_bytes=len(audio),
        sha256=digest,
        audio=audio,
    )
    session.add(prompt)
    await flush_or_conflict(session, taken={_UNIQUE_NAME: ("name", name)})
    await audit.record(
        session,
        scope,
        "create",
        "prompt",
        prompt.id,
        {
            "name": name,
            "sample_rate": info.sample_rate,
            "duration_ms": info.duration_ms,
            "size_bytes": len(audio),
            "sha256": digest,
        },
    )
    return prompt


async def list_prompts(
    session: AsyncSession, scope: Scope, *, after_id: int | None, limit: int
) -> tuple[list[Prompt], int | None]:
    """The tenant's prompts (metadata; the audio column is never loaded here)."""
    statement = select(Prompt).where(Prompt.tenant_id == scope.tenant_id)
    return await keyset_page(session, statement, Prompt.id, after_id, limit)


async def get_prompt(session: AsyncSession, scope: Scope, prompt_id: int) -> Prompt:
    """One prompt's metadata."""
    return await get_in_tenant(session, Prompt, scope.tenant_id, prompt_id)


async def get_audio(session: AsyncSession, scope: Scope, prompt_id: int) -> tuple[Prompt, bytes]:
    """A prompt and its WAV bytes."""
    prompt = await get_in_tenant(session, Prompt, scope.tenant_id, prompt_id)
    audio = await session.scalar(select(Prompt.audio).where(Prompt.id == prompt.id))
    if audio is None:
        raise NotFound(f"prompt {prompt_id} has no audio")
    return prompt, audio


async def ensure_prompt(
    session: AsyncSession, tenant_id: int, prompt_id: int | None, field: str
) -> None:
    """Refuse (422 on ``field``) a prompt id that is not one of this tenant's prompts."""
    if prompt_id is None:
        return
    found = await session.scalar(
        select(Prompt.id).where(Prompt.id == prompt_id, Prompt.tenant_id == tenant_id)
    )
    if found is None:
        raise Invalid(field, f"no prompt {prompt_id} in this tenant")


async def rename_prompt(
    session: AsyncSession, scope: Scope, prompt_id: int, data: PromptUpdate, expected: int | None
) -> Prompt:
    """Give a prompt another name (its audio never changes: upload a new one instead)."""
    prompt = await get_in_tenant(session, Prompt, scope.tenant_id, prompt_id)
    ensure_version(prompt, expected)
    before = prompt.name
    prompt.name = data.name
    await flush_or_conflict(session, taken={_UNIQUE_NAME: ("name", data.name)})
    await audit.record(
        session, scope, "update", "prompt", prompt.id, {"name": {"from": before, "to": data.name}}
    )
    return prompt


async def delete_prompt(session: AsyncSession, scope: Scope, prompt_id: int) -> None:
    """Remove a prompt no greeting or announcement uses any more."""
    prompt = await get_in_tenant(session, Prompt, scope.tenant_id, prompt_id)
    used_by = await uses_of(session, scope.tenant_id, prompt.id)
    if used_by:
        raise Conflict(
            f"prompt {prompt.name!r} is still used by: {', '.join(used_by)}", used_by=used_by
        )
    await session.delete(prompt)
    # A greeting set by a request committed since the check: its foreign key refuses.
    await flush_or_conflict(session, otherwise=f"prompt {prompt_id} was just made a greeting")
    await audit.record(
        session,
        scope,
        "delete",
        "prompt",
        prompt_id,
        {"name": prompt.name, "sha256": prompt.sha256},
    )


async def uses_of(session: AsyncSession, tenant_id: int, prompt_id: int) -> list[str]:
    """What plays a prompt: its registered users (IVR and voicemail greetings…), announcements."""
    found: list[str] = []
    for user in _PROMPT_USERS:
        rows = await session.scalars(
            select(getattr(user.model, user.owner)).where(
                user.model.tenant_id == tenant_id, getattr(user.model, user.column) == prompt_id
            )
        )
        found.extend(f"{user.label} {row} ({user.role})" for row in rows)
    return [
        *found,
        *await destinations.references_to(
            session, tenant_id, DestinationType.ANNOUNCEMENT, prompt_id
        ),
    ]
