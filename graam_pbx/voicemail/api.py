from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from graam_pbx.deps import Admin, DbSession, Reader
from graam_pbx.errors import Invalid
from graam_pbx.rest import (
    MAX_PAGE,
    CursorParam,
    ErrorOut,
    IfMatch,
    Page,
    PageParams,
    error_responses,
    expected_version,
    id_path,
    page_of,
    set_etag,
)
from graam_pbx.voicemail import service
from graam_pbx.voicemail.schemas import BoxCreate, BoxOut, BoxUpdate, MessageFolder, MessageOut
from graam_pbx.voicemail.spool import MSG_ID_PATTERN, StoredMessage, VoicemailSpool, is_msg_id

router = APIRouter(prefix="/api/v1/voicemail-boxes", tags=["voicemail"])
BoxId = Annotated[int, id_path("The box's id")]


@router.post(
    "", status_code=201, response_model=BoxOut, responses=error_responses(401, 403, 409, 422)
)
async def create_box(
    body: BoxCreate, scope: Admin, session: DbSession, response: Response
) -> BoxOut:
    box = await service.create_box(session, scope, body)
    set_etag(response, box.id, box.version)
    return BoxOut.model_validate(box)


@router.get("", response_model=Page[BoxOut], responses=error_responses(401, 403, 422))
async def list_boxes(scope: Reader, session: DbSession, page: PageParams) -> Page[BoxOut]:
    boxes, after = await service.list_boxes(
        session, scope, after_id=page.after_id, limit=page.limit
    )
    return page_of([BoxOut.model_validate(b) for b in boxes], after)


@router.get("/{box_id}", response_model=BoxOut, responses=error_responses(401, 403, 404, 422))
async def get_box(box_id: BoxId, scope: Reader, session: DbSession, response: Response) -> BoxOut:
    box = await service.get_box(session, scope, box_id)
    set_etag(response, box.id, box.version)
    return BoxOut.model_validate(box)


@router.patch(
    "/{box_id}",
    response_model=BoxOut,
    responses=error_responses(401, 403, 404, 409, 412, 422),
)
async def update_box(
    box_id: BoxId,
    body: BoxUpdate,
    scope: Admin,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> BoxOut:
    box = await service.update_box(session, scope, box_id, body, expected_version(if_match, box_id))
    set_etag(response, box.id, box.version)
    return BoxOut.model_validate(box)


@router.delete(
    "/{box_id}",
    status_code=204,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Delete a box (409 while something still routes calls to it)",
)
async def delete_box(box_id: BoxId, scope: Admin, session: DbSession) -> Response:
    await service.delete_box(session, scope, box_id)
    return Response(status_code=204)


# ---- messages -------------------------------------------------------------------------------

MsgId = Annotated[
    str,
    Path(
        pattern=MSG_ID_PATTERN,
        max_length=40,
        description="The message's id (Asterisk's msg_id)",
        examples=["1796286012-00000003"],
    ),
]
_MESSAGE_ERRORS = error_responses(401, 403, 404, 422)
_AUDIO: dict[int | str, dict[str, Any]] = {
    200: {"content": {"audio/wav": {}}, "description": "The recording, WAV"}
}
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "Asterisk's voicemail cannot be reached from here"}
}


def _spool(request: Request) -> VoicemailSpool | None:
    spool: VoicemailSpool | None = getattr(request.app.state.runtime, "voicemail_spool", None)
    return spool


def _ami(request: Request) -> service.MessageAmi | None:
    ami: service.MessageAmi | None = getattr(request.app.state.runtime, "ami", None)
    return ami


def _message_out(box_id: int, message: StoredMessage) -> MessageOut:
    info = message.info
    return MessageOut(
        id=info.msg_id,
        box_id=box_id,
        folder=MessageFolder(message.folder),
        read=message.read,
        urgent=info.urgent or message.folder == MessageFolder.URGENT,
        caller_id=info.caller_id,
        caller_name=info.caller_name,
        caller_number=info.caller_number,
        duration=info.duration,
        received_at=info.received_at,
    )


def _encode_message_cursor(msg_id: str) -> str:
    return base64.urlsafe_b64encode(msg_id.encode()).decode().rstrip("=")


def _decode_message_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        value = ""
    if not is_msg_id(value):
        raise Invalid("query.cursor", "not a cursor returned by this API")
    return value


@router.get(
    "/{box_id}/messages",
    response_model=Page[MessageOut],
    responses={**_MESSAGE_ERRORS, **_UNAVAILABLE},
    summary="The box's messages, newest first (read ones are in Old)",
)
async def list_messages(
    box_id: BoxId,
    scope: Reader,
    session: DbSession,
    request: Request,
    folder: Annotated[MessageFolder | None, Query(description="Only this folder")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page")] = 50,
    cursor: CursorParam = None,
) -> Page[MessageOut]:
    messages, last = await service.list_messages(
        session,
        scope,
        box_id,
        _spool(request),
        folder=folder.value if folder else None,
        before=_decode_message_cursor(cursor),
        limit=limit,
    )
    return Page[MessageOut](
        items=[_message_out(box_id, m) for m in messages],
        next_cursor=_encode_message_cursor(last) if last else None,
    )


@router.get(
    "/{box_id}/messages/{msg_id}",
    response_model=MessageOut,
    responses={**_MESSAGE_ERRORS, **_UNAVAILABLE},
)
async def get_message(
    box_id: BoxId, msg_id: MsgId, scope: Reader, session: DbSession, request: Request
) -> MessageOut:
    message = await service.get_message(session, scope, box_id, msg_id, _spool(request))
    return _message_out(box_id, message)


@router.get(
    "/{box_id}/messages/{msg_id}/audio",
    response_class=Response,
    responses={**_AUDIO, **_MESSAGE_ERRORS, **_UNAVAILABLE},
    summary="Download the recording (audio/wav)",
)
async def get_message_audio(
    box_id: BoxId, msg_id: MsgId, scope: Reader, session: DbSession, request: Request
) -> Response:
    message, audio = await service.message_audio(session, scope, box_id, msg_id, _spool(request))
    stamp = message.info.received_at.strftime("%Y%m%d-%H%M%S")
    return Response(
        audio,
        media_type="audio/wav",
        headers={"Content-Disposition": f'attachment; filename="voicemail-{stamp}-{msg_id}.wav"'},
    )


@router.post(
    "/{box_id}/messages/{msg_id}/read",
    response_model=MessageOut,
    responses={**_MESSAGE_ERRORS, **_UNAVAILABLE},
    summary="Mark a message read: Asterisk moves it to Old and updates the phones' MWI",
)
async def mark_message_read(
    box_id: BoxId, msg_id: MsgId, scope: Reader, session: DbSession, request: Request
) -> MessageOut:
    message = await service.mark_message_read(
        session, scope, box_id, msg_id, _spool(request), _ami(request)
    )
    return _message_out(box_id, message)


@router.delete(
    "/{box_id}/messages/{msg_id}",
    status_code=204,
    responses={**_MESSAGE_ERRORS, **_UNAVAILABLE},
    summary="Delete a message and its recording",
)
async def delete_message(
    box_id: BoxId, msg_id: MsgId, scope: Admin, session: DbSession, request: Request
) -> Response:
    await service.delete_message(session, scope, box_id, msg_id, _spool(request), _ami(request))
    return Response(status_code=204)
