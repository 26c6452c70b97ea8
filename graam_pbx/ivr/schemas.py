from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from graam_pbx.destinations.schemas import Destination, DestinationType, RoutedTo
from graam_pbx.fields import NotNull, ObjectId, ObjectName
from graam_pbx.ivr.models import IvrMenu, IvrOption

# Keypad order: how options are listed.
DIGITS = "0123456789*#"

_OPTIONS_DESCRIPTION = (
    "Keypad digit (0-9, * or #) to destination. On update, a given mapping replaces every "
    "option; a menu may lead to another menu, never to itself."
)
_OPTIONS_SCHEMA: dict[str, Any] = {"propertyNames": {"pattern": "^[0-9*#]$"}}


def _hangup() -> Destination:
    return Destination(type=DestinationType.HANGUP)


class IvrCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "main-menu",
                    "greeting_prompt_id": 4,
                    "timeout_s": 5,
                    "repeat_count": 2,
                    "timeout_destination": {"type": "queue", "id": 3},
                    "invalid_destination": {"type": "hangup"},
                    "options": {
                        "1": {"type": "queue", "id": 3},
                        "2": {"type": "voicemail", "id": 1},
                    },
                }
            ]
        },
    )

    name: ObjectName
    greeting_prompt_id: ObjectId | None = Field(None, description="One of the tenant's prompts.")
    timeout_s: int = Field(5, ge=1, le=60, description="Seconds to wait for a digit.")
    repeat_count: int = Field(2, ge=0, le=10, description="Times the greeting is repeated.")
    timeout_destination: RoutedTo = Field(default_factory=_hangup)
    invalid_destination: RoutedTo = Field(default_factory=_hangup)
    options: dict[str, RoutedTo] = Field(
        default_factory=dict, description=_OPTIONS_DESCRIPTION, json_schema_extra=_OPTIONS_SCHEMA
    )


class IvrUpdate(BaseModel):
    """Any subset; ``options``, when given, replaces all of them; ``greeting_prompt_id`` may be
    null."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"options": {"1": {"type": "queue", "id": 3}, "0": {"type": "hangup"}}}]
        },
    )

    name: Annotated[ObjectName | None, NotNull] = None
    greeting_prompt_id: ObjectId | None = None
    timeout_s: Annotated[int | None, NotNull] = Field(None, ge=1, le=60)
    repeat_count: Annotated[int | None, NotNull] = Field(None, ge=0, le=10)
    timeout_destination: Annotated[RoutedTo | None, NotNull] = None
    invalid_destination: Annotated[RoutedTo | None, NotNull] = None
    options: Annotated[dict[str, RoutedTo] | None, NotNull] = Field(
        None, description=_OPTIONS_DESCRIPTION, json_schema_extra=_OPTIONS_SCHEMA
    )


class IvrOptionOut(BaseModel):
    digit: str
    destination: Destination


class IvrOut(BaseModel):
    id: int
    name: str
    greeting_prompt_id: int | None
    timeout_s: int
    repeat_count: int
    timeout_destination: Destination
    invalid_destination: Destination
    options: list[IvrOptionOut] = Field(description="In keypad order: 0-9, *, #.")
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, menu: IvrMenu, options: list[IvrOption]) -> IvrOut:
        ordered = sorted(options, key=lambda option: DIGITS.index(option.digit))
        return cls(
            id=menu.id,
            name=menu.name,
            greeting_prompt_id=menu.greeting_prompt_id,
            timeout_s=menu.timeout_s,
            repeat_count=menu.repeat_count,
            timeout_destination=Destination.stored(menu.timeout_dest_type, menu.timeout_dest_id),
            invalid_destination=Destination.stored(menu.invalid_dest_type, menu.invalid_dest_id),
            options=[
                IvrOptionOut(digit=o.digit, destination=Destination.stored(o.dest_type, o.dest_id))
                for o in ordered
            ],
            version=menu.version,
            created_at=menu.created_at,
            updated_at=menu.updated_at,
        )
