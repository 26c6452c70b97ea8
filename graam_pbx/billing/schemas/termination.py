"""Billing API schemas: termination and port-out requests."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from graam_pbx.billing.portout import PortOutState
from graam_pbx.fields import MessageText, ObjectId


class TerminationCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"last_day": "2027-01-31"}]}
    )

    last_day: date = Field(
        description="The last day of service: 30 days after today (billing clock) or later."
    )


class TerminationOut(BaseModel):
    tenant_id: int
    status: str = Field(description="The tenant's status: active, terminating, terminated, …")
    notice_given_on: date | None = Field(description="The day notice was given (null: none).")
    terminates_on: date | None = Field(description="The last day of service (null: none).")
    earliest_last_day: date = Field(description="The earliest last day a notice today may name.")


class PortOutCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"number_id": 12}]})

    number_id: ObjectId = Field(description="One of the tenant's numbers.")


class PortOutUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"state": "accepted"},
                {"state": "rejected", "note": "The new operator's request names another RIO."},
                {"state": "cancelled"},
            ]
        },
    )

    state: Literal["accepted", "rejected", "completed", "cancelled"] = Field(
        description="accepted, rejected, completed: the operator; cancelled: the tenant's "
        "admin or the operator, while requested."
    )
    note: Annotated[MessageText | None, Field(description="Why (shown to the client).")] = None


class PortOutOut(BaseModel):
    id: int
    tenant_id: int
    number_id: int
    e164: str
    state: PortOutState
    requested_at: datetime
    requested_by: str
    updated_at: datetime
    note: str
