from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from graam_pbx.fields import ObjectId


class Mode(StrEnum):
    """What the supervisor does on the agent's call."""

    LISTEN = "listen"  # hears the agent and the caller; neither hears the supervisor
    WHISPER = "whisper"  # the agent hears the supervisor, the caller does not
    BARGE = "barge"  # both hear the supervisor: a three-way call


class SupervisionStart(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"agent_user_id": 12, "mode": "listen", "device_id": 7}]},
    )

    agent_user_id: ObjectId = Field(description="The agent (a user of the caller's tenant).")
    mode: Mode = Field(
        description="listen: hear both sides, unheard; whisper: the agent alone hears the "
        "supervisor; barge: both hear the supervisor."
    )
    device_id: ObjectId | None = Field(
        None,
        description="The supervisor's own device that is called (absent: the supervisor's "
        "first device). An operator acting in the tenant names one of the tenant's devices.",
    )


class SupervisionOut(BaseModel):
    """A supervision started: the supervisor's device is being called; once it answers it
    hears (and, whispering or barging, speaks on) the agent's call."""

    id: str = Field(
        description="The supervision call's channel id (Asterisk's uniqueid of the call to "
        "the supervisor's device).",
        examples=["spy-5f0c6a4e9b1d4c7e8a2b3c4d5e6f7a8b"],
    )
    agent_user_id: int
    mode: Mode
    device_id: int = Field(description="The supervisor's device being called.")
    agent_channel: str = Field(
        description="The agent's channel spied on.", examples=["PJSIP/acme-ana-desk-0000002a"]
    )
    agent_told: bool = Field(
        description="Whether the agent hears a short tone when the supervisor starts "
        "(the tenant's recording settings: supervision_tells_agent)."
    )
