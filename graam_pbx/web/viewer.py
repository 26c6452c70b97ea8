"""Who is looking at a page: the console's login, role and tenant checks, and CSRF.

A page's route takes a ``Viewer`` from ``page_for(...)`` (tenant pages) or ``operator_page()``;
the role rule is the API's own (``deps.ensure_role``), and the services the routes call scope
every query by the viewer's tenant, exactly as for the API. Every console router comes from
``console_router()``, whose dependency refuses a state-changing request without its CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.auth import service as auth_service
from graam_pbx.auth.principal import READ_METHODS, Principal, Role, Scope
from graam_pbx.deps import DbSession, client_address, ensure_role
from graam_pbx.errors import Forbidden, Invalid, NotFound, Unauthorized
from graam_pbx.notices import service as notices_service
from graam_pbx.notices.models import Notice
from graam_pbx.tenants.models import Tenant
from graam_pbx.web.forms import form_id
from graam_pbx.web.i18n import UTC_ZONE, Texts, choose_locale
from graam_pbx.web.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    csrf_token,
    same_origin,
    tokens_match,
)


class LoginRequired(Unauthorized):
    """No console session, or an ended one: the console sends the browser to its login."""

    error_id = "login-required"


@dataclass(frozen=True)
class Viewer:
    """The logged-in user of one request, the tenant they act in, their language."""

    principal: Principal
    tenant: Tenant | None  # None: an operator acting in no tenant
    texts: Texts
    csrf: str
    address: str | None
    # The operator's notices shown to a tenant's user on every page (none for operators).
    notices: tuple[Notice, ...] = ()

    @property
    def role(self) -> Role:
        return self.principal.role

    @property
    def scope(self) -> Scope:
        """The tenant scope the domain services take (tenant pages only)."""
        if self.tenant is None:
            raise Invalid("query.tenant", "operators name the tenant they act in")
        return Scope(self.tenant.id, self.principal, self.address)

    def link(self, path: str, **query: object) -> str:
        """A console URL; an operator acting in a tenant keeps acting in it."""
        values = {k: v for k, v in query.items() if v is not None}
        if self.principal.is_operator and self.tenant is not None:
            values.setdefault("tenant", self.tenant.id)
        return f"{path}?{urlencode(values)}" if values else path


def request_texts(
    request: Request, preference: str | None = None, zone: ZoneInfo = UTC_ZONE
) -> Texts:
    """The language of a request (the user's choice, else Accept-Language) and its zone."""
    return Texts(choose_locale(preference, request.headers.get("accept-language")), zone)


async def current_viewer(request: Request, session: DbSession) -> Viewer:
    """The console session's user; an operator names the tenant they act in by ``?tenant=``."""
    return await _resolve_viewer(request, session)


async def detached_viewer(request: Request) -> Viewer:
    """``current_viewer`` read in a short transaction of its own, released before the route
    runs: for live streams and pages that wait on the live boards, which take a connection of
    their own to build a board (holding the request's meanwhile would let a crowd of viewers
    reconnecting at once take the whole pool and starve the builds they wait for)."""
    async with request.app.state.sessions() as session, session.begin():
        return await _resolve_viewer(request, session)


async def _resolve_viewer(request: Request, session: AsyncSession) -> Viewer:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired("log in to the console")
    try:
        principal = await auth_service.principal_from_web_session(session, token)
    except Unauthorized as err:
        raise LoginRequired(err.message) from err
    tenant_id: int | None = principal.tenant_id
    if principal.is_operator:
        asked = request.query_params.get("tenant")
        if asked:
            tenant_id = form_id(asked)
            if tenant_id is None:
                raise Invalid("query.tenant", "must be a tenant id")
    tenant = await session.get(Tenant, tenant_id) if tenant_id is not None else None
    if tenant_id is not None and tenant is None:
        raise NotFound(f"no tenant {tenant_id}")
    texts = request_texts(
        request,
        await auth_service.user_locale(session, principal),
        ZoneInfo(tenant.timezone) if tenant is not None else UTC_ZONE,
    )
    signing_key: str = request.app.state.runtime.signing_key
    notices = (
        tuple(await notices_service.current_notices(session, tenant.id))
        if tenant is not None and not principal.is_operator
        else ()
    )
    return Viewer(
        principal,
        tenant,
        texts,
        csrf_token(signing_key, token),
        client_address(request),
        notices,
    )


AnyViewer = Annotated[Viewer, Depends(current_viewer)]


def page_for(*roles: Role) -> Callable[..., Coroutine[Any, Any, Viewer]]:
    """A dependency: the viewer, acting in a tenant, if their role is one of ``roles``."""

    async def check(viewer: AnyViewer) -> Viewer:
        ensure_role(viewer.scope, roles)
        return viewer

    return check


def live_page_for(*roles: Role) -> Callable[..., Coroutine[Any, Any, Viewer]]:
    """``page_for`` without holding the request's transaction (``detached_viewer``)."""

    async def check(viewer: Annotated[Viewer, Depends(detached_viewer)]) -> Viewer:
        ensure_role(viewer.scope, roles)
        return viewer

    return check


def operator_page() -> Callable[..., Coroutine[Any, Any, Viewer]]:
    """A dependency: the viewer, if they are a platform operator."""

    async def check(viewer: AnyViewer) -> Viewer:
        if not viewer.principal.is_operator:
            raise Forbidden("only operators may see this page")
        return viewer

    return check


# The usual sets, as the API's (deps.py): operators are always let in.
Supervising = Annotated[Viewer, Depends(page_for(Role.ADMIN, Role.SUPERVISOR))]
LiveSupervising = Annotated[Viewer, Depends(live_page_for(Role.ADMIN, Role.SUPERVISOR))]
AdminViewer = Annotated[Viewer, Depends(page_for(Role.ADMIN))]
MemberViewer = Annotated[Viewer, Depends(page_for(Role.ADMIN, Role.SUPERVISOR, Role.AGENT))]
AgentViewer = Annotated[Viewer, Depends(page_for(Role.AGENT))]
OperatorViewer = Annotated[Viewer, Depends(operator_page())]


async def csrf_guard(request: Request) -> None:
    """Refuse a state-changing console request that is cross-site or lacks its CSRF token."""
    if request.method in READ_METHODS:
        return
    if not same_origin(request):
        raise Forbidden("a request from another site was refused")
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if request.url.path == "/login":
        expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    else:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise LoginRequired("log in to the console")
        expected = csrf_token(request.app.state.runtime.signing_key, token)
    if expected is None or not tokens_match(expected, presented):
        raise Forbidden("the form expired or did not come from the console: reload the page")


def console_router(**kwargs: Any) -> APIRouter:
    """A router of console pages: HTML, out of the API's schema, CSRF-checked."""
    return APIRouter(
        include_in_schema=False,
        default_response_class=HTMLResponse,
        dependencies=[Depends(csrf_guard)],
        **kwargs,
    )
