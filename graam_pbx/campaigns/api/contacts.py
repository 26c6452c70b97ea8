"""Contact lists, their CSV imports and contacts, the do-not-call and opposition lists."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Response, UploadFile

from graam_pbx.campaigns import blocklists, contacts, imports
from graam_pbx.campaigns.models import ContactList
from graam_pbx.campaigns.schemas.contacts import (
    ConsentUpdate,
    ContactImportOut,
    ContactListCreate,
    ContactListOut,
    ContactListUpdate,
    ContactOut,
    DoNotCallCreate,
    DoNotCallOut,
    ImportRefusalOut,
    OppositionImportOut,
    OppositionListOut,
)
from graam_pbx.deps import Admin, DbSession, Reader
from graam_pbx.rest import (
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

router = APIRouter(prefix="/api/v1", tags=["campaigns"])

ListId = Annotated[int, id_path("The contact list's id.")]
ImportId = Annotated[int, id_path("The import's id.")]
ContactId = Annotated[int, id_path("The contact's id.")]
EntryId = Annotated[int, id_path("The do-not-call entry's id.")]

_TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {
        "model": ErrorOut,
        "description": f"The file is over {imports.MAX_IMPORT_BYTES // (1024 * 1024)} MB",
    }
}
_CSV_DESCRIPTION = (
    "A CSV file with a header row: `number` (required; E.164, or national in the list's "
    "region), optional `name`, `consent_at` (ISO 8601 or DD/MM/YYYY), `consent_source`; every "
    "other column is a custom field. `,` or `;` separated, UTF-8 with or without BOM."
)


def _list_out(contact_list: ContactList, count: int) -> ContactListOut:
    return ContactListOut(
        id=contact_list.id,
        tenant_id=contact_list.tenant_id,
        name=contact_list.name,
        default_region=contact_list.default_region,
        contacts=count,
        version=contact_list.version,
        created_at=contact_list.created_at,
        updated_at=contact_list.updated_at,
    )


async def _one_list_out(session: DbSession, contact_list: ContactList) -> ContactListOut:
    counts = await contacts.contact_counts(session, [contact_list.id])
    return _list_out(contact_list, counts[contact_list.id])


@router.post(
    "/contact-lists",
    status_code=201,
    response_model=ContactListOut,
    responses=error_responses(401, 403, 409, 422),
    summary="Create a contact list",
)
async def create_list(
    data: ContactListCreate, scope: Admin, session: DbSession, response: Response
) -> ContactListOut:
    contact_list = await contacts.create_list(session, scope, data)
    await session.refresh(contact_list)
    set_etag(response, contact_list.id, contact_list.version)
    return _list_out(contact_list, 0)


@router.get(
    "/contact-lists",
    response_model=Page[ContactListOut],
    responses=error_responses(401, 403, 422),
    summary="The tenant's contact lists",
)
async def list_lists(scope: Reader, session: DbSession, page: PageParams) -> Page[ContactListOut]:
    found, after = await contacts.list_lists(
        session, scope, after_id=page.after_id, limit=page.limit
    )
    counts = await contacts.contact_counts(session, [c.id for c in found])
    return page_of([_list_out(c, counts[c.id]) for c in found], after)


@router.get(
    "/contact-lists/{list_id}",
    response_model=ContactListOut,
    responses=error_responses(401, 403, 404, 422),
    summary="A contact list",
)
async def get_list(
    list_id: ListId, scope: Reader, session: DbSession, response: Response
) -> ContactListOut:
    contact_list = await contacts.get_list(session, scope, list_id)
    set_etag(response, contact_list.id, contact_list.version)
    return await _one_list_out(session, contact_list)


@router.patch(
    "/contact-lists/{list_id}",
    response_model=ContactListOut,
    responses=error_responses(401, 403, 404, 409, 412, 422),
    summary="Rename a contact list or change its default region",
    description="The default region applies to later imports; stored numbers keep theirs.",
)
async def update_list(
    list_id: ListId,
    data: ContactListUpdate,
    scope: Admin,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> ContactListOut:
    contact_list = await contacts.update_list(
        session, scope, list_id, data, expected_version(if_match, list_id)
    )
    set_etag(response, contact_list.id, contact_list.version)
    return await _one_list_out(session, contact_list)


@router.delete(
    "/contact-lists/{list_id}",
    status_code=204,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Delete a contact list, its contacts and imports (409 while a campaign uses it)",
)
async def delete_list(list_id: ListId, scope: Admin, session: DbSession) -> Response:
    await contacts.delete_list(session, scope, list_id)
    return Response(status_code=204)


async def _list_to_import_into(list_id: ListId, scope: Admin, session: DbSession) -> ContactList:
    # A dependency, so that another tenant's list is a 404 before the upload is looked at.
    return await contacts.get_list(session, scope, list_id)


@router.post(
    "/contact-lists/{list_id}/imports",
    status_code=201,
    response_model=ContactImportOut,
    responses={**error_responses(401, 403, 404, 422), **_TOO_LARGE},
    summary="Import a CSV file into a list (up to 50 MB and 1,000,000 rows)",
    description=_CSV_DESCRIPTION
    + " A number already in the list, or met earlier in the file, is merged (later non-empty "
    "values win). Every refused row is reported with its line, field and reason.",
)
async def import_contacts(
    contact_list: Annotated[ContactList, Depends(_list_to_import_into)],
    file: Annotated[UploadFile, File(description="The CSV file.")],
    scope: Admin,
    session: DbSession,
) -> ContactImportOut:
    record = await imports.import_csv(
        session, scope, contact_list, file.filename or "upload.csv", file.file
    )
    await session.refresh(record)
    return ContactImportOut.model_validate(record)


@router.get(
    "/contact-lists/{list_id}/imports",
    response_model=Page[ContactImportOut],
    responses=error_responses(401, 403, 404, 422),
    summary="A list's imports and their counts",
)
async def list_imports(
    list_id: ListId, scope: Reader, session: DbSession, page: PageParams
) -> Page[ContactImportOut]:
    contact_list = await contacts.get_list(session, scope, list_id)
    found, after = await imports.list_imports(
        session, scope, contact_list.id, after_id=page.after_id, limit=page.limit
    )
    return page_of([ContactImportOut.model_validate(i) for i in found], after)


@router.get(
    "/contact-lists/{list_id}/imports/{import_id}/refusals",
    response_model=Page[ImportRefusalOut],
    responses=error_responses(401, 403, 404, 422),
    summary="The rows an import refused: line, field, reason and value",
)
async def list_refusals(
    list_id: ListId, import_id: ImportId, scope: Reader, session: DbSession, page: PageParams
) -> Page[ImportRefusalOut]:
    found, after = await imports.list_refusals(
        session, scope, list_id, import_id, after_line=page.after_id, limit=page.limit
    )
    return page_of([ImportRefusalOut.model_validate(r) for r in found], after)


@router.get(
    "/contact-lists/{list_id}/contacts",
    response_model=Page[ContactOut],
    responses=error_responses(401, 403, 404, 422),
    summary="A list's contacts",
)
async def list_contacts(
    list_id: ListId, scope: Reader, session: DbSession, page: PageParams
) -> Page[ContactOut]:
    found, after = await contacts.list_contacts(
        session, scope, list_id, after_id=page.after_id, limit=page.limit
    )
    return page_of([ContactOut.model_validate(c) for c in found], after)


@router.get(
    "/contact-lists/{list_id}/contacts/{contact_id}",
    response_model=ContactOut,
    responses=error_responses(401, 403, 404, 422),
    summary="A contact",
)
async def get_contact(
    list_id: ListId, contact_id: ContactId, scope: Reader, session: DbSession
) -> ContactOut:
    return ContactOut.model_validate(
        await contacts.get_contact(session, scope, list_id, contact_id)
    )


@router.patch(
    "/contact-lists/{list_id}/contacts/{contact_id}",
    response_model=ContactOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Record (or withdraw, with a null date) the proof of a contact's consent",
)
async def record_consent(
    list_id: ListId, contact_id: ContactId, data: ConsentUpdate, scope: Admin, session: DbSession
) -> ContactOut:
    return ContactOut.model_validate(
        await contacts.record_consent(session, scope, list_id, contact_id, data)
    )


@router.get(
    "/do-not-call",
    response_model=Page[DoNotCallOut],
    responses=error_responses(401, 403, 422),
    summary="The tenant's do-not-call list",
)
async def list_do_not_call(
    scope: Reader, session: DbSession, page: PageParams
) -> Page[DoNotCallOut]:
    found, after = await blocklists.list_do_not_call(
        session, scope, after_id=page.after_id, limit=page.limit
    )
    return page_of([DoNotCallOut.model_validate(e) for e in found], after)


@router.post(
    "/do-not-call",
    status_code=201,
    response_model=DoNotCallOut,
    responses=error_responses(401, 403, 409, 422),
    summary="Never call a number again (E.164, or national in the tenant's country)",
)
async def add_do_not_call(data: DoNotCallCreate, scope: Admin, session: DbSession) -> DoNotCallOut:
    entry = await blocklists.add_do_not_call(session, scope, data)
    await session.refresh(entry)
    return DoNotCallOut.model_validate(entry)


@router.delete(
    "/do-not-call/{entry_id}",
    status_code=204,
    responses=error_responses(401, 403, 404, 422),
    summary="Take a number off the do-not-call list",
)
async def delete_do_not_call(entry_id: EntryId, scope: Admin, session: DbSession) -> Response:
    await blocklists.delete_do_not_call(session, scope, entry_id)
    return Response(status_code=204)


@router.post(
    "/opposition-lists",
    status_code=201,
    response_model=OppositionImportOut,
    responses={**error_responses(401, 403, 422), **_TOO_LARGE},
    summary="Import the national opposition list's answer (Bloctel), dated by its check",
    description="One number per line, national (0612345678) or E.164; a line with `;` keeps "
    "its first field. Lines that are no number (a header) are counted in lines_ignored. "
    "Numbers on a list checked within the law's period (30 days in France) are never called.",
)
async def import_opposition_list(
    list_date: Annotated[date, Form(description="The day the list was checked (YYYY-MM-DD).")],
    file: Annotated[UploadFile, File(description="The opposition list's answer.")],
    scope: Admin,
    session: DbSession,
) -> OppositionImportOut:
    record, ignored = await blocklists.import_opposition_list(
        session, scope, list_date, file.filename or "opposition.csv", file.file
    )
    await session.refresh(record)
    return OppositionImportOut(
        **OppositionListOut.model_validate(record).model_dump(), lines_ignored=ignored
    )


@router.get(
    "/opposition-lists",
    response_model=Page[OppositionListOut],
    responses=error_responses(401, 403, 422),
    summary="The tenant's opposition list imports",
)
async def list_opposition_lists(
    scope: Reader, session: DbSession, page: PageParams
) -> Page[OppositionListOut]:
    found, after = await blocklists.list_opposition_lists(
        session, scope, after_id=page.after_id, limit=page.limit
    )
    return page_of([OppositionListOut.model_validate(o) for o in found], after)
