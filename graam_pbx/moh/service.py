"""Hold music classes: a tenant's prompts played in turn while callers wait."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Scope
from graam_pbx.db import (
    ensure_version,
    flush_or_conflict,
    get_in_tenant,
    keyset_page,
    violated_constraint,
)
from graam_pbx.errors import Conflict, Invalid
from graam_pbx.moh.models import DEFAULT_CLASS, MohClass, MohClassPrompt
from graam_pbx.moh.schemas import MohClassCreate, MohClassUpdate
from graam_pbx.prompts import service as prompts_service
from graam_pbx.prompts.models import Prompt

_UNIQUE_NAME = "uq_moh_classes_tenant_id_name"

# A prompt a class plays is kept: deleting it is a 409 naming the class.
prompts_service.register_prompt_user(
    "hold music class", MohClassPrompt, "prompt_id", "music", owner="class_id"
)
# Objects playing a class hold a foreign key to it; deleting the class breaks one of these.
_USED_BY = {"fk_queues_moh_class_id_moh_classes": "a queue"}


async def create_class(session: AsyncSession, scope: Scope, data: MohClassCreate) -> MohClass:
    """A class of the tenant made of its prompts (422 on a prompt that is not the tenant's)."""
    await _check_prompts(session, scope.tenant_id, data.prompt_ids)
    moh_class = MohClass(tenant_id=scope.tenant_id, name=data.name)
    session.add(moh_class)
    await flush_or_conflict(session, taken={_UNIQUE_NAME: ("name", data.name)})
    _add_prompts(session, moh_class, data.prompt_ids)
    await session.flush()
    await audit.record(
        session, scope, "create", "moh-class", moh_class.id, data.model_dump(mode="json")
    )
    return moh_class


async def list_classes(
    session: AsyncSession, scope: Scope, *, after_id: int | None, limit: int
) -> tuple[list[tuple[MohClass, list[int]]], int | None]:
    """The tenant's classes, oldest first, each with its prompts in playing order."""
    statement = select(MohClass).where(MohClass.tenant_id == scope.tenant_id)
    classes, after = await keyset_page(session, statement, MohClass.id, after_id, limit)
    prompts = await _prompts_of(session, [c.id for c in classes])
    return [(c, prompts.get(c.id, [])) for c in classes], after


async def get_class(
    session: AsyncSession, scope: Scope, class_id: int
) -> tuple[MohClass, list[int]]:
    """One class of the tenant and its prompts."""
    moh_class = await get_in_tenant(session, MohClass, scope.tenant_id, class_id)
    return moh_class, (await _prompts_of(session, [moh_class.id])).get(moh_class.id, [])


async def update_class(
    session: AsyncSession,
    scope: Scope,
    class_id: int,
    data: MohClassUpdate,
    expected: int | None,
) -> MohClass:
    """Replace a class's prompts; queues playing it hear the new music after the reload."""
    moh_class = await get_in_tenant(session, MohClass, scope.tenant_id, class_id)
    ensure_version(moh_class, expected)
    await _check_prompts(session, scope.tenant_id, data.prompt_ids)
    await session.execute(delete(MohClassPrompt).where(MohClassPrompt.class_id == moh_class.id))
    _add_prompts(session, moh_class, data.prompt_ids)
    # The class row itself changes too: its version (the ETag) moves with its music.
    moh_class.updated_at = datetime.now(UTC)
    await session.flush()
    await audit.record(
        session, scope, "update", "moh-class", moh_class.id, data.model_dump(mode="json")
    )
    return moh_class


async def delete_class(session: AsyncSession, scope: Scope, class_id: int) -> None:
    """Remove a class nothing plays any more (409 while a queue uses it)."""
    moh_class = await get_in_tenant(session, MohClass, scope.tenant_id, class_id)
    name = moh_class.name  # a failed flush rolls back and expires the object
    await session.delete(moh_class)
    try:
        await session.flush()
    except IntegrityError as err:
        user = _USED_BY.get(violated_constraint(err) or "")
        if user is None:
            raise
        raise Conflict(
            f"hold music class {name!r} is still played by {user}: "
            "give it another music_on_hold first",
            used_by=[user],
        ) from err
    await audit.record(session, scope, "delete", "moh-class", class_id, {"name": name})


async def ensure_class(
    session: AsyncSession, tenant_id: int, name: str, field: str
) -> MohClass | None:
    """The tenant's class named ``name`` (None for the shared ``default``), else 422.

    The row is locked (KEY SHARE) until the caller commits, so a class cannot be deleted
    between this check and the foreign key that the caller's object then holds.
    """
    if name == DEFAULT_CLASS:
        return None
    found = await session.scalar(
        select(MohClass)
        .where(MohClass.tenant_id == tenant_id, MohClass.name == name)
        .with_for_update(key_share=True)
    )
    if found is None:
        raise Invalid(
            field,
            f"no hold music class {name!r}: use {DEFAULT_CLASS!r} or one of the tenant's "
            "classes (/api/v1/moh-classes)",
        )
    return found


async def _check_prompts(session: AsyncSession, tenant_id: int, prompt_ids: list[int]) -> None:
    known = set(
        await session.scalars(
            select(Prompt.id).where(Prompt.tenant_id == tenant_id, Prompt.id.in_(prompt_ids))
        )
    )
    for index, prompt_id in enumerate(prompt_ids):
        if prompt_id not in known:
            raise Invalid(f"body.prompt_ids.{index}", f"no prompt {prompt_id} in this tenant")


def _add_prompts(session: AsyncSession, moh_class: MohClass, prompt_ids: list[int]) -> None:
    session.add_all(
        MohClassPrompt(
            tenant_id=moh_class.tenant_id,
            class_id=moh_class.id,
            prompt_id=prompt_id,
            position=position,
        )
        for position, prompt_id in enumerate(prompt_ids)
    )


async def _prompts_of(session: AsyncSession, class_ids: list[int]) -> dict[int, list[int]]:
    rows = await session.execute(
        select(MohClassPrompt.class_id, MohClassPrompt.prompt_id)
        .where(MohClassPrompt.class_id.in_(class_ids))
        .order_by(MohClassPrompt.class_id, MohClassPrompt.position)
    )
    prompts: dict[int, list[int]] = {}
    for class_id, prompt_id in rows:
        prompts.setdefault(class_id, []).append(prompt_id)
    return prompts
