from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from graam_pbx.audit import service
from graam_pbx.audit.schemas import AuditEntryOut
from graam_pbx.deps import DbSession, Reader
from graam_pbx.rest import Page, PageParams, error_responses, page_of

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", response_model=Page[AuditEntryOut], responses=error_responses(401, 403, 422))
async def list_audit(
    scope: Reader,
    session: DbSession,
    page: PageParams,
    object_type: Annotated[str | None, Query(max_length=32)] = None,
) -> Page[AuditEntryOut]:
    entries, after = await service.list_entries(
        session,
        scope.tenant_id,
        object_type=object_type,
        after_id=page.after_id,
        limit=page.limit,
    )
    return page_of([AuditEntryOut.model_validate(e) for e in entries], after)
