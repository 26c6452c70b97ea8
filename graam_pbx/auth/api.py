from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from graam_pbx.auth import service
from graam_pbx.auth.principal import Role
from graam_pbx.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    LoginAttemptOut,
    MeOut,
    PasswordChange,
    RefreshRequest,
    TokenOut,
    TokenRequest,
    UserCreate,
    UserOut,
    UserUpdate,
)
from graam_pbx.deps import Admin, Caller, DbSession, Member, client_address
from graam_pbx.fields import MAX_ID
from graam_pbx.rest import (
    IfMatch,
    Page,
    PageParams,
    error_responses,
    expected_version,
    id_path,
    page_of,
    set_etag,
)

router = APIRouter(prefix="/api/v1")
UserId = Annotated[int, id_path("The user's id")]
KeyId = Annotated[int, id_path("The API key's id")]
OwnerId = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this user's keys.")]


def _tokens(tokens: service.Tokens) -> TokenOut:
    return TokenOut(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
    )


@router.post(
    "/auth/token",
    tags=["auth"],
    response_model=TokenOut,
    responses=error_responses(401, 422, 429, 503),
    summary="Log in with e-mail, password and tenant slug",
)
async def token(body: TokenRequest, request: Request, session: DbSession) -> TokenOut:
    runtime = request.app.state.runtime
    return _tokens(
        await service.login(
            session,
            runtime.settings,
            runtime.signing_key,
            runtime.logins,
            email=body.email,
            password=body.password.get_secret_value(),
            tenant_slug=body.tenant,
            address=client_address(request),
        )
    )


@router.post(
    "/auth/refresh",
    tags=["auth"],
    response_model=TokenOut,
    responses=error_responses(401, 422),
    summary="Trade a refresh token (once) for new tokens",
)
async def refresh(body: RefreshRequest, request: Request, session: DbSession) -> TokenOut:
    runtime = request.app.state.runtime
    return _tokens(
        await service.refresh(session, runtime.settings, runtime.signing_key, body.refresh_token)
    )


@router.get("/auth/me", tags=["auth"], response_model=MeOut, responses=error_responses(401))
async def me(principal: Caller) -> MeOut:
    return MeOut(
        user_id=principal.user_id,
        role=principal.role,
        tenant_id=principal.tenant_id,
        label=principal.label,
    )


@router.post(
    "/auth/password",
    tags=["auth"],
    response_model=TokenOut,
    responses=error_responses(401, 403, 422, 429, 503),
    summary="Change your own password with the current one (your other sessions end)",
)
async def change_password(
    body: PasswordChange, principal: Caller, request: Request, session: DbSession
) -> TokenOut:
    runtime = request.app.state.runtime
    return _tokens(
        await service.change_own_password(
            session,
            runtime.settings,
            runtime.signing_key,
            runtime.logins,
            principal,
            body,
            address=client_address(request),
        )
    )


@router.post(
    "/auth/api-keys",
    tags=["auth"],
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses=error_responses(401, 403, 422),
    summary="Make an API key acting as yourself, within a scope (its text is shown once)",
)
async def create_api_key(
    body: ApiKeyCreate, principal: Caller, session: DbSession
) -> ApiKeyCreated:
    key, text = await service.create_api_key(session, principal, body)
    return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), key=text)


@router.get(
    "/auth/api-keys",
    tags=["auth"],
    response_model=list[ApiKeyOut],
    responses=error_responses(401, 403),
    summary="Your own API keys, with their scope, expiry and last use",
)
async def list_api_keys(principal: Caller, session: DbSession) -> list[ApiKeyOut]:
    return [ApiKeyOut.model_validate(k) for k in await service.list_api_keys(session, principal)]


@router.delete(
    "/auth/api-keys/{key_id}",
    tags=["auth"],
    status_code=204,
    responses=error_responses(401, 403, 404, 422),
)
async def revoke_api_key(key_id: KeyId, principal: Caller, session: DbSession) -> Response:
    await service.revoke_api_key(session, principal, key_id)
    return Response(status_code=204)


@router.get(
    "/api-keys",
    tags=["auth"],
    response_model=list[ApiKeyOut],
    responses=error_responses(401, 403, 422),
    summary="Every API key of the tenant (admins)",
)
async def list_tenant_api_keys(
    scope: Admin, session: DbSession, user_id: OwnerId = None
) -> list[ApiKeyOut]:
    keys = await service.list_tenant_api_keys(session, scope, user_id=user_id)
    return [ApiKeyOut.model_validate(k) for k in keys]


@router.delete(
    "/api-keys/{key_id}",
    tags=["auth"],
    status_code=204,
    responses=error_responses(401, 403, 404, 422),
    summary="Revoke any API key of the tenant (admins)",
)
async def revoke_tenant_api_key(key_id: KeyId, scope: Admin, session: DbSession) -> Response:
    await service.revoke_tenant_api_key(session, scope, key_id)
    return Response(status_code=204)


# ---- users ----------------------------------------------------------------------------------


@router.post(
    "/users",
    tags=["users"],
    status_code=201,
    response_model=UserOut,
    responses=error_responses(401, 403, 409, 422),
)
async def create_user(
    body: UserCreate, scope: Admin, session: DbSession, response: Response
) -> UserOut:
    user = await service.create_user(session, scope, body)
    set_etag(response, user.id, user.version)
    return UserOut.model_validate(user)


@router.get(
    "/users", tags=["users"], response_model=Page[UserOut], responses=error_responses(401, 403, 422)
)
async def list_users(
    scope: Member,
    session: DbSession,
    page: PageParams,
    role: Annotated[Role | None, Query()] = None,
) -> Page[UserOut]:
    users, after = await service.list_users(
        session, scope, role=role, after_id=page.after_id, limit=page.limit
    )
    return page_of([UserOut.model_validate(u) for u in users], after)


@router.get(
    "/users/{user_id}",
    tags=["users"],
    response_model=UserOut,
    responses=error_responses(401, 403, 404, 422),
)
async def get_user(
    user_id: UserId, scope: Member, session: DbSession, response: Response
) -> UserOut:
    user = await service.get_user(session, scope, user_id)
    set_etag(response, user.id, user.version)
    return UserOut.model_validate(user)


@router.patch(
    "/users/{user_id}",
    tags=["users"],
    response_model=UserOut,
    responses=error_responses(401, 403, 404, 409, 412, 422),
)
async def update_user(
    user_id: UserId,
    body: UserUpdate,
    scope: Admin,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> UserOut:
    user = await service.update_user(
        session, scope, user_id, body, expected_version(if_match, user_id)
    )
    set_etag(response, user.id, user.version)
    return UserOut.model_validate(user)


@router.delete(
    "/users/{user_id}",
    tags=["users"],
    status_code=204,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def delete_user(user_id: UserId, scope: Admin, session: DbSession) -> Response:
    await service.delete_user(session, scope, user_id)
    return Response(status_code=204)


# Login attempts are recorded by auth and listed beside the audit log.
@router.get(
    "/audit/logins",
    tags=["audit"],
    response_model=Page[LoginAttemptOut],
    responses=error_responses(401, 403, 422),
    summary="Every login attempt against the tenant, failed and throttled ones included",
)
async def list_login_attempts(
    scope: Admin, session: DbSession, page: PageParams
) -> Page[LoginAttemptOut]:
    attempts, after = await service.list_login_attempts(
        session, scope.tenant_id, after_id=page.after_id, limit=page.limit
    )
    return page_of([LoginAttemptOut.model_validate(a) for a in attempts], after)
