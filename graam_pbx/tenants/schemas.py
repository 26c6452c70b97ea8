from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from graam_pbx.fields import Country, DisplayText, NotNull, ObjectName, Slug, Timezone
from graam_pbx.tenants.models import TenantStatus

# The most licences a tenant may hold, and the highest ceiling (the console's forms say it).
MAX_LICENCES = 100_000
CEILING_DESCRIPTION = (
    "The most licences the tenant's admin may hold, set by the operator (null: no ceiling)."
)


class TenantCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "slug": "acme",
                    "name": "Acme Support",
                    "country": "FR",
                    "timezone": "Europe/Paris",
                    "plan": "standard",
                    "licences": 10,
                    "licence_ceiling": 50,
                }
            ]
        },
    )

    slug: Slug
    name: DisplayText
    country: Country
    timezone: Timezone
    plan: ObjectName = "standard"
    licences: int = Field(0, ge=0, le=MAX_LICENCES, strict=True)
    licence_ceiling: int | None = Field(
        None, ge=0, le=MAX_LICENCES, strict=True, description=CEILING_DESCRIPTION
    )


class TenantUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"status": "terminating", "ends_on": "2027-01-31"},
                {"plan": "premium"},
                {"licence_ceiling": 50},
            ]
        },
    )

    name: Annotated[DisplayText | None, NotNull] = None
    country: Annotated[Country | None, NotNull] = None
    timezone: Annotated[Timezone | None, NotNull] = None
    plan: Annotated[ObjectName | None, NotNull] = None
    status: Annotated[TenantStatus | None, NotNull] = None
    ends_on: date | None = Field(None, description="With status terminating: the last day.")
    licence_ceiling: int | None = Field(
        None,
        ge=0,
        le=MAX_LICENCES,
        strict=True,
        description=CEILING_DESCRIPTION + " Null removes it.",
    )


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    name: str
    country: str
    timezone: str
    status: TenantStatus
    plan: str
    licences: int
    licence_ceiling: int | None
    ends_on: date | None
    version: int
    created_at: datetime
    updated_at: datetime


class LicencesOut(BaseModel):
    tenant_id: int
    licences: int = Field(description="Concurrent agents the tenant may have logged in.")
    in_use: int = Field(description="Agents logged in now.")
    licence_ceiling: int | None = Field(description=CEILING_DESCRIPTION)


class LicencesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"licences": 25}]})

    licences: int = Field(ge=0, le=MAX_LICENCES, strict=True)
