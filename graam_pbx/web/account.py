"""The Account page (admins): plan, licences held and in use, the licence change, users,
devices, numbers held and the operator's notices to the tenant.

The licence change is ``tenants.service.set_licences``, the function behind
``PUT /api/v1/tenants/{id}/licences``: the same rules (the operator's ceiling), the same audit
entry, which billing reads.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from graam_pbx.agents import service as agents_service
from graam_pbx.auth import service as auth_service
from graam_pbx.deps import DbSession
from graam_pbx.notices import service as notices_service
from graam_pbx.numbers import service as numbers_service
from graam_pbx.tenants import service as tenants_service
from graam_pbx.tenants.schemas import MAX_LICENCES, LicencesUpdate
from graam_pbx.web.render import page
from graam_pbx.web.viewer import AdminViewer, Viewer, console_router

router = console_router()

# The first page of each table: the count says how many there are in all.
TABLE_ROWS = 50


def licences_error(viewer: Viewer, text: str) -> tuple[int | None, str | None]:
    """The licence count typed in the form, or why it is not one (LicencesUpdate's rules)."""
    gettext = viewer.texts.gettext
    raw = text.strip()
    try:
        count = int(raw)
    except ValueError:
        return None, gettext("Enter a whole number of licences.")
    try:
        LicencesUpdate(licences=count)
    except ValidationError:
        if count < 0:
            return None, gettext("Enter 0 or more licences.")
        return None, gettext(
            "Enter at most {maximum} licences.", maximum=viewer.texts.number(MAX_LICENCES)
        )
    return count, None


async def account_values(viewer: Viewer, session: DbSession) -> dict[str, Any]:
    """What the page shows, read through the domain services with the viewer's scope."""
    scope = viewer.scope
    tenant = await tenants_service.get_tenant(session, viewer.principal, scope.tenant_id)
    users, _ = await auth_service.list_users(
        session, scope, role=None, after_id=None, limit=TABLE_ROWS
    )
    devices, _ = await agents_service.list_devices(
        session, scope, user_id=None, after_id=None, limit=TABLE_ROWS
    )
    numbers, _ = await numbers_service.list_numbers(
        session,
        scope,
        country=None,
        number_type=None,
        status=None,
        after_id=None,
        limit=TABLE_ROWS,
    )
    return {
        "tenant": tenant,
        "in_use": await tenants_service.licences_in_use(session, tenant.id),
        "users": users,
        "users_count": await auth_service.count_users(session, scope),
        "user_names": {user.id: user.display_name for user in users},
        "devices": devices,
        "devices_count": await agents_service.count_devices(session, scope),
        "numbers": numbers,
        "numbers_count": await numbers_service.count_numbers(session, scope),
        # The operator's notices shown to this tenant now (as GET /api/v1/notices shows them).
        "notices": await notices_service.current_notices(session, tenant.id),
    }


async def account_page(
    request: Request,
    viewer: Viewer,
    session: DbSession,
    *,
    status: int = 200,
    typed: str | None = None,
    error: str | None = None,
    saved: bool = False,
) -> Response:
    values = await account_values(viewer, session)
    return page(
        request,
        viewer,
        "account.html",
        status=status,
        title=viewer.texts.gettext("Account"),
        typed=str(values["tenant"].licences) if typed is None else typed,
        error=error,
        saved=saved,
        is_operator=viewer.principal.is_operator,
        page_size=TABLE_ROWS,
        **values,
    )


@router.get("/account")
async def account(
    request: Request, viewer: AdminViewer, session: DbSession, saved: str | None = None
) -> Response:
    return await account_page(request, viewer, session, saved=saved == "1")


@router.post("/account/licences")
async def change_licences(
    request: Request,
    viewer: AdminViewer,
    session: DbSession,
    licences: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    count, error = licences_error(viewer, licences)
    if count is None:
        return await account_page(request, viewer, session, status=422, typed=licences, error=error)
    try:
        # A savepoint: a refused change leaves the request's transaction as it was.
        async with session.begin_nested():
            await tenants_service.set_licences(
                session, viewer.principal, viewer.scope.tenant_id, count
            )
    except tenants_service.AboveLicenceCeiling as refused:
        message = viewer.texts.gettext(
            "At most {ceiling} licences: the ceiling set by your operator.",
            ceiling=viewer.texts.number(refused.details["licence_ceiling"]),
        )
        return await account_page(
            request, viewer, session, status=refused.status_code, typed=licences, error=message
        )
    return RedirectResponse(viewer.link("/account", saved=1), status_code=303)
