"""The operator's Notices page: publish a notice of a change to the service, and the notices
published so far. (Tenants' users see the current ones in a banner on every page: the
viewer loads them, base.html shows them.)

Publishing is ``notices.service.publish``, the function ``POST /api/v1/notices`` calls, with
the API's ``NoticeCreate`` checking the form; the month of notice is refused the same way.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from graam_pbx.deps import DbSession
from graam_pbx.errors import Invalid
from graam_pbx.notices import service as notices_service
from graam_pbx.notices.schemas import NoticeCreate
from graam_pbx.tenants import service as tenants_service
from graam_pbx.web.forms import form_id
from graam_pbx.web.render import form_errors, page
from graam_pbx.web.viewer import OperatorViewer, Viewer, console_router

router = console_router()

LISTED = 100
TENANT_CHOICES = 1000


def field_rules(viewer: Viewer) -> dict[str, str]:
    """What each field of the form accepts, said when it is refused."""
    gettext = viewer.texts.gettext
    earliest = viewer.texts.date(notices_service.earliest_effective_date())
    return {
        "title": gettext("1 to 200 characters on one line."),
        "body": gettext("1 to 10,000 characters."),
        "effective_on": gettext(
            "A date at least one month after today: {date} or later.", date=earliest
        ),
        "tenant_ids": gettext("Choose at least one tenant, or every tenant."),
    }


async def notices_page(
    request: Request,
    viewer: Viewer,
    session: DbSession,
    *,
    status: int = 200,
    typed: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    published: bool = False,
) -> Response:
    tenants, _ = await tenants_service.list_tenants(
        session, viewer.principal, status=None, after_id=None, limit=TENANT_CHOICES
    )
    notices = await notices_service.latest_notices(session, viewer.principal, limit=LISTED)
    return page(
        request,
        viewer,
        "operator_notices.html",
        status=status,
        title=viewer.texts.gettext("Notices"),
        tenants=tenants,
        names={t.id: t.name for t in tenants},
        notices=notices,
        shown_until=notices_service.shown_until,
        is_current=notices_service.is_current,
        earliest=notices_service.earliest_effective_date(),
        typed=typed or {"audience": "all", "tenant_ids": []},
        errors=errors or {},
        published=published,
    )


@router.get("/operator/notices")
async def notices(
    request: Request,
    viewer: OperatorViewer,
    session: DbSession,
    published: Annotated[int | None, Query(ge=0, le=1)] = None,
) -> Response:
    return await notices_page(request, viewer, session, published=bool(published))


@router.post("/operator/notices")
async def publish_notice(
    request: Request,
    viewer: OperatorViewer,
    session: DbSession,
    title: Annotated[str, Form(max_length=1000)] = "",
    body: Annotated[str, Form(max_length=40_000)] = "",
    effective_on: Annotated[str, Form(max_length=40)] = "",
    audience: Annotated[str, Form(max_length=10)] = "all",
    tenant_ids: Annotated[list[str] | None, Form()] = None,
) -> Response:
    ids = [form_id(t) for t in tenant_ids or []]
    chosen = [i for i in ids if i is not None]
    typed = {
        "title": title,
        "body": body,
        "effective_on": effective_on,
        "audience": "some" if audience == "some" else "all",
        "tenant_ids": chosen,
    }
    rules = field_rules(viewer)
    if len(chosen) != len(ids):  # a box that names no tenant: refused, never dropped
        errors = {"tenant_ids": rules["tenant_ids"]}
        return await notices_page(request, viewer, session, status=422, typed=typed, errors=errors)
    try:
        data = NoticeCreate.model_validate(
            {
                "title": title.strip(),
                "body": body,
                "effective_on": effective_on.strip(),
                "tenant_ids": chosen if typed["audience"] == "some" else None,
            }
        )
    except ValidationError as err:
        errors = form_errors(err, rules)
        return await notices_page(request, viewer, session, status=422, typed=typed, errors=errors)
    try:
        async with session.begin_nested():
            await notices_service.publish(session, viewer.principal, data)
    except Invalid as err:
        field = str(err.details["errors"][0]["field"]).removeprefix("body.")
        errors = {field: rules.get(field, err.message)}
        return await notices_page(request, viewer, session, status=422, typed=typed, errors=errors)
    return RedirectResponse("/operator/notices?published=1", status_code=303)
