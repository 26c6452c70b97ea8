from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from graam_pbx.auth.principal import Role
from graam_pbx.fields import DisplayText, Email, NotNull, ObjectName, Slug

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
    password: SecretStr = Field(min_length=12, max_length=200)


class UserUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"display_name": "Ana Lima-Souza", "disabled": False}]},
    )

    email: Annotated[Email | None, NotNull] = None
    display_name: Annotated[DisplayText | None, NotNull] = None
    role: Annotated[Role | None, NotNull] = None
    disabled: Annotated[bool | None, NotNull] = None
    password: Annotated[SecretStr | None, NotNull] = Field(None, min_length=12, max_length=200)


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


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "crm-sync"}]}
    )

    name: ObjectName


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
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
