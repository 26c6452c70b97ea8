from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from graam_pbx.destinations.schemas import RoutedTo
from graam_pbx.fields import E164, Flag, NotNull, ObjectId, ShortDisplayText
from graam_pbx.forwarding.models import (
    MAX_MEMBERS,
    MAX_STEPS,
    NO_ANSWER_SECONDS,
    STEP_SECONDS,
)

NumberName = Annotated[ShortDisplayText, Field(examples=["Night duty mobile"])]


class ExternalNumberCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Night duty mobile", "number": "+33612345678"}]},
    )

    name: NumberName
    number: E164


class ExternalNumberUpdate(BaseModel):
    """Any subset."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "Duty"}]})

    name: Annotated[NumberName | None, NotNull] = None
    number: Annotated[E164 | None, NotNull] = None


class ExternalNumberOut(BaseModel):
    """A number outside the switch that calls can be sent to: ``{"type": "external", "id":
    <its id>}`` in any destination."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    number: str
    version: int
    created_at: datetime
    updated_at: datetime


NoAnswerSeconds = Annotated[
    int,
    Field(
        ge=NO_ANSWER_SECONDS[0],
        le=NO_ANSWER_SECONDS[1],
        strict=True,
        description="How long the user's phones ring before the no-answer rule sends the call on.",
    ),
]


class ForwardingRules(BaseModel):
    """A user's forwarding rules, each a destination of type ``extension``, ``agent``,
    ``voicemail`` or ``external`` (none: the rule is off). They apply to calls made to the
    user (their extensions, a route or menu option naming them), never to queue calls."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "do_not_disturb": False,
                    "do_not_disturb_to": {"type": "voicemail", "id": 2},
                    "unconditional": None,
                    "busy": {"type": "voicemail", "id": 2},
                    "no_answer": {"type": "external", "id": 4},
                    "no_answer_seconds": 20,
                    "unreachable": {"type": "extension", "id": 7},
                }
            ]
        },
    )

    do_not_disturb: Flag = Field(
        False, description="The user's phones never ring: calls go to do_not_disturb_to."
    )
    do_not_disturb_to: RoutedTo | None = Field(
        None,
        description="The voicemail box do-not-disturb sends calls to; none: callers hear busy.",
    )
    unconditional: RoutedTo | None = Field(None, description="Every call, phones never rung.")
    busy: RoutedTo | None = Field(None, description="When the user's phone answers busy.")
    no_answer: RoutedTo | None = Field(
        None, description="When no phone answered within no_answer_seconds."
    )
    no_answer_seconds: NoAnswerSeconds = 20
    unreachable: RoutedTo | None = Field(
        None, description="When none of the user's phones is registered."
    )


class ForwardingRulesOut(ForwardingRules):
    user_id: int
    version: int = Field(0, description="0 until the rules are first saved.")


class FollowMeMemberIn(BaseModel):
    """One phone (``extension``), person (``agent``) or external number a step rings."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["extension", "agent", "external"]
    id: ObjectId
    confirm: Flag = Field(
        False,
        description="An external number must press 1 to take the call: a mobile's voicemail "
        "answering never does, the call goes on to the next step.",
    )


class FollowMeStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ring_seconds: Annotated[int, Field(ge=STEP_SECONDS[0], le=STEP_SECONDS[1], strict=True)]
    ring: Annotated[list[FollowMeMemberIn], Field(min_length=1, max_length=MAX_MEMBERS)]


class FollowMeIn(BaseModel):
    """A destination that rings its steps in order, each step's members at once, then sends
    the call to ``final``: ``{"type": "follow_me", "id": <its id>}`` in any destination."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Ana, then her mobile",
                    "steps": [
                        {"ring_seconds": 15, "ring": [{"type": "extension", "id": 3}]},
                        {
                            "ring_seconds": 25,
                            "ring": [{"type": "external", "id": 4, "confirm": True}],
                        },
                    ],
                    "final": {"type": "voicemail", "id": 2},
                }
            ]
        },
    )

    name: NumberName
    steps: Annotated[list[FollowMeStep], Field(min_length=1, max_length=MAX_STEPS)]
    final: RoutedTo


class FollowMeOut(FollowMeIn):
    model_config = ConfigDict(extra="forbid")

    id: int
    version: int
    created_at: datetime
    updated_at: datetime
