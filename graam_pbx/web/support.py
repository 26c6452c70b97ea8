"""Support pages: a tenant's requests (file one, follow its conversation) and the operator's
queue across tenants (answer, close).

Every read and change is a ``support.service`` function the API's routes call too
(``/api/v1/support-requests``), with the same rules of who sees what; the forms' input is
checked by the API's own schemas, and the e-mails leave after the commit, as from the API.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import BackgroundTasks, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from graam_pbx.deps import DbSession
from graam_pbx.errors import Conflict
from graam_pbx.fields import MAX_ID
from graam_pbx.support import notify
from graam_pbx.support import service as support_service
from graam_pbx.support.models import SupportRequest
from graam_pbx.support.schemas import (
    Priority,
    Status,
    SupportMessageCreate,
    SupportRequestCreate,
)
from graam_pbx.web.render import form_errors, page
from graam_pbx.web.viewer import OperatorViewer, Supervising, Viewer, console_router

router = console_router()

PAGE_ROWS = 100
RequestId = Annotated[int, Path(ge=1, le=MAX_ID)]
# Generous bounds for the raw form: the schema then says precisely what is wrong.
SubjectForm = Annotated[str, Form(max_length=1000)]
BodyForm = Annotated[str, Form(max_length=40_000)]


def field_rules(viewer: Viewer) -> dict[str, str]:
    """What each field of the forms accepts, said when it is refused."""
    gettext = viewer.texts.gettext
    return {
        "subject": gettext("1 to 200 characters on one line."),
        "body": gettext("1 to 10,000 characters."),
        "priority": gettext("Choose high, medium or low."),
    }


def _after_commit(request: Request, posted: support_service.Posted) -> BackgroundTasks:
    # Run once the response is ready, so after the request's transaction has committed.
    background = BackgroundTasks()
    background.add_task(notify.dispatch, request.app.state.runtime.settings, posted.notification)
    return background


# ---- a tenant's requests ------------------------------------------------------------------


async def requests_page(
    request: Request,
    viewer: Viewer,
    session: DbSession,
    *,
    status: int = 200,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    tenant_id = viewer.scope.tenant_id
    rows, more = await support_service.list_requests(
        session, viewer.principal, tenant_id=tenant_id, limit=PAGE_ROWS
    )
    return page(
        request,
        viewer,
        "support.html",
        status=status,
        title=viewer.texts.gettext("Support"),
        requests=rows,
        more=more,
        overdue=support_service.is_overdue,
        can_file=not viewer.principal.is_operator,
        typed=typed or {"priority": Priority.MEDIUM.value},
        errors=errors or {},
    )


@router.get("/support")
async def support(request: Request, viewer: Supervising, session: DbSession) -> Response:
    return await requests_page(request, viewer, session)


@router.post("/support")
async def file_request(
    request: Request,
    viewer: Supervising,
    session: DbSession,
    subject: SubjectForm = "",
    body: BodyForm = "",
    priority: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    typed = {"subject": subject, "body": body, "priority": priority}
    try:
        data = SupportRequestCreate.model_validate(
            {"subject": subject.strip(), "body": body, "priority": priority}
        )
    except ValidationError as err:
        return await requests_page(
            request,
            viewer,
            session,
            status=422,
            typed=typed,
            errors=form_errors(err, field_rules(viewer)),
        )
    posted = await support_service.file_request(session, viewer.scope, data)
    return RedirectResponse(
        viewer.link(f"/support/{posted.request.id}", filed=1),
        status_code=303,
        background=_after_commit(request, posted),
    )


async def request_page(
    request: Request,
    viewer: Viewer,
    session: DbSession,
    found: SupportRequest,
    *,
    operator_view: bool,
    status: int = 200,
    typed: str = "",
    error: str | None = None,
    done: str | None = None,
) -> Response:
    values: dict[str, Any] = {
        "item": found,
        "messages": await support_service.conversation(session, found),
        "is_overdue": support_service.is_overdue(found),
        "operator_view": operator_view,
        "tenant_name": (await support_service.tenant_names(session, [found.tenant_id])).get(
            found.tenant_id, str(found.tenant_id)
        ),
        "base": f"/operator/support/{found.id}" if operator_view else f"/support/{found.id}",
        "typed": typed,
        "error": error,
        "done": done,
    }
    return page(
        request,
        viewer,
        "support_request.html",
        status=status,
        title=viewer.texts.gettext("Support request #{number}", number=found.id),
        **values,
    )


async def _tenant_request(viewer: Viewer, session: DbSession, request_id: int) -> SupportRequest:
    # Through the service's own rule, then within the tenant the page acts in (an operator
    # acting in a tenant sees only that tenant's requests here).
    found = await support_service.get_request(session, viewer.principal, request_id)
    if found.tenant_id != viewer.scope.tenant_id:
        raise support_service.missing(request_id)
    return found


@router.get("/support/{request_id}")
async def support_request(
    request: Request,
    viewer: Supervising,
    session: DbSession,
    request_id: RequestId,
    filed: Annotated[int | None, Query(ge=0, le=1)] = None,
    sent: Annotated[int | None, Query(ge=0, le=1)] = None,
) -> Response:
    found = await _tenant_request(viewer, session, request_id)
    done = None
    if filed:
        done = viewer.texts.gettext("Your request was filed; the operator was told.")
    elif sent:
        done = viewer.texts.gettext("Your message was added.")
    return await request_page(request, viewer, session, found, operator_view=False, done=done)


@router.post("/support/{request_id}/messages")
async def client_message(
    request: Request,
    viewer: Supervising,
    session: DbSession,
    request_id: RequestId,
    body: BodyForm = "",
) -> Response:
    found = await _tenant_request(viewer, session, request_id)
    return await _write(request, viewer, session, found, body, operator_view=False)


async def _write(
    request: Request,
    viewer: Viewer,
    session: DbSession,
    found: SupportRequest,
    body: str,
    *,
    operator_view: bool,
) -> Response:
    try:
        data = SupportMessageCreate.model_validate({"body": body})
    except ValidationError as err:
        return await request_page(
            request,
            viewer,
            session,
            found,
            operator_view=operator_view,
            status=422,
            typed=body,
            error=form_errors(err, field_rules(viewer)).get("body"),
        )
    try:
        posted = await support_service.add_message(session, viewer.principal, found.id, data.body)
    except Conflict:
        return await request_page(
            request,
            viewer,
            session,
            found,
            operator_view=operator_view,
            status=409,
            typed=body,
            error=viewer.texts.gettext("This request is closed: it takes no more messages."),
        )
    target = (
        f"/operator/support/{found.id}?sent=1"
        if operator_view
        else viewer.link(f"/support/{found.id}", sent=1)
    )
    return RedirectResponse(target, status_code=303, background=_after_commit(request, posted))


# ---- the operator's queue -----------------------------------------------------------------


@router.get("/operator/support")
async def operator_queue(
    request: Request,
    viewer: OperatorViewer,
    session: DbSession,
    status: Annotated[Status | None, Query()] = None,
) -> Response:
    rows, more = await support_service.list_requests(
        session, viewer.principal, status=status, limit=PAGE_ROWS
    )
    names = await support_service.tenant_names(session, sorted({r.tenant_id for r in rows}))
    return page(
        request,
        viewer,
        "operator_support.html",
        title=viewer.texts.gettext("Support queue"),
        requests=rows,
        more=more,
        names=names,
        overdue=support_service.is_overdue,
        overdue_count=await support_service.count_overdue(session, viewer.principal),
        chosen=status.value if status else "",
        statuses=[s.value for s in Status],
    )


@router.get("/operator/support/{request_id}")
async def operator_request(
    request: Request,
    viewer: OperatorViewer,
    session: DbSession,
    request_id: RequestId,
    sent: Annotated[int | None, Query(ge=0, le=1)] = None,
    closed: Annotated[int | None, Query(ge=0, le=1)] = None,
) -> Response:
    found = await support_service.get_request(session, viewer.principal, request_id)
    done = None
    if sent:
        done = viewer.texts.gettext("Your answer was sent.")
    elif closed:
        done = viewer.texts.gettext("The request is closed.")
    return await request_page(request, viewer, session, found, operator_view=True, done=done)


@router.post("/operator/support/{request_id}/messages")
async def operator_answer(
    request: Request,
    viewer: OperatorViewer,
    session: DbSession,
    request_id: RequestId,
    body: BodyForm = "",
) -> Response:
    found = await support_service.get_request(session, viewer.principal, request_id)
    return await _write(request, viewer, session, found, body, operator_view=True)


@router.post("/operator/support/{request_id}/close")
async def operator_close(
    viewer: OperatorViewer, session: DbSession, request_id: RequestId
) -> Response:
    await support_service.close_request(session, viewer.principal, request_id)
    return RedirectResponse(f"/operator/support/{request_id}?closed=1", status_code=303)
