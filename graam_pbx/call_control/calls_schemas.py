"""Bodies and answers of /api/v1/calls: click-to-call, a call's state and its control."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from graam_pbx.fields import E164, Extension, ObjectId

# What a call id may be: Asterisk's uniqueids ("<system name>-<seconds>.<serial>") and the
# control plane's own channel ids ("c2c-<hex>"), as graam_pbx.ami.channels accepts them.
CALL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,149}$"
# An idempotency key: printable ASCII, no spaces (what a client's UUID or request id is).
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,255}$"
# DTMF digits a party may be sent: the keypad's, and the four column keys.
DTMF_PATTERN = r"^[0-9*#A-D]{1,32}$"


class ClickToCallIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"number": "+33612345678", "agent_user_id": 12}]},
    )

    number: E164 = Field(description="The number dialled once the agent answers (E.164).")
    agent_user_id: ObjectId | None = Field(
        None,
        description="The user whose device rings first. Absent: the caller itself (an agent, "
        "or the agent an API key acts as). Supervisors, admins and operators name one; an "
        "agent may name only itself.",
    )


class CallPlaced(BaseModel):
    """A click-to-call accepted: the agent's device is being called; once it answers, the
    number is dialled."""

    id: str = Field(
        description="The call's id: the channel id given to Asterisk for the agent's leg, which "
        "becomes the call's linkedid (its CDRs' and its recordings').",
        examples=["c2c-5f0c6a4e9b1d4c7e8a2b3c4d5e6f7a8b"],
    )
    agent_user_id: int
    device: str = Field(
        description="The agent's device that rings (its SIP username).",
        examples=["acme-ana-desk"],
    )
    number: str = Field(examples=["+33612345678"])
    created_at: datetime


class CallStateName(StrEnum):
    """Where a call is, from Asterisk's channels (or its CDRs once it ended)."""

    STARTING = "starting"  # a click-to-call sent to Asterisk, no channel yet
    RINGING = "ringing"  # nobody answered yet (a click-to-call: the agent's device rings)
    ANSWERED = "answered"  # a party answered, nobody talks yet (the number rings, a queue...)
    CONNECTED = "connected"  # two parties talk (in one bridge)
    HELD = "held"  # on hold through the API
    ENDED = "ended"  # no channel left
    NOT_PLACED = "not-placed"  # a click-to-call Asterisk never took


class ChannelOut(BaseModel):
    """One of the call's channels, as Asterisk shows it now."""

    name: str = Field(examples=["PJSIP/acme-ana-desk-0000002a"])
    uniqueid: str
    state: str = Field(description="Asterisk's channel state: Ring, Ringing, Up…")
    bridged: bool = Field(description="Whether it is in a bridge (talking to another party).")
    held: bool = Field(description="Whether it is on hold through the API.")
    device: str | None = Field(description="The tenant's device the channel is of, if any.")
    user_id: int | None = Field(description="That device's user.")


class LegOut(BaseModel):
    """One leg (CDR) of an ended call."""

    uniqueid: str
    direction: str | None
    disposition: str
    to_number: str | None
    agent_user_id: int | None
    answered_at: datetime | None
    ended_at: datetime
    billsec: Decimal = Field(description="Exact seconds billed from the answer (decimal).")
    billable: bool


class CallOut(BaseModel):
    id: str = Field(description="The call's id (Asterisk's linkedid).")
    state: CallStateName
    channels: list[ChannelOut] = Field(description="Its live channels (none once ended).")
    legs: list[LegOut] = Field(
        description="Its CDRs, once it ended (they may take a moment to be written)."
    )
    agent_user_id: int | None = Field(description="A click-to-call's agent.")
    number: str | None = Field(description="A click-to-call's number.")


class TargetType(StrEnum):
    EXTENSION = "extension"  # one of the tenant's devices, by its extension
    QUEUE = "queue"  # one of the tenant's queues
    NUMBER = "number"  # an outside number, through the tenant's outbound routes


class TransferTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: TargetType
    extension: Extension | None = Field(None, description="type extension: its extension.")
    id: ObjectId | None = Field(None, description="type queue: the queue's id.")
    number: E164 | None = Field(None, description="type number: the number (E.164).")

    @model_validator(mode="after")
    def _one_target(self) -> TransferTarget:
        wanted = {
            TargetType.EXTENSION: "extension",
            TargetType.QUEUE: "id",
            TargetType.NUMBER: "number",
        }[self.type]
        given = {name for name in ("extension", "id", "number") if getattr(self, name) is not None}
        if given != {wanted}:
            raise ValueError(f"a {self.type.value} target gives its {wanted}, and nothing else")
        return self


class TransferIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"to": {"type": "queue", "id": 3}},
                {"to": {"type": "extension", "extension": "202"}, "attended": True},
                {"to": {"type": "number", "number": "+33612345678"}},
            ]
        },
    )

    to: TransferTarget
    attended: bool = Field(
        False,
        strict=True,
        description="false: blind (the other party goes to the target at once); true: "
        "attended (the agent is put through to the target first, the other party held; the "
        "agent completes it by hanging up, or with *2 on its phone, *1 to go back).",
    )


class DtmfIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"digits": "123#"}]})

    digits: Annotated[str, StringConstraints(pattern=DTMF_PATTERN)] = Field(
        description="0-9, *, #, A-D; 1 to 32 of them, sent one after the other."
    )


class ControlOut(BaseModel):
    """What was asked of the call; its state follows (GET /api/v1/calls/{id})."""

    id: str
    action: str = Field(examples=["hangup"])
    channels: list[str] = Field(description="The channels acted on.")
