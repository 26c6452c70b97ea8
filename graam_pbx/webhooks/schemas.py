from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from graam_pbx.webhooks import addresses
from graam_pbx.webhooks.models import DeliveryState, EventType

EVENTS_DESCRIPTION = (
    "The event types delivered: call.ringing, call.answered, call.missed, call.abandoned, "
    "call.ended, agent.state_changed, campaign.finished."
)


def _url(value: str) -> str:
    try:
        addresses.parse(value)
    except addresses.Refused as err:
        raise ValueError(str(err)) from None
    return value


def _events(value: list[EventType]) -> list[EventType]:
    if len(set(value)) != len(value):
        raise ValueError("an event type is named twice")
    return value


class WebhookCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://crm.example.com/graam/events",
                    "events": ["call.ringing", "call.answered", "call.ended"],
                    "description": "CRM",
                }
            ]
        },
    )

    url: str = Field(
        max_length=addresses.MAX_URL,
        description="An http or https URL without credentials, on a public address (unless "
        "the operator allows its network).",
    )
    events: list[EventType] = Field(min_length=1, description=EVENTS_DESCRIPTION)
    description: str = Field("", max_length=200)

    _check_url = field_validator("url")(_url)
    _check_events = field_validator("events")(_events)


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"enabled": True}]})

    url: str | None = Field(None, max_length=addresses.MAX_URL)
    events: list[EventType] | None = Field(None, min_length=1, description=EVENTS_DESCRIPTION)
    description: str | None = Field(None, max_length=200)
    enabled: bool | None = Field(
        None,
        description="false pauses deliveries (new events are not kept for it); true again "
        "after the worker disabled it clears its failure.",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return None if value is None else _url(value)

    @field_validator("events")
    @classmethod
    def _check_events(cls, value: list[EventType] | None) -> list[EventType] | None:
        return None if value is None else _events(value)


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    events: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None = Field(description="Why the worker disabled it, if it did.")
    failing_since: datetime | None = Field(
        description="Since when every delivery to it failed (null: the last one succeeded)."
    )
    created_at: datetime
    updated_at: datetime
    version: int


class WebhookSecret(BaseModel):
    secret: str = Field(
        description="The HMAC-SHA256 key of the signatures (Graam-Signature): shown only now.",
        examples=["whsec_4f0c…"],
    )


class WebhookCreated(WebhookOut, WebhookSecret):
    """The endpoint, with its secret: shown only in this answer."""


class DeliveryOut(BaseModel):
    id: int
    event_id: int
    type: EventType
    occurred_at: datetime
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None = Field(description="The next try (pending only).")
    last_status: int | None = Field(description="The endpoint's last HTTP status.")
    last_error: str | None
    delivered_at: datetime | None
    data: dict[str, Any] = Field(description="The event's data, as delivered.")
