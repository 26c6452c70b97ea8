from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from graam_pbx.fields import DisplayText, MessageText, ObjectId


class NoticeCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Maintenance of the SIP trunks",
                    "body": "Calls may drop for a minute between 02:00 and 02:30 UTC.",
                    "effective_on": "2027-02-01",
                    "tenant_ids": None,
                }
            ]
        },
    )

    title: DisplayText
    body: MessageText
    effective_on: date = Field(
        description="When the change takes effect: at least one month after publication "
        "(the contract's notice period)."
    )
    tenant_ids: list[ObjectId] | None = Field(
        None,
        min_length=1,
        max_length=10_000,
        description="The tenants it concerns; absent or null: every tenant.",
    )


class NoticeOut(BaseModel):
    id: int
    title: str
    body: str
    effective_on: date
    published_at: datetime
    shown_until: date = Field(description="Shown to its tenants' users until this day (UTC).")
    every_tenant: bool
    tenant_ids: list[int] | None = Field(
        description="Operators only: the tenants it concerns (null: every tenant, or not "
        "shown to a tenant's user)."
    )
