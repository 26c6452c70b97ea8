from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from graam_pbx.fields import BoxNumber, Email, NotNull, ObjectId, Pin, ShortDisplayText

BoxName = Annotated[ShortDisplayText, Field(examples=["Support after hours"])]


class BoxCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "number": "800",
                    "name": "Support after hours",
                    "pin": "4711",
                    "email": "support@acme.example",
                    "greeting_prompt_id": 4,
                }
            ]
        },
    )

    number: BoxNumber
    name: BoxName
    pin: Pin = Field(description="Write-only: never returned.")
    email: Email | None = Field(None, description="Where new messages are sent.")
    greeting_prompt_id: ObjectId | None = Field(None, description="One of the tenant's prompts.")


class BoxUpdate(BaseModel):
    """Any subset; ``email`` and ``greeting_prompt_id`` may be set to null."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"pin": "9021", "email": None}]}
    )

    number: Annotated[BoxNumber | None, NotNull] = None
    name: Annotated[BoxName | None, NotNull] = None
    pin: Annotated[Pin | None, NotNull] = Field(None, description="Write-only: never returned.")
    email: Email | None = None
    greeting_prompt_id: ObjectId | None = None


class BoxOut(BaseModel):
    """A voicemail box; its PIN is write-only."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    number: str
    name: str
    email: str | None
    greeting_prompt_id: int | None
    version: int
    created_at: datetime
    updated_at: datetime


class MessageFolder(StrEnum):
    """Asterisk's folders: new messages are in INBOX (or Urgent), read ones in Old."""

    INBOX = "INBOX"
    URGENT = "Urgent"
    OLD = "Old"
    WORK = "Work"
    FAMILY = "Family"
    FRIENDS = "Friends"
    CUST1 = "Cust1"
    CUST2 = "Cust2"
    CUST3 = "Cust3"
    CUST4 = "Cust4"
    CUST5 = "Cust5"


class MessageOut(BaseModel):
    """A message left in a box; ``id`` is stable while it moves between folders."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "1796286012-00000003",
                    "box_id": 7,
                    "folder": "INBOX",
                    "read": False,
                    "urgent": False,
                    "caller_id": '"Alice" <+33612345678>',
                    "caller_name": "Alice",
                    "caller_number": "+33612345678",
                    "duration": 12,
                    "received_at": "2026-12-03T09:40:12Z",
                }
            ]
        }
    )

    id: str = Field(description="Asterisk's msg_id of the message.")
    box_id: int
    folder: MessageFolder
    read: bool = Field(description="False while the message is in INBOX or Urgent.")
    urgent: bool
    caller_id: str = Field(description="As Asterisk recorded it.")
    caller_name: str | None
    caller_number: str | None
    duration: int = Field(description="Seconds.")
    received_at: datetime
