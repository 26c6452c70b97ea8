from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.auth.principal import Scope
from graam_pbx.deps import Admin, DbSession, Member, Reader
from graam_pbx.errors import NotFound
from graam_pbx.fields import IsoDateTime
from graam_pbx.recordings import service
from graam_pbx.recordings.ranges import Unsatisfiable, byte_range
from graam_pbx.recordings.schemas import (
    Erasure,
    ErasureOut,
    PartyNumber,
    RecordingOut,
    RuleCreate,
    RuleOut,
    RuleUpdate,
    SettingsOut,
    SettingsUpdate,
)
from graam_pbx.recordings.store import RecordingStore
from graam_pbx.rest import (
    ErrorOut,
    IfMatch,
    Page,
    PageParams,
    error_responses,
    expected_version,
    id_path,
    id_query,
    page_of,
    set_etag,
)

TAGS: list[str | Any] = ["recordings"]
router = APIRouter(tags=TAGS)
RecordingId = Annotated[int, id_path("The recording's id")]
RuleId = Annotated[int, id_path("The rule's id")]
CHUNK_LIMIT = 8 * 1024 * 1024  # a range answer is at most this long (players ask again)

_AUDIO: dict[int | str, dict[str, Any]] = {
    200: {"content": {"audio/ogg": {}}, "description": "The recording, Ogg Opus"},
    206: {"content": {"audio/ogg": {}}, "description": "The range asked for"},
    416: {"model": ErrorOut, "description": "The range starts past the end"},
}


def _store(request: Request) -> RecordingStore:
    store: RecordingStore = request.app.state.runtime.recordings
    return store


# ---- settings -------------------------------------------------------------------------------


@router.get(
    "/api/v1/recording-settings",
    response_model=SettingsOut,
    responses=error_responses(401, 403),
    summary="The tenant's recording and supervision settings",
)
async def get_settings(scope: Reader, session: DbSession, response: Response) -> SettingsOut:
    settings = await service.settings_of(session, scope.tenant_id)
    set_etag(response, scope.tenant_id, settings.version or 0)
    return SettingsOut.model_validate(settings)


@router.patch(
    "/api/v1/recording-settings",
    response_model=SettingsOut,
    responses=error_responses(401, 403, 409, 412, 422),
    summary="Change the announcement, retention, agents' access or supervision notice",
)
async def update_settings(
    body: SettingsUpdate,
    scope: Admin,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> SettingsOut:
    expected = expected_version(if_match, scope.tenant_id)
    settings = await service.update_settings(session, scope, body, expected)
    set_etag(response, scope.tenant_id, settings.version)
    return SettingsOut.model_validate(settings)


# ---- rules ----------------------------------------------------------------------------------


@router.post(
    "/api/v1/recording-rules",
    status_code=201,
    response_model=RuleOut,
    responses=error_responses(401, 403, 409, 422),
    summary="Add a rule: the tenant, a queue or an agent; a direction or all; its mode",
)
async def create_rule(
    body: RuleCreate, scope: Admin, session: DbSession, response: Response
) -> RuleOut:
    rule = await service.create_rule(session, scope, body)
    set_etag(response, rule.id, rule.version)
    return RuleOut.model_validate(rule)


@router.get(
    "/api/v1/recording-rules", response_model=Page[RuleOut], responses=error_responses(401, 403)
)
async def list_rules(scope: Reader, session: DbSession, page: PageParams) -> Page[RuleOut]:
    rules, after = await service.list_rules(
        session, scope, after_id=page.after_id, limit=page.limit
    )
    return page_of([RuleOut.model_validate(r) for r in rules], after)


@router.get(
    "/api/v1/recording-rules/{rule_id}",
    response_model=RuleOut,
    responses=error_responses(401, 403, 404, 422),
)
async def get_rule(
    rule_id: RuleId, scope: Reader, session: DbSession, response: Response
) -> RuleOut:
    rule = await service.get_rule(session, scope, rule_id)
    set_etag(response, rule.id, rule.version)
    return RuleOut.model_validate(rule)


@router.patch(
    "/api/v1/recording-rules/{rule_id}",
    response_model=RuleOut,
    responses=error_responses(401, 403, 404, 412, 422),
)
async def update_rule(
    rule_id: RuleId,
    body: RuleUpdate,
    scope: Admin,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> RuleOut:
    rule = await service.update_rule(
        session, scope, rule_id, body, expected_version(if_match, rule_id)
    )
    set_etag(response, rule.id, rule.version)
    return RuleOut.model_validate(rule)


@router.delete(
    "/api/v1/recording-rules/{rule_id}",
    status_code=204,
    responses=error_responses(401, 403, 404, 422),
)
async def delete_rule(rule_id: RuleId, scope: Admin, session: DbSession) -> Response:
    await service.delete_rule(session, scope, rule_id)
    return Response(status_code=204)


# ---- recordings -----------------------------------------------------------------------------


@router.get(
    "/api/v1/recordings",
    response_model=Page[RecordingOut],
    responses=error_responses(401, 403, 422),
    summary="The tenant's recordings (an agent: its own, when the tenant allows it)",
)
async def list_recordings(
    scope: Member,
    session: DbSession,
    page: PageParams,
    agent_user_id: Annotated[int | None, id_query("Only this agent's")] = None,
    queue_id: Annotated[int | None, id_query("Only this queue's")] = None,
    linkedid: Annotated[
        str | None, Query(max_length=150, description="Only this call's (its CDRs' linkedid)")
    ] = None,
    party_number: Annotated[PartyNumber | None, Query(description="Only with this party")] = None,
    since: Annotated[IsoDateTime | None, Query(description="Started at or after")] = None,
    until: Annotated[IsoDateTime | None, Query(description="Started before")] = None,
) -> Page[RecordingOut]:
    filters = service.Filters(agent_user_id, queue_id, linkedid, party_number, since, until)
    recordings, after = await service.list_recordings(
        session, scope, filters, after_id=page.after_id, limit=page.limit
    )
    return page_of([RecordingOut.model_validate(r) for r in recordings], after)


@router.get(
    "/api/v1/recordings/{recording_id}",
    response_model=RecordingOut,
    responses=error_responses(401, 403, 404, 422),
)
async def get_recording(
    recording_id: RecordingId, scope: Member, session: DbSession
) -> RecordingOut:
    return RecordingOut.model_validate(await service.get_recording(session, scope, recording_id))


@router.get(
    "/api/v1/recordings/{recording_id}/audio",
    responses={**error_responses(401, 403, 404, 422), **_AUDIO},
    response_class=Response,
    summary="Play (ranges, to seek) or download a recording; audited",
    description="Answers `Range: bytes=…` requests with 206 and the range. The first request "
    "of a play (no range, or one starting at byte 0) and every download are in the audit log.",
)
async def recording_audio(
    recording_id: RecordingId,
    scope: Member,
    session: DbSession,
    request: Request,
    download: Annotated[bool, Query(description="As an attachment (a file to save)")] = False,
    range_header: Annotated[str | None, Header(alias="range")] = None,
) -> Response:
    return await audio_response(
        session, scope, _store(request), recording_id, range_header, download=download
    )


async def audio_response(
    session: AsyncSession,
    scope: Scope,
    store: RecordingStore,
    recording_id: int,
    range_header: str | None,
    *,
    download: bool,
) -> Response:
    """A recording's audio for whoever may play it (the API's and the console's): the whole
    file, or the range asked for; the first request of a play and every download audited."""
    recording = await service.get_recording(session, scope, recording_id)
    size = await asyncio.to_thread(store.size, recording.storage_key)
    if size is None:
        raise NotFound(f"recording {recording_id}'s file is gone")
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-store",
        "ETag": f'"{recording.sha256}"',
    }
    if download:
        headers["Content-Disposition"] = f'attachment; filename="recording-{recording.id}.ogg"'
    try:
        wanted = byte_range(range_header, size)
    except Unsatisfiable:
        refusal = ErrorOut(
            error_id="range-not-satisfiable",
            message=f"the recording has {size} bytes",
            details={"size": size},
        )
        return JSONResponse(
            refusal.model_dump(),
            status_code=416,
            headers={**headers, "Content-Range": f"bytes */{size}"},
        )
    first, last = wanted if wanted is not None else (0, size - 1)
    last = min(last, first + CHUNK_LIMIT - 1) if wanted is not None else last
    if download or first == 0:
        await service.audit_access(
            session, scope, recording, "downloaded" if download else "played", {}
        )
    body = await asyncio.to_thread(store.read, recording.storage_key, first, last - first + 1)
    media_type = "audio/ogg"
    if wanted is None:
        return Response(body, media_type=media_type, headers=headers)
    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return Response(body, status_code=206, media_type=media_type, headers=headers)


@router.delete(
    "/api/v1/recordings/{recording_id}",
    status_code=204,
    responses=error_responses(401, 403, 404, 422),
    summary="Delete a recording (admins); audited",
)
async def delete_recording(
    recording_id: RecordingId, scope: Member, session: DbSession, request: Request
) -> Response:
    await service.delete_recording(session, scope, _store(request), recording_id)
    return Response(status_code=204)


@router.post(
    "/api/v1/recording-erasures",
    response_model=ErasureOut,
    responses=error_responses(401, 403, 422),
    summary="Erase one person's recordings (admins): a party's number or an agent; audited",
)
async def erase(body: Erasure, scope: Member, session: DbSession, request: Request) -> ErasureOut:
    return ErasureOut(erased=await service.erase(session, scope, _store(request), body))
