"""Logging in and out of the console, the landing page, the language a user chooses."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response

from graam_pbx.auth import service as auth_service
from graam_pbx.auth.principal import Role
from graam_pbx.deps import DbSession, client_address
from graam_pbx.errors import Throttled, Unauthorized
from graam_pbx.web.render import home_path, public_page
from graam_pbx.web.session import (
    SESSION_COOKIE,
    clear_session_cookie,
    login_csrf,
    set_login_csrf,
    set_session_cookie,
)
from graam_pbx.web.viewer import AnyViewer, console_router, request_texts

router = console_router()


def _safe_next(target: str | None) -> str | None:
    # Only a path of this site: never another host (an open redirect).
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return None


def _login_form(
    request: Request,
    *,
    status: int = 200,
    error: str | None = None,
    tenant: str = "",
    email: str = "",
    next_path: str | None = None,
) -> Response:
    texts = request_texts(request)
    token = login_csrf(request)
    response = public_page(
        request,
        texts,
        "login.html",
        status=status,
        title=texts.gettext("Log in"),
        error=error,
        tenant=tenant,
        email=email,
        next_path=_safe_next(next_path) or "",
        csrf=token,
    )
    set_login_csrf(request, response, token)
    return response


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    return _login_form(request, next_path=next)


@router.post("/login")
async def login(
    request: Request,
    session: DbSession,
    email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=1024)],
    tenant: Annotated[str, Form(max_length=63)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    runtime = request.app.state.runtime
    texts = request_texts(request)
    slug = tenant.strip().lower() or None
    try:
        user = await auth_service.checked_login(
            session,
            runtime.settings,
            runtime.logins,
            email=email,
            password=password,
            tenant_slug=slug,
            address=client_address(request),
        )
    except Throttled as err:
        message = texts.gettext(
            "Too many failed logins: try again in {seconds} s.",
            seconds=err.details.get("retry_after", 60),
        )
        return _login_form(
            request, status=429, error=message, tenant=tenant, email=email, next_path=next
        )
    except Unauthorized:
        message = texts.gettext("Wrong e-mail, tenant or password.")
        return _login_form(
            request, status=401, error=message, tenant=tenant, email=email, next_path=next
        )
    token = await auth_service.open_web_session(session, runtime.settings, user)
    target = _safe_next(next) or home_path(Role(user.role))
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, token, runtime.settings.web_session_ttl)
    return response


@router.post("/logout")
async def logout(request: Request, session: DbSession) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await auth_service.close_web_session(session, token)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(request, response)
    return response


@router.get("/")
async def home(viewer: AnyViewer) -> Response:
    return RedirectResponse(home_path(viewer.role), status_code=303)


@router.post("/preferences/locale")
async def choose_language(
    request: Request,
    viewer: AnyViewer,
    session: DbSession,
    locale: Annotated[str, Form(max_length=5)],
    back: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    await auth_service.set_user_locale(session, viewer.principal, locale)
    return RedirectResponse(_safe_next(back) or "/", status_code=303)
