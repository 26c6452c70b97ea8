from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path, Query, Request, Response

from graam_pbx.deps import DbSession, Operator
from graam_pbx.rest import Page, PageParams, error_responses, page_of
from graam_pbx.sip_security import service
from graam_pbx.sip_security.schemas import SipBlockOut

router = APIRouter(prefix="/api/v1", tags=["sip blocks"])

BlockedAddress = Annotated[
    str,
    Path(
        min_length=2,
        max_length=45,
        pattern=r"^[0-9A-Fa-f.:]+$",
        description="The blocked address (an IPv6 address stands for its /64).",
        examples=["192.0.2.10"],
    ),
]


@router.get(
    "/sip-blocks",
    response_model=Page[SipBlockOut],
    responses=error_responses(401, 403, 422),
    summary="SIP sources blocked after repeated failed authentications",
)
async def list_sip_blocks(
    principal: Operator,
    session: DbSession,
    page: PageParams,
    active: Annotated[
        bool, Query(description="Only the blocks in force (false: every block ever made).")
    ] = True,
) -> Page[SipBlockOut]:
    blocks, after = await service.list_blocks(
        session, active_only=active, after_id=page.after_id, limit=page.limit
    )
    return page_of([SipBlockOut.of(block, service.is_active(block)) for block in blocks], after)


@router.delete(
    "/sip-blocks/{address}",
    status_code=204,
    responses=error_responses(401, 403, 404, 422),
    summary="Let a blocked SIP source in again",
)
async def unblock_sip_source(
    address: BlockedAddress,
    principal: Operator,
    session: DbSession,
    request: Request,
    background: BackgroundTasks,
) -> Response:
    await service.unblock_by_operator(session, principal, address, field="path.address")
    # After the commit (the response's background runs after the transaction's end): the
    # worker of this process rewrites Asterisk's deny list now, others within their interval.
    worker = getattr(request.app.state, "sip_security", None)
    if worker is not None:
        background.add_task(worker.request)
    return Response(status_code=204, background=background)
