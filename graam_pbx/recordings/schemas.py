from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from graam_pbx.fields import Flag, NotNull, ObjectId
from graam_pbx.recordings.models import RETENTION_DAYS_MAX
from graam_pbx.recordings.policy import Direction, Mode

RetentionDays = Annotated[
    int,
    Field(
        ge=1,
        le=RETENTION_DAYS_MAX,
        strict=True,
        description="Days a recording is kept, then purged (1 to 3650).",
        examples=[90],
    ),
]
PartyNumber = Annotated[
    str,
    Field(
        pattern=r"^\+?[0-9]{1,31}$",
        description="A phone number as the recordings hold it: digits, '+' first in E.164.",
        examples=["+33612345678"],
    ),
]


class SettingsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    tenant_id: int
    announce_prompt_id: int | None = Field(
        description="The prompt callers hear before a call that may be recorded; null: none."
    )
    retention_days: int
    agents_play_own: bool = Field(description="Agents may list and play their own recordings.")
    supervision_tells_agent: bool = Field(
        description="An agent is told when a supervisor listens, whispers or barges in."
    )


class SettingsUpdate(BaseModel):
    """Any subset; ``announce_prompt_id`` may be set to null."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"announce_prompt_id": 12, "retention_days": 180}]},
    )

    announce_prompt_id: ObjectId | None = None
    retention_days: Annotated[RetentionDays | None, NotNull] = None
    agents_play_own: Annotated[Flag | None, NotNull] = None
    supervision_tells_agent: Annotated[Flag | None, NotNull] = None


class RuleCreate(BaseModel):
    """The whole tenant (no queue, no agent), one queue or one agent; one direction or every
    direction (null)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"mode": "always"},
                {"queue_id": 3, "mode": "always"},
                {"user_id": 17, "direction": "outbound", "mode": "on_demand"},
            ]
        },
    )

    queue_id: ObjectId | None = None
    user_id: ObjectId | None = Field(None, description="An agent of the tenant.")
    direction: Direction | None = Field(None, description="Null: every direction.")
    mode: Mode

    @model_validator(mode="after")
    def _one_scope(self) -> RuleCreate:
        if self.queue_id is not None and self.user_id is not None:
            raise ValueError("a rule names a queue or an agent, not both")
        return self


class RuleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"mode": "never"}]})

    mode: Mode


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    queue_id: int | None
    user_id: int | None
    direction: Direction | None
    mode: Mode


class RecordingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    linkedid: str = Field(description="The call's id: its CDRs' and queue call's linkedid.")
    uniqueid: str = Field(description="The recorded channel (the agent's leg).")
    direction: Direction
    queue_id: int | None
    agent_user_id: int | None
    party_number: str | None = Field(description="The other party: caller or number called.")
    started_at: datetime
    duration_ms: int
    size_bytes: int
    sha256: str = Field(description="SHA-256 of the stored file, hex.")
    media_type: str


class Erasure(BaseModel):
    """Whose recordings to erase: every recording with this other party, or of this agent."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"party_number": "+33612345678"}]}
    )

    party_number: PartyNumber | None = None
    agent_user_id: ObjectId | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Erasure:
        if (self.party_number is None) == (self.agent_user_id is None):
            raise ValueError("name either party_number or agent_user_id")
        return self


class ErasureOut(BaseModel):
    erased: int
