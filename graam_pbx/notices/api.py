from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from graam_pbx.deps import Caller, DbSession, Operator
from graam_pbx.errors import Forbidden
from graam_pbx.notices import service
from graam_pbx.notices.models import Notice
from graam_pbx.notices.schemas import NoticeCreate, NoticeOut
from graam_pbx.rest import Page, PageParams, error_responses, id_path, page_of

router = APIRouter(prefix="/api/v1/notices", tags=["notices"])

NoticeId = Annotated[int, id_path("The notice's id.")]


def notice_out(notice: Notice, *, for_operator: bool) -> NoticeOut:
    return NoticeOut(
        id=notice.id,
        title=notice.title,
        body=notice.body,
        effective_on=notice.effective_on,
        published_at=notice.published_at,
        shown_until=service.shown_until(notice),
        every_tenant=notice.tenant_ids is None,
        # A tenant never learns which other tenants a notice concerns.
        tenant_ids=notice.tenant_ids if for_operator else None,
    )


@router.post(
    "",
    status_code=201,
    response_model=NoticeOut,
    responses=error_responses(401, 403, 422),
    summary="Publish a notice of a change to the service (operators)",
    description="effective_on must be at least one month after today (UTC), else 422 on "
    "body.effective_on. Shown to the tenants' users from now until 30 days after "
    "effective_on.",
)
async def publish_notice(data: NoticeCreate, principal: Operator, session: DbSession) -> NoticeOut:
    return notice_out(await service.publish(session, principal, data), for_operator=True)


@router.get(
    "",
    response_model=Page[NoticeOut],
    responses=error_responses(401, 403, 422),
    summary="Notices: every one (operators), the current ones (a tenant's users)",
)
async def list_notices(principal: Caller, session: DbSession, page: PageParams) -> Page[NoticeOut]:
    if principal.is_operator:
        rows, after = await service.list_notices(
            session, principal, after_id=page.after_id, limit=page.limit
        )
        return page_of([notice_out(n, for_operator=True) for n in rows], after)
    if principal.tenant_id is None:  # every non-operator has a tenant
        raise Forbidden("no tenant")
    current = await service.current_notices(session, principal.tenant_id)
    return page_of([notice_out(n, for_operator=False) for n in current], None)


@router.get(
    "/{notice_id}",
    response_model=NoticeOut,
    responses=error_responses(401, 403, 404, 422),
    summary="A notice",
)
async def get_notice(notice_id: NoticeId, principal: Caller, session: DbSession) -> NoticeOut:
    notice = await service.get_notice(session, principal, notice_id)
    return notice_out(notice, for_operator=principal.is_operator)
