"""What an event looks like on the wire: the body of a delivery (and of a streamed event's
``data:``), and the shape of each type's ``data``, as the recorders and the migration's
triggers make it (the OpenAPI document's ``webhooks`` describe them from these models)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from graam_pbx.webhooks.models import EventType


def envelope(
    event_id: int, event_type: str, occurred_at: datetime, tenant_id: int, data: str
) -> bytes:
    """The body: the event's id, type, time and tenant around its data (JSON, as stored)."""
    head = json.dumps(
        {
            "id": str(event_id),
            "type": event_type,
            "occurred_at": occurred_at.isoformat(),
            "tenant_id": tenant_id,
        }
    )
    return (head[:-1] + ', "data": ' + data + "}").encode()


# ---- each type's data -----------------------------------------------------------------------

CALL_ID = "The call's id: its linkedid, the key of its CDRs, its queue call and its recordings."


class EventCaller(BaseModel):
    number: str = Field(description="The caller's number, as Asterisk has it.")
    name: str = Field(description="The caller's name, as Asterisk has it (may be empty).")


class QueueCallData(BaseModel):
    call_id: str = Field(description=CALL_ID, examples=["graam-1764979190.41"])
    channel_id: str = Field(description="The caller's channel (its uniqueid).")
    queue_id: int = Field(description="The queue (`/api/v1/queues/{id}`).")
    caller: EventCaller


class AgentLegData(QueueCallData):
    agent_user_id: int | None = Field(description="The agent (user id); null if not known.")
    agent_channel_id: str = Field(description="The channel ringing the agent's phone.")


class CallRingingData(AgentLegData):
    """An agent's phone rings with a queue call (AMI ``AgentCalled``)."""


class CallAnsweredData(AgentLegData):
    """The agent answered (AMI ``AgentConnect``)."""

    hold_seconds: int | None = Field(description="How long the caller waited in the queue.")
    ring_seconds: int | None = Field(description="How long the agent's phone rang.")


class CallMissedData(AgentLegData):
    """The agent's phone rang out unanswered (AMI ``AgentRingNoAnswer``)."""

    ring_seconds: int | None = Field(description="How long the agent's phone rang.")


class CallAbandonedData(QueueCallData):
    """The caller hung up while waiting in the queue (AMI ``QueueCallerAbandon``)."""

    position: int | None = Field(description="The caller's position in the queue then.")
    hold_seconds: int | None = Field(description="How long the caller waited.")


class EventCdr(BaseModel):
    """The leg's CDR, as ``/api/v1/cdrs`` has it."""

    uniqueid: str
    sequence: int
    linkedid: str
    system_name: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    duration: float = Field(description="Seconds, to the microsecond.")
    billsec: float = Field(description="Seconds answered, to the microsecond.")
    disposition: str = Field(examples=["ANSWERED"])
    direction: str | None = Field(examples=["inbound"])
    did: str | None
    queue_id: int | None
    agent_user_id: int | None
    src: str
    dst: str
    to_number: str | None = Field(description="What was dialled (E.164, or an extension).")
    refusal_reason: str | None
    billable: bool
    device: str | None
    forwarded_from: int | None = Field(
        description="The user whose forwarding rule sent this leg here (docs/forwarding.md)."
    )


class CallEndedData(BaseModel):
    """A leg of a call ended: its CDR was written (live, or backfilled after an outage)."""

    call_id: str = Field(description=CALL_ID)
    channel_id: str = Field(description="The leg's channel (its uniqueid).")
    cdr: EventCdr


class EventVoicemailCaller(BaseModel):
    number: str | None
    name: str | None


class EventVoicemailLinks(BaseModel):
    message: str = Field(description="The message in the API.")
    audio: str = Field(description="Its WAV in the API.")


class VoicemailLeftData(BaseModel):
    """A caller left a message in a voicemail box."""

    box_id: int
    box_number: str
    msg_id: str
    caller: EventVoicemailCaller
    duration_seconds: int
    received_at: datetime
    urgent: bool
    links: EventVoicemailLinks


class AgentStateChangedData(BaseModel):
    """An agent's state changed: a new stretch of its timeline began."""

    agent_user_id: int
    state: str = Field(
        description="available, ringing, on-call, wrap-up, paused, unregistered or logged-out.",
        examples=["paused"],
    )
    pause_reason: str | None = Field(description="The pause's reason code while paused.")
    since: datetime


class CampaignFinishedData(BaseModel):
    """An outbound campaign finished."""

    campaign_id: int
    name: str


# ---- the bodies -----------------------------------------------------------------------------


class EventBody(BaseModel):
    id: str = Field(
        description="The event's id (also `Graam-Event-Id`, and a streamed event's `id:`): "
        "deduplicate on it, deliveries are at least once.",
        examples=["5812"],
    )
    occurred_at: datetime = Field(description="When it happened.")
    tenant_id: int


class CallRingingEvent(EventBody):
    type: Literal["call.ringing"]
    data: CallRingingData


class CallAnsweredEvent(EventBody):
    type: Literal["call.answered"]
    data: CallAnsweredData


class CallMissedEvent(EventBody):
    type: Literal["call.missed"]
    data: CallMissedData


class CallAbandonedEvent(EventBody):
    type: Literal["call.abandoned"]
    data: CallAbandonedData


class CallEndedEvent(EventBody):
    type: Literal["call.ended"]
    data: CallEndedData


class VoicemailLeftEvent(EventBody):
    type: Literal["voicemail.left"]
    data: VoicemailLeftData


class AgentStateChangedEvent(EventBody):
    type: Literal["agent.state_changed"]
    data: AgentStateChangedData


class CampaignFinishedEvent(EventBody):
    type: Literal["campaign.finished"]
    data: CampaignFinishedData


BODIES: dict[EventType, type[EventBody]] = {
    EventType.CALL_RINGING: CallRingingEvent,
    EventType.CALL_ANSWERED: CallAnsweredEvent,
    EventType.CALL_MISSED: CallMissedEvent,
    EventType.CALL_ABANDONED: CallAbandonedEvent,
    EventType.CALL_ENDED: CallEndedEvent,
    EventType.VOICEMAIL_LEFT: VoicemailLeftEvent,
    EventType.AGENT_STATE_CHANGED: AgentStateChangedEvent,
    EventType.CAMPAIGN_FINISHED: CampaignFinishedEvent,
}
