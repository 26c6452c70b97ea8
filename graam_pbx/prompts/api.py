from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile

from graam_pbx.deps import Admin, DbSession, Reader
from graam_pbx.fields import ObjectName
from graam_pbx.prompts import service, wav
from graam_pbx.prompts.schemas import PromptOut, PromptUpdate
from graam_pbx.rest import (
    IfMatch,
    Page,
    PageParams,
    error_responses,
    etag,
    expected_version,
    id_path,
    page_of,
    set_etag,
)

router = APIRouter(prefix="/api/v1/prompts", tags=["prompts"])
PromptId = Annotated[int, id_path("The prompt's id")]


@router.post(
    "",
    status_code=201,
    response_model=PromptOut,
    responses=error_responses(401, 403, 409, 422),
    summary="Upload a greeting: WAV, 16-bit PCM, mono, 8 or 16 kHz, 0.1 s to 10 min, 20 MB",
)
async def upload_prompt(
    name: Annotated[ObjectName, Form()],
    file: Annotated[UploadFile, File(description="The WAV file.")],
    scope: Admin,
    session: DbSession,
    response: Response,
) -> PromptOut:
    # One byte past the limit is enough to refuse: a huge upload is never read whole.
    audio = await file.read(wav.MAX_BYTES + 1)
    prompt = await service.create_prompt(session, scope, name, audio)
    set_etag(response, prompt.id, prompt.version)
    return PromptOut.model_validate(prompt)


@router.get("", response_model=Page[PromptOut], responses=error_responses(401, 403, 422))
async def list_prompts(scope: Reader, session: DbSession, page: PageParams) -> Page[PromptOut]:
    prompts, after = await service.list_prompts(
        session, scope, after_id=page.after_id, limit=page.limit
    )
    return page_of([PromptOut.model_validate(p) for p in prompts], after)


@router.get("/{prompt_id}", response_model=PromptOut, responses=error_responses(401, 403, 404, 422))
async def get_prompt(
    prompt_id: PromptId, scope: Reader, session: DbSession, response: Response
) -> PromptOut:
    prompt = await service.get_prompt(session, scope, prompt_id)
    set_etag(response, prompt.id, prompt.version)
    return PromptOut.model_validate(prompt)


@router.get(
    "/{prompt_id}/audio",
    response_class=Response,
    response_model=None,
    responses={
        200: {
            "description": "The WAV file as uploaded",
            "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
        },
        **error_responses(401, 403, 404, 422),
    },
)
async def get_audio(prompt_id: PromptId, scope: Reader, session: DbSession) -> Response:
    prompt, audio = await service.get_audio(session, scope, prompt_id)
    return Response(
        content=audio,
        media_type="audio/wav",
        headers={
            "ETag": etag(prompt.id, prompt.version),
            "Content-Disposition": f'inline; filename="{prompt.name}.wav"',
        },
    )


@router.patch(
    "/{prompt_id}",
    response_model=PromptOut,
    responses=error_responses(401, 403, 404, 409, 412, 422),
    summary="Rename a prompt",
)
async def rename_prompt(
    prompt_id: PromptId,
    body: PromptUpdate,
    scope: Admin,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> PromptOut:
    prompt = await service.rename_prompt(
        session, scope, prompt_id, body, expected_version(if_match, prompt_id)
    )
    set_etag(response, prompt.id, prompt.version)
    return PromptOut.model_validate(prompt)


@router.delete(
    "/{prompt_id}",
    status_code=204,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Delete a prompt (409 while a greeting or an announcement uses it)",
)
async def delete_prompt(prompt_id: PromptId, scope: Admin, session: DbSession) -> Response:
    await service.delete_prompt(session, scope, prompt_id)
    return Response(status_code=204)
