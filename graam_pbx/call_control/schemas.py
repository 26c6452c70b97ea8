from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from graam_pbx.recordings.policy import Mode


class RecordingChange(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"recording": True}]})

    recording: bool = Field(
        description="true: record the call from now (start, or resume after a pause); false: "
        "pause it (what is said until it resumes is not in the recording)."
    )


class RecordingState(BaseModel):
    """The recording of the caller's current call."""

    call: str = Field(
        description="The call (Asterisk's linkedid: its CDRs' and its recording's).",
        examples=["graam-1764979200.42"],
    )
    channel: str = Field(
        description="The caller's channel in the call.", examples=["PJSIP/acme-ana-0000002a"]
    )
    recordable: bool = Field(
        description="Whether the tenant's policy lets this call be recorded (false: `recording` "
        "can never be true)."
    )
    mode: Mode | None = Field(
        description="The policy's mode for this call: always (recorded from the answer) or "
        "on_demand (recorded once the agent starts it); null when not recordable."
    )
    recording: bool = Field(description="Whether the call is being recorded now.")
