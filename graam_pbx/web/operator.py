"""The operator's Tenants page: every tenant with its licences, creating one, suspending and
reactivating it, its licence ceiling, and links to act in it.

Every change is a ``tenants.service`` function the API's operator routes call too
(``POST /api/v1/tenants``, ``PATCH /api/v1/tenants/{id}``), audited the same way; the form's
input is checked by the API's own ``TenantCreate`` / ``TenantUpdate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from graam_pbx.deps import DbSession
from graam_pbx.errors import Conflict, NotFound
from graam_pbx.fields import MAX_ID
from graam_pbx.tenants import service as tenants_service
from graam_pbx.tenants.models import TenantStatus
from graam_pbx.tenants.schemas import MAX_LICENCES, TenantCreate, TenantUpdate
from graam_pbx.web.render import form_errors, page
from graam_pbx.web.viewer import OperatorViewer, Viewer, console_router

router = console_router()

PAGE_ROWS = 50
# What the operator may switch a tenant to from this page, from the status it has.
STATUS_SWITCHES = {
    TenantStatus.ACTIVE.value: TenantStatus.SUSPENDED,
    TenantStatus.SUSPENDED.value: TenantStatus.ACTIVE,
}


@dataclass(frozen=True)
class RowError:
    """A refused change of one tenant's row: which field, why, what was typed."""

    field: str  # "licence_ceiling" or "status"
    message: str
    typed: str = ""


def field_rules(viewer: Viewer) -> dict[str, str]:
    """What each field of the new tenant's form accepts, said when it is refused."""
    gettext = viewer.texts.gettext
    count = gettext(
        "A whole number from 0 to {maximum}.", maximum=viewer.texts.number(MAX_LICENCES)
    )
    return {
        "slug": gettext("2 to 63 characters: a-z, 0-9 and '-', not starting with '-'."),
        "name": gettext("1 to 200 characters, no control characters."),
        "country": gettext("A country code of two capital letters (ISO 3166-1), e.g. FR."),
        "timezone": gettext("A time zone of the IANA database, e.g. Europe/Paris."),
        "plan": gettext("1 to 64 characters: a-z, 0-9, '_' and '-'."),
        "licences": count,
        "licence_ceiling": gettext("Empty for no ceiling; else: {rule}", rule=count),
    }


def parse_count(text: str, *, optional: bool) -> int | str | None:
    """A count typed in a form: an int, None when left empty (if allowed), else the text
    itself (which the schema then refuses, naming the field)."""
    raw = text.strip()
    if not raw and optional:
        return None
    try:
        return int(raw)
    except ValueError:
        return raw


async def tenants_page(
    request: Request,
    viewer: Viewer,
    session: DbSession,
    *,
    after: int | None = None,
    status: int = 200,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    row_errors: dict[int, RowError] | None = None,
    changed: int | None = None,
    created: int | None = None,
) -> Response:
    tenants, next_after = await tenants_service.list_tenants(
        session, viewer.principal, status=None, after_id=after, limit=PAGE_ROWS
    )
    in_use = await tenants_service.licences_in_use_by_tenant(session, [t.id for t in tenants])
    values: dict[str, Any] = {
        "tenants": tenants,
        "in_use": in_use,
        "after": after,
        "next_after": next_after,
        "typed": typed
        or {"country": "FR", "timezone": "Europe/Paris", "plan": "standard", "licences": "0"},
        "errors": errors or {},
        "row_errors": row_errors or {},
        "changed": await _name_of(session, viewer, changed),
        "created": await _name_of(session, viewer, created),
        "switches": STATUS_SWITCHES,
    }
    return page(
        request,
        viewer,
        "operator_tenants.html",
        status=status,
        title=viewer.texts.gettext("Tenants"),
        **values,
    )


async def _name_of(session: DbSession, viewer: Viewer, tenant_id: int | None) -> str | None:
    if tenant_id is None:
        return None
    try:
        return (await tenants_service.get_tenant(session, viewer.principal, tenant_id)).name
    except NotFound:
        return None  # a stale link: no message rather than an error


Listed = Annotated[int | None, Query(ge=1, le=MAX_ID)]
TenantId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/operator/tenants")
async def tenants(
    request: Request,
    viewer: OperatorViewer,
    session: DbSession,
    after: Listed = None,
    changed: Listed = None,
    created: Listed = None,
) -> Response:
    return await tenants_page(
        request, viewer, session, after=after, changed=changed, created=created
    )


@router.post("/operator/tenants")
async def create_tenant(
    request: Request,
    viewer: OperatorViewer,
    session: DbSession,
    slug: Annotated[str, Form(max_length=100)] = "",
    name: Annotated[str, Form(max_length=300)] = "",
    country: Annotated[str, Form(max_length=10)] = "",
    timezone: Annotated[str, Form(max_length=100)] = "",
    plan: Annotated[str, Form(max_length=100)] = "",
    licences: Annotated[str, Form(max_length=32)] = "",
    licence_ceiling: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    typed = {
        "slug": slug,
        "name": name,
        "country": country,
        "timezone": timezone,
        "plan": plan,
        "licences": licences,
        "licence_ceiling": licence_ceiling,
    }
    rules = field_rules(viewer)
    try:
        data = TenantCreate.model_validate(
            {
                "slug": slug.strip(),
                "name": name.strip(),
                "country": country.strip(),
                "timezone": timezone.strip(),
                "plan": plan.strip() or "standard",
                "licences": parse_count(licences, optional=False),
                "licence_ceiling": parse_count(licence_ceiling, optional=True),
            }
        )
    except ValidationError as err:
        errors = form_errors(err, rules)
        return await tenants_page(request, viewer, session, status=422, typed=typed, errors=errors)
    try:
        async with session.begin_nested():  # a refused slug leaves the transaction usable
            tenant = await tenants_service.create_tenant(session, viewer.principal, data)
    except Conflict:
        errors = {"slug": viewer.texts.gettext("This short name is taken: choose another.")}
        return await tenants_page(request, viewer, session, status=409, typed=typed, errors=errors)
    # The page that starts with the new tenant (the list is by id: it would be the last).
    start = f"after={tenant.id - 1}&" if tenant.id > 1 else ""
    return RedirectResponse(f"/operator/tenants?{start}created={tenant.id}", status_code=303)


def _back(after: int | None, changed: int) -> str:
    return f"/operator/tenants?{'after=' + str(after) + '&' if after else ''}changed={changed}"


@router.post("/operator/tenants/{tenant_id}/status")
async def switch_status(
    request: Request,
    viewer: OperatorViewer,
    session: DbSession,
    tenant_id: TenantId,
    status: Annotated[str, Form(max_length=16)],
    after: Listed = None,
) -> Response:
    tenant = await tenants_service.get_tenant(session, viewer.principal, tenant_id)
    target = STATUS_SWITCHES.get(tenant.status)
    if target is None or status != target.value:
        message = viewer.texts.gettext(
            "This tenant's status changed meanwhile: look at it again before changing it."
        )
        return await tenants_page(
            request,
            viewer,
            session,
            after=after,
            status=409,
            row_errors={tenant_id: RowError("status", message)},
        )
    await tenants_service.update_tenant(
        session, viewer.principal, tenant_id, TenantUpdate(status=target), None
    )
    return RedirectResponse(_back(after, tenant_id), status_code=303)


@router.post("/operator/tenants/{tenant_id}/ceiling")
async def set_ceiling(
    request: Request,
    viewer: OperatorViewer,
    session: DbSession,
    tenant_id: TenantId,
    licence_ceiling: Annotated[str, Form(max_length=32)] = "",
    after: Listed = None,
) -> Response:
    await tenants_service.get_tenant(session, viewer.principal, tenant_id)
    try:
        data = TenantUpdate.model_validate(
            {"licence_ceiling": parse_count(licence_ceiling, optional=True)}
        )
    except ValidationError:
        message = field_rules(viewer)["licence_ceiling"]
        return await tenants_page(
            request,
            viewer,
            session,
            after=after,
            status=422,
            row_errors={tenant_id: RowError("licence_ceiling", message, licence_ceiling)},
        )
    await tenants_service.update_tenant(session, viewer.principal, tenant_id, data, None)
    return RedirectResponse(_back(after, tenant_id), status_code=303)
