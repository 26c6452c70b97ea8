from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from graam_pbx.fields import DisplayText, MessageText


class Priority(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Status(StrEnum):
    OPEN = "open"  # waiting for the operator
    ANSWERED = "answered"  # the operator wrote last
    CLOSED = "closed"


# The contract: the operator answers a high-priority request within 24 h and a medium one
# within 48 h; a low one within 5 days (ours). Calendar hours, from the moment it is filed.
ANSWER_WITHIN: dict[Priority, timedelta] = {
    Priority.HIGH: timedelta(hours=24),
    Priority.MEDIUM: timedelta(hours=48),
    Priority.LOW: timedelta(days=5),
}


class SupportRequestCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "subject": "Main number unreachable",
                    "body": "Calls to +33 1 42 68 53 00 ring nobody since 9:00.",
                    "priority": "high",
                }
            ]
        },
    )

    subject: DisplayText
    body: MessageText
    priority: Priority = Field(
        description="high: answered within 24 h; medium: 48 h; low: 5 days (calendar time)."
    )


class SupportMessageCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"body": "It rings again since 10:15, thank you."}]},
    )

    body: MessageText


class SupportMessageOut(BaseModel):
    id: int
    author: str = Field(description="Who wrote it: the user's e-mail.")
    from_operator: bool
    body: str
    created_at: datetime


class SupportRequestOut(BaseModel):
    id: int
    tenant_id: int
    subject: str
    priority: Priority
    status: Status
    requester_email: str
    created_at: datetime
    due_at: datetime = Field(description="created_at plus the priority's delay.")
    answered_at: datetime | None = Field(description="The operator's first answer.")
    closed_at: datetime | None
    overdue: bool = Field(description="Not answered by the operator, not closed, past due_at.")


class SupportRequestDetail(SupportRequestOut):
    messages: list[SupportMessageOut] = Field(description="The conversation, oldest first.")
