"""Errors on console pages: a login page for a missing login, an HTML page for the rest."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from graam_pbx.errors import GraamError
from graam_pbx.web.render import public_page
from graam_pbx.web.viewer import LoginRequired, request_texts

# Under these, errors are the API's JSON (the console's own paths get HTML).
API_PREFIXES = ("/api/", "/healthz", "/readyz", "/metrics")
# Live streams: an EventSource reads only the status, never a page.
STREAM_PREFIX = "/live/"


def is_console_path(path: str) -> bool:
    return not path.startswith(API_PREFIXES)


def console_error(request: Request, error: GraamError) -> Response:
    """The page a console request gets for a domain error."""
    if request.url.path.startswith(STREAM_PREFIX):
        return Response(error.message, status_code=error.status_code, media_type="text/plain")
    if isinstance(error, LoginRequired) and request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    texts = request_texts(request)
    return public_page(
        request,
        texts,
        "error.html",
        status=error.status_code,
        title=texts.gettext("Error"),
        message=error.message,
        status_code=error.status_code,
    )


def console_not_found(request: Request) -> Response:
    texts = request_texts(request)
    return public_page(
        request,
        texts,
        "error.html",
        status=404,
        title=texts.gettext("Not found"),
        message=texts.gettext("There is no such page."),
        status_code=404,
    )
