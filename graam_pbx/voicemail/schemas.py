from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from graam_pbx.fields import DisplayText, Email, Extension, ObjectId, Pin

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


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may not be null: leave it out to keep the current value")
    return value


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

    number: Extension | None = None
    name: BoxName | None = None
    pin: Pin | None = Field(None, description="Write-only: never returned.")
    email: Email | None = None
    greeting_prompt_id: ObjectId | None = None

    _present_not_null = field_validator("number", "name", "pin", mode="before")(_not_null)


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
