"""Voicemail boxes: a number, a PIN its owner dials in with, and where messages are mailed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Scope
from graam_pbx.db import ensure_version, flush_or_conflict, get_in_tenant, keyset_page
from graam_pbx.prompts import service as prompts_service
from graam_pbx.routing import service as routing
from graam_pbx.routing.schemas import DestinationType
from graam_pbx.voicemail.models import VoicemailBox
from graam_pbx.voicemail.schemas import BoxCreate, BoxUpdate

_UNIQUE_NUMBER = "uq_voicemail_boxes_tenant_id_number"


def _audited(changes: dict[str, Any], pin: str) -> dict[str, Any]:
    # The audit says the PIN was set or changed, never what it is.
    return {**changes, "pin": pin} if "pin" in changes else changes


async def create_box(session: AsyncSession, scope: Scope, data: BoxCreate) -> VoicemailBox:
    """A box of the scope's tenant; its number is unique in the tenant."""
    await prompts_service.ensure_prompt(
        session, scope.tenant_id, data.greeting_prompt_id, "body.greeting_prompt_id"
    )
    box = VoicemailBox(tenant_id=scope.tenant_id, **data.model_dump())
    session.add(box)
    await flush_or_conflict(session, taken={_UNIQUE_NUMBER: ("number", box.number)})
    await audit.record(
        session, scope, "create", "voicemail_box", box.id, _audited(data.model_dump(), "set")
    )
    return box


async def list_boxes(
    session: AsyncSession, scope: Scope, *, after_id: int | None, limit: int
) -> tuple[list[VoicemailBox], int | None]:
    """The tenant's voicemail boxes."""
    statement = select(VoicemailBox).where(VoicemailBox.tenant_id == scope.tenant_id)
    return await keyset_page(session, statement, VoicemailBox.id, after_id, limit)


async def get_box(session: AsyncSession, scope: Scope, box_id: int) -> VoicemailBox:
    """One box of the tenant."""
    return await get_in_tenant(session, VoicemailBox, scope.tenant_id, box_id)


async def update_box(
    session: AsyncSession, scope: Scope, box_id: int, data: BoxUpdate, expected: int | None
) -> VoicemailBox:
    """Change a box's number, name, PIN, e-mail or greeting."""
    box = await get_in_tenant(session, VoicemailBox, scope.tenant_id, box_id)
    ensure_version(box, expected)
    changes = data.model_dump(exclude_unset=True)
    if "greeting_prompt_id" in changes:
        await prompts_service.ensure_prompt(
            session, scope.tenant_id, data.greeting_prompt_id, "body.greeting_prompt_id"
        )
    for field, value in changes.items():
        setattr(box, field, value)
    await flush_or_conflict(session, taken={_UNIQUE_NUMBER: ("number", box.number)})
    await audit.record(
        session, scope, "update", "voicemail_box", box.id, _audited(changes, "changed")
    )
    return box


async def delete_box(session: AsyncSession, scope: Scope, box_id: int) -> None:
    """Remove a box nothing routes calls to any more."""
    box = await get_in_tenant(session, VoicemailBox, scope.tenant_id, box_id)
    await routing.ensure_no_references(
        session, scope.tenant_id, DestinationType.VOICEMAIL, box.id, f"voicemail box {box.number}"
    )
    await session.delete(box)
    await session.flush()
    await audit.record(session, scope, "delete", "voicemail_box", box_id, {"number": box.number})
