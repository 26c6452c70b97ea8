from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from graam_pbx.destinations.models import DESTINATION_TYPES
from graam_pbx.fields import MAX_ID


class DestinationType(StrEnum):
    AGENT = "agent"  # a user with the agent role: rings its devices
    EXTENSION = "extension"  # one agent device
    QUEUE = "queue"
    IVR = "ivr"
    VOICEMAIL = "voicemail"
    ANNOUNCEMENT = "announcement"  # plays a prompt, then hangs up
    HANGUP = "hangup"
    EXTERNAL = "external"  # a number outside the switch (/api/v1/external-numbers)
    FOLLOW_ME = "follow_me"  # rings phones and numbers in steps (/api/v1/follow-me)


assert tuple(t.value for t in DestinationType) == DESTINATION_TYPES  # noqa: S101


class Destination(BaseModel):
    """Where a call goes: one typed reference to an object of the same tenant."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"type": "queue", "id": 3}]}
    )

    type: DestinationType
    id: int | None = Field(None, ge=1, description="The object's id; none for hangup.")

    @model_validator(mode="after")
    def _id_matches_type(self) -> Destination:
        if self.type is DestinationType.HANGUP and self.id is not None:
            raise ValueError("hangup takes no id")
        if self.type is not DestinationType.HANGUP and self.id is None:
            raise ValueError(f"{self.type} needs the id of its object")
        return self

    @classmethod
    def stored(cls, kind: str, object_id: int | None) -> Destination:
        """The destination stored in a NOT NULL (type, id) column pair."""
        return cls(type=DestinationType(kind), id=object_id)

    @classmethod
    def of(cls, kind: str | None, object_id: int | None) -> Destination | None:
        """The destination stored in a nullable (type, id) column pair, if any."""
        return None if kind is None else cls.stored(kind, object_id)


def _bounded_destination(destination: Destination | None) -> Destination | None:
    if destination is not None and destination.id is not None and destination.id > MAX_ID:
        raise ValueError("id is out of range")
    return destination


RoutedTo = Annotated[Destination, AfterValidator(_bounded_destination)]
