from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from graam_pbx.auth.passwords import MAX_LENGTH as PASSWORD_MAX_LENGTH
from graam_pbx.auth.passwords import MIN_LENGTH as PASSWORD_MIN_LENGTH
from graam_pbx.auth.principal import Area, Role
from graam_pbx.fields import DisplayText, Email, Flag, NotNull, ObjectName, Slug

Password = SecretStr


class TokenRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"email": "admin@demo.example", "password": "…", "tenant": "demo"}]
        },
    )

    email: str = Field(max_length=254)
    password: SecretStr = Field(max_length=200)
    tenant: Slug | None = Field(None, description="The tenant's slug; omitted by operators.")


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth 2 token type
    expires_in: int = Field(description="Seconds the access token is valid.")


class RefreshRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"refresh_token": "kN3…(from POST /auth/token)"}]},
    )

    refresh_token: str = Field(max_length=200)


class UserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "ana@acme.example",
                    "display_name": "Ana Lima",
                    "role": "agent",
                    "password": "correct horse battery",
                }
            ]
        },
    )

    email: Email
    display_name: DisplayText
    role: Role
    password: SecretStr = Field(
        min_length=PASSWORD_MIN_LENGTH,
        max_length=PASSWORD_MAX_LENGTH,
        description="Judged against common passwords and the user's own names (see README).",
    )


class UserUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"display_name": "Ana Lima-Souza", "disabled": False}]},
    )

    email: Annotated[Email | None, NotNull] = None
    display_name: Annotated[DisplayText | None, NotNull] = None
    role: Annotated[Role | None, NotNull] = None
    disabled: Annotated[Flag | None, NotNull] = None
    password: Annotated[SecretStr | None, NotNull] = Field(
        None,
        min_length=PASSWORD_MIN_LENGTH,
        max_length=PASSWORD_MAX_LENGTH,
        description="A reset: the user's tokens and API keys are revoked.",
    )


class PasswordChange(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"current_password": "correct horse battery", "new_password": "plum violin sunrise"}
            ]
        },
    )

    current_password: SecretStr = Field(max_length=PASSWORD_MAX_LENGTH)
    new_password: SecretStr = Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    tenant_id: int | None
    email: str
    display_name: str
    role: Role
    disabled: bool
    version: int
    created_at: datetime
    updated_at: datetime


class MeOut(BaseModel):
    user_id: int
    role: Role
    tenant_id: int | None
    label: str


API_KEY_DEFAULT_DAYS = 90
API_KEY_MAX_DAYS = 365


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "crm-sync",
                    "read_only": False,
                    "areas": ["call records", "agent sessions"],
                    "expires_in_days": 30,
                }
            ]
        },
    )

    name: ObjectName
    read_only: Flag = Field(
        True, description="Only GET and HEAD requests (the default); false lets it write too."
    )
    areas: list[Area] | None = Field(
        None,
        min_length=1,
        max_length=len(Area),
        description=(
            "The parts of the API (OpenAPI tags) it may use. Default: every area for a "
            "read-only key; every area but auth and users (which mint credentials) for a key "
            "that writes."
        ),
    )
    expires_in_days: int = Field(
        API_KEY_DEFAULT_DAYS,
        ge=1,
        le=API_KEY_MAX_DAYS,
        description=f"Days it works (default {API_KEY_DEFAULT_DAYS}, at most {API_KEY_MAX_DAYS}).",
    )


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    tenant_id: int | None
    name: str
    prefix: str
    read_only: bool
    areas: list[str]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None = Field(description="Known to the minute.")
    last_used_address: str | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="Shown once: use it as the bearer credential.")


class LoginAttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    email: str
    tenant_slug: str | None
    address: str | None
    user_id: int | None
    success: bool
    reason: str
