from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from graam_pbx.fields import ObjectName


class PromptUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "welcome"}]})

    name: ObjectName


class PromptOut(BaseModel):
    """A prompt's metadata; its audio is at ``/api/v1/prompts/{id}/audio``."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    sample_rate: int = Field(description="8000 or 16000 Hz.")
    duration_ms: int
    size_bytes: int
    sha256: str = Field(description="Hex digest of the WAV file as uploaded.")
    version: int
    created_at: datetime
    updated_at: datetime
