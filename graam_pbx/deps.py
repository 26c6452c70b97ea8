"""FastAPI dependencies every ``api.py`` shares: the transaction, the caller, the tenant."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.auth import service as auth_service
from graam_pbx.auth.principal import Principal, Role, Scope
from graam_pbx.errors import Forbidden, Invalid, NotFound, Unauthorized
from graam_pbx.fields import MAX_ID
from graam_pbx.tenants.models import Tenant

_ONE_STATEMENT = "__graam_one_statement__"
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def one_statement(endpoint: Endpoint) -> Endpoint:
    """Mark a route whose database work, after the caller's account is read (or with it, in
    the statement: ``allow_checked_by_statement``), is one statement that writes all it writes
    at once (a database function, atomic by itself): its session runs without BEGIN and
    COMMIT, each statement its own transaction, two round trips fewer. A route that writes
    through the ORM, or in more than one statement, is never marked: its writes would commit
    one by one."""
    setattr(endpoint, _ONE_STATEMENT, True)
    return endpoint


async def _transaction(request: Request) -> AsyncIterator[AsyncSession]:
    # One transaction per request, committed before the response is sent (or, for a route
    # of one statement, that statement's own).
    state = request.app.state
    endpoint = getattr(request.scope.get("route"), "endpoint", None)
    if getattr(endpoint, _ONE_STATEMENT, False):
        opened = state.sessions(bind=state.statement_engine)
    else:
        opened = state.sessions()
    async with opened as session, session.begin():
        yield session


DbSession = Annotated[AsyncSession, Depends(_transaction, scope="function")]

_bearer = HTTPBearer(
    auto_error=False,
    description="An access token from POST /api/v1/auth/token, or an API key (gk_…).",
)


async def _principal(
    request: Request,
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthorized("a bearer token or API key is required")
    principal = await auth_service.principal_from_credential(
        session,
        credentials.credentials,
        request.app.state.runtime.signing_key,
        address=client_address(request),
    )
    # An API key's scope is checked here, once for every route: by the route's OpenAPI tags
    # (its areas) and the request's method (reading or writing).
    route = request.scope.get("route")
    tags = [str(tag) for tag in getattr(route, "tags", None) or []]
    refusal = principal.refusal(request.method, tags)
    if refusal is not None:
        raise Forbidden(refusal)
    return principal


Caller = Annotated[Principal, Depends(_principal)]


def client_address(request: Request) -> str | None:
    """The peer's address, as throttling and the audit log know it.

    The server (``graam-pbx run``) replaces the peer by the address in X-Forwarded-For only
    when the peer is one of ``GRAAM_TRUSTED_PROXIES``; anyone else's header is ignored. Written
    as ipaddress writes it, so one address is one throttling key whatever its spelling.
    """
    if request.client is None:
        return None
    host = request.client.host
    try:
        address = ipaddress.ip_address(host)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)  # a dual-stack socket's form of an IPv4 peer
        return str(address)
    except ValueError:
        # Not an address (a trusted proxy forwarded something else): kept, within its column.
        return host[:64]


TenantHeader = Annotated[
    int | None,
    Header(ge=1, le=MAX_ID, description="Operators only: the tenant (id) to act in."),
]


async def _scope(
    request: Request, session: AsyncSession, principal: Principal, x_graam_tenant: int | None
) -> Scope:
    """The tenant the caller acts in: its own, or for an operator the one it names."""
    if principal.tenant_id is not None:
        # A tenant user's tenant comes from its token, never from the request.
        return Scope(principal.tenant_id, principal, client_address(request))
    if x_graam_tenant is None:
        raise Invalid("header.x-graam-tenant", "operators name the tenant they act in")
    if await session.get(Tenant, x_graam_tenant) is None:
        raise NotFound(f"no tenant {x_graam_tenant}")
    return Scope(x_graam_tenant, principal, client_address(request))


def allow(*roles: Role) -> Callable[..., Coroutine[Any, Any, Scope]]:
    """A dependency: the caller's scope, if its role is one of ``roles`` (operators always)."""

    # The scope is worked out in this one dependency, not in one of its own: every level of
    # dependencies costs the framework's work on every request.
    async def check(
        request: Request, session: DbSession, principal: Caller, x_graam_tenant: TenantHeader = None
    ) -> Scope:
        return ensure_role(await _scope(request, session, principal, x_graam_tenant), roles)

    return check


def allow_checked_by_statement(*roles: Role) -> Callable[..., Coroutine[Any, Any, Scope]]:
    """As ``allow``, for a route whose one statement checks its caller's account itself
    (``agent_login``: the login's one round trip): a tenant user's access token gives the
    scope from its signed claims, its account not read here (``Principal.epoch_to_check``
    goes to the statement, which answers ``caller-gone`` or ``caller-revoked`` having done
    nothing). An API key or an operator is read as on every route."""

    async def check(
        request: Request,
        session: DbSession,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        x_graam_tenant: TenantHeader = None,
    ) -> Scope:
        claimed = None
        if credentials is not None:
            key = request.app.state.runtime.signing_key
            claimed = auth_service.claimed_principal(credentials.credentials, key)
        if claimed is None or claimed.tenant_id is None:  # an API key, an operator
            principal = await _principal(request, session, credentials)
            return ensure_role(await _scope(request, session, principal, x_graam_tenant), roles)
        return ensure_role(Scope(claimed.tenant_id, claimed, client_address(request)), roles)

    return check


def ensure_role(scope: Scope, roles: tuple[Role, ...]) -> Scope:
    """``scope``, if its caller's role is one of ``roles`` (operators always): the one rule of
    who may do what, for the API's routes and the console's pages alike."""
    if scope.role is not Role.OPERATOR and scope.role not in roles:
        raise Forbidden(f"a {scope.role} may not do this")
    return scope


def operator_only() -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency: the caller, if it is a platform operator."""

    async def check(principal: Caller) -> Principal:
        if not principal.is_operator:
            raise Forbidden("only operators may do this")
        return principal

    return check


# The usual sets: configuration is the admin's; supervisors read everything in their tenant.
Admin = Annotated[Scope, Depends(allow(Role.ADMIN))]
Supervising = Annotated[Scope, Depends(allow(Role.ADMIN, Role.SUPERVISOR))]
Reader = Annotated[Scope, Depends(allow(Role.ADMIN, Role.SUPERVISOR))]
Member = Annotated[Scope, Depends(allow(Role.ADMIN, Role.SUPERVISOR, Role.AGENT))]
# A member whose account the route's one statement checks (the login).
MemberCheckedByStatement = Annotated[
    Scope, Depends(allow_checked_by_statement(Role.ADMIN, Role.SUPERVISOR, Role.AGENT))
]
Operator = Annotated[Principal, Depends(operator_only())]
