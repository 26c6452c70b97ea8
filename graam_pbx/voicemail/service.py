"""Voicemail boxes: a number, a PIN its owner dials in with, and where messages are mailed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.ami import AmiError, FieldValue, Message
from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Scope
from graam_pbx.db import ensure_version, flush_or_conflict, get_in_tenant, keyset_page
from graam_pbx.destinations import service as destinations
from graam_pbx.destinations.schemas import DestinationType
from graam_pbx.errors import GraamError, NotFound
from graam_pbx.prompts import service as prompts_service
from graam_pbx.voicemail.models import VoicemailBox
from graam_pbx.voicemail.schemas import BoxCreate, BoxUpdate
from graam_pbx.voicemail.spool import FOLDERS, READ_FOLDER, StoredMessage, VoicemailSpool

_UNIQUE_NUMBER = "uq_voicemail_boxes_tenant_id_number"

# Calls can be sent to a box, and its greeting plays a prompt.
destinations.register_target(DestinationType.VOICEMAIL, VoicemailBox)
prompts_service.register_prompt_user(
    "voicemail box", VoicemailBox, "greeting_prompt_id", "greeting"
)


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
    await destinations.ensure_no_references(
        session, scope.tenant_id, DestinationType.VOICEMAIL, box.id, f"voicemail box {box.number}"
    )
    await session.delete(box)
    await session.flush()
    await audit.record(session, scope, "delete", "voicemail_box", box_id, {"number": box.number})


# ---- messages -------------------------------------------------------------------------------
# Messages are Asterisk's: read from its spool, moved and removed by Asterisk itself over AMI
# (VoicemailMove, VoicemailRemove), which locks the folder, keeps msgNNNN contiguous and
# refreshes the MWI counts of the box's phones.


class VoicemailUnavailable(GraamError):
    """Asterisk's voicemail cannot be reached or refused the change."""

    status_code = 503
    error_id = "voicemail-unavailable"


class MessageAmi(Protocol):
    async def action(
        self,
        name: str,
        fields: Mapping[str, FieldValue] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Message: ...


def _spool_or_raise(spool: VoicemailSpool | None) -> VoicemailSpool:
    if spool is None:
        raise VoicemailUnavailable(
            "Asterisk's voicemail spool is not reachable from here (GRAAM_VOICEMAIL_SPOOL_DIR)"
        )
    return spool


def _message_key(msg_id: str) -> tuple[int, int]:
    created, _, counter = msg_id.partition("-")
    return int(created), int(counter, 16)


async def list_messages(
    session: AsyncSession,
    scope: Scope,
    box_id: int,
    spool: VoicemailSpool | None,
    *,
    folder: str | None,
    before: str | None,
    limit: int,
) -> tuple[list[StoredMessage], str | None]:
    """A page of the box's messages, newest first, and the id the next page starts after."""
    box = await get_in_tenant(session, VoicemailBox, scope.tenant_id, box_id)
    folders = (folder,) if folder else FOLDERS
    messages = await _spool_or_raise(spool).messages(scope.tenant_id, box.number, folders)
    messages.sort(key=lambda m: _message_key(m.msg_id), reverse=True)
    if before is not None:
        bound = _message_key(before)
        messages = [m for m in messages if _message_key(m.msg_id) < bound]
    page = messages[:limit]
    return page, page[-1].msg_id if len(messages) > limit else None


async def _find(spool: VoicemailSpool, box: VoicemailBox, msg_id: str) -> StoredMessage:
    message = await spool.find(box.tenant_id, box.number, msg_id)
    if message is None:
        raise NotFound(f"no message {msg_id} in voicemail box {box.number}")
    return message


async def get_message(
    session: AsyncSession, scope: Scope, box_id: int, msg_id: str, spool: VoicemailSpool | None
) -> StoredMessage:
    """One message of one of the tenant's boxes, in whichever folder it is."""
    box = await get_in_tenant(session, VoicemailBox, scope.tenant_id, box_id)
    return await _find(_spool_or_raise(spool), box, msg_id)


async def message_audio(
    session: AsyncSession, scope: Scope, box_id: int, msg_id: str, spool: VoicemailSpool | None
) -> tuple[StoredMessage, bytes]:
    """A message and its recording (WAV)."""
    box = await get_in_tenant(session, VoicemailBox, scope.tenant_id, box_id)
    spool = _spool_or_raise(spool)
    message = await _find(spool, box, msg_id)
    audio = await spool.audio(message)
    if audio is None:
        raise NotFound(f"message {msg_id} has no WAV recording (any more)")
    return message, audio


async def _ami_change(ami: MessageAmi | None, action: str, fields: dict[str, str]) -> None:
    if ami is None:
        raise VoicemailUnavailable("not connected to Asterisk")
    try:
        response = await ami.action(action, fields)
    except AmiError as err:
        raise VoicemailUnavailable(f"Asterisk did not {action}: {err}") from err
    # Both outcomes are "Response: Success"; only the message tells them apart.
    outcome = response.get("Message", "")
    if "fail" in outcome.lower():
        raise VoicemailUnavailable(f"Asterisk refused {action}: {outcome.strip()}")


async def mark_message_read(
    session: AsyncSession,
    scope: Scope,
    box_id: int,
    msg_id: str,
    spool: VoicemailSpool | None,
    ami: MessageAmi | None,
) -> StoredMessage:
    """Move a new message to Old, as a phone user listening to it would; a read one stays."""
    box = await get_in_tenant(session, VoicemailBox, scope.tenant_id, box_id)
    spool = _spool_or_raise(spool)
    message = await _find(spool, box, msg_id)
    if message.read:
        return message
    await _ami_change(
        ami,
        "VoicemailMove",
        {
            "Context": f"t{scope.tenant_id}",
            "Mailbox": box.number,
            "Folder": message.folder,
            "ID": msg_id,
            "ToFolder": READ_FOLDER,
        },
    )
    moved = await _find(spool, box, msg_id)
    await audit.record(
        session,
        scope,
        "update",
        "voicemail_message",
        msg_id,
        {"box_id": box.id, "folder": [message.folder, moved.folder]},
    )
    return moved


async def delete_message(
    session: AsyncSession,
    scope: Scope,
    box_id: int,
    msg_id: str,
    spool: VoicemailSpool | None,
    ami: MessageAmi | None,
) -> None:
    """Remove a message and its recording for good."""
    box = await get_in_tenant(session, VoicemailBox, scope.tenant_id, box_id)
    message = await _find(_spool_or_raise(spool), box, msg_id)
    await _ami_change(
        ami,
        "VoicemailRemove",
        {
            "Context": f"t{scope.tenant_id}",
            "Mailbox": box.number,
            "Folder": message.folder,
            "ID": msg_id,
        },
    )
    await audit.record(
        session,
        scope,
        "delete",
        "voicemail_message",
        msg_id,
        {"box_id": box.id, "folder": message.folder, "caller_id": message.info.caller_id},
    )
