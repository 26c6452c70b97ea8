from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from graam_pbx.fields import DisplayText, Email, Extension, NotNull, ObjectId, Pin

NAME_MAX = 100  # voicemail_boxes.name


def _short_enough(text: str) -> str:
    if len(text) > NAME_MAX:
        raise ValueError(f"must be at most {NAME_MAX} characters")
    return text


BoxName = Annotated[
    DisplayText,
    AfterValidator(_short_enough),
    Field(json_schema_extra={"maxLength": NAME_MAX}, examples=["Support after hours"]),
]


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

    number: Extension
    name: BoxName
    pin: Pin = Field(description="Write-only: never returned.")
    email: Email | None = Field(None, description="Where new messages are sent.")
    greeting_prompt_id: ObjectId | None = Field(None, description="One of the tenant's prompts.")


class BoxUpdate(BaseModel):
    """Any subset; ``email`` and ``greeting_prompt_id`` may be set to null."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"pin": "9021", "email": None}]}
    )

    number: Annotated[Extension | None, NotNull] = None
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
