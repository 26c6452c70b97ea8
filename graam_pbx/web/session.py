"""The console's login cookie and its CSRF token.

The cookie holds a random console-session token (``auth`` keeps only its hash and can revoke
it): HttpOnly, SameSite=Lax, Secure when the console is served over TLS. Every
state-changing request carries a CSRF token, an HMAC of the session token under the
deployment's signing key: a page embeds it in each form and in a ``<meta>`` for scripts
(header ``X-CSRF-Token``). Before login, the form carries a random token that must equal a
short-lived cookie of its own (double submit), so no one can log a browser into their account.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

SESSION_COOKIE = "graam_session"
LOGIN_CSRF_COOKIE = "graam_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LOGIN_CSRF_TTL = 3600


def served_over_tls(request: Request) -> bool:
    """Whether the browser reached us over https (directly or through a trusted proxy)."""
    return request.url.scheme == "https"


def csrf_token(signing_key: str, session_token: str) -> str:
    """The CSRF token of one console session: only the server can make it."""
    digest = hmac.new(signing_key.encode(), b"csrf:" + session_token.encode(), hashlib.sha256)
    return digest.hexdigest()


def tokens_match(expected: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())


def set_session_cookie(request: Request, response: Response, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=served_over_tls(request),
        samesite="lax",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, secure=served_over_tls(request), samesite="lax"
    )


def login_csrf(request: Request) -> str:
    """The login form's token: the browser's pending one, else a new one."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)


def set_login_csrf(request: Request, response: Response, token: str) -> None:
    """Pair the login form's token with a cookie of its own (double submit)."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=LOGIN_CSRF_TTL,
        path="/login",
        httponly=True,
        secure=served_over_tls(request),
        samesite="strict",
    )


def same_origin(request: Request) -> bool:
    """A state-changing request must come from our own pages when the browser says where
    from (``Origin``, else ``Referer``); browsers send one of them on every such request."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True
    own = f"{request.url.scheme}://{request.url.netloc}"
    return source == own or source.startswith(own + "/")
