"""Rendering a console page: one jinja2 environment, the navigation, the security headers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import ValidationError

from graam_pbx.auth.principal import Role
from graam_pbx.web.i18n import Texts
from graam_pbx.web.viewer import Viewer

TEMPLATES = Path(__file__).parent / "templates"

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

# Pages load only our own files: no inline script, no other origin, never framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_TENANT_ROLES = (Role.ADMIN, Role.SUPERVISOR, Role.AGENT)


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str  # English; translated when rendered
    roles: tuple[Role, ...]
    in_tenant: bool = True  # an operator sees it only while acting in a tenant


NAV: tuple[NavItem, ...] = (
    NavItem("/wallboard", "Wallboard", (Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR)),
    NavItem("/reports", "Reports", (Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR)),
    NavItem("/agents", "Agents", (Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR)),
    NavItem("/recordings", "Recordings", (Role.ADMIN, Role.SUPERVISOR)),
    NavItem("/my-day", "My day", (Role.AGENT,)),
    # Anyone's own browser phone (operators own none in a tenant): supervision calls ring it.
    NavItem("/phone", "Phone", (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)),
    # Anyone's own forwarding rules (an admin's page opens any user's of the tenant).
    NavItem("/forwarding", "Forwarding", (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)),
    NavItem("/campaigns", "Campaigns", (Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR)),
    NavItem("/contact-lists", "Contact lists", (Role.ADMIN, Role.OPERATOR)),
    NavItem("/campaign-call", "Campaign call", (Role.AGENT,)),
    NavItem("/account", "Account", (Role.ADMIN, Role.OPERATOR)),
    NavItem("/webhooks", "Webhooks", (Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR)),
    NavItem("/support", "Support", (Role.ADMIN, Role.SUPERVISOR)),
    NavItem("/billing", "Billing", (Role.ADMIN, Role.OPERATOR)),
    NavItem("/billing/rates", "Rates", (Role.ADMIN, Role.OPERATOR)),
    NavItem("/operator/tenants", "Tenants", (Role.OPERATOR,), in_tenant=False),
    NavItem("/operator/notices", "Notices", (Role.OPERATOR,), in_tenant=False),
    NavItem("/operator/support", "Support queue", (Role.OPERATOR,), in_tenant=False),
)


def home_path(role: Role) -> str:
    """Where a user lands after logging in."""
    return {
        Role.OPERATOR: "/operator/tenants",
        Role.AGENT: "/my-day",
    }.get(role, "/wallboard")


def navigation(viewer: Viewer) -> list[tuple[str, str]]:
    """The (link, label) pairs the viewer may follow."""
    items = []
    for item in NAV:
        if viewer.role not in item.roles:
            continue
        if viewer.principal.is_operator and item.in_tenant and viewer.tenant is None:
            continue
        link = viewer.link(item.path) if item.in_tenant else item.path
        items.append((link, viewer.texts.gettext(item.label)))
    return items


def form_errors(err: ValidationError, rules: dict[str, str]) -> dict[str, str]:
    """The message shown beside each form field the schema refused: that field's rule."""
    fields = {str(error["loc"][0]) for error in err.errors() if error["loc"]}
    return {field: rules[field] for field in fields if field in rules}


def render(template: str, texts: Texts, **values: Any) -> str:
    """A template rendered in one language (``_`` translates, ``t`` formats)."""
    return _environment.get_template(template).render(
        _=texts.gettext, t=texts, lang=texts.locale, **values
    )


def page(
    request: Request, viewer: Viewer, template: str, *, status: int = 200, **values: Any
) -> HTMLResponse:
    """A logged-in page."""
    body = render(
        template,
        viewer.texts,
        viewer=viewer,
        nav=navigation(viewer),
        csrf=viewer.csrf,
        current=request.url.path,
        **values,
    )
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def public_page(
    request: Request, texts: Texts, template: str, *, status: int = 200, **values: Any
) -> HTMLResponse:
    """A page shown without a login (the login itself, errors)."""
    values.setdefault("csrf", "")
    body = render(template, texts, viewer=None, nav=[], current=request.url.path, **values)
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
