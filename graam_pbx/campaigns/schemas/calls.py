"""The agent's side of a campaign: the call screen, dispositions, preview reservations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from graam_pbx.campaigns.schemas.dispositions import DispositionOut
from graam_pbx.fields import ObjectId


class ContactCard(BaseModel):
    id: int
    number: str
    name: str | None
    region: str
    fields: dict[str, Any]


class CampaignRef(BaseModel):
    id: int
    name: str
    mode: str


class CurrentCall(BaseModel):
    attempt_id: int
    state: str = Field(description="in_progress, or awaiting_disposition once the call ended.")
    placed_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    campaign: CampaignRef
    contact: ContactCard
    script: str = Field(description="The campaign's script rendered with the contact (HTML-safe).")
    dispositions: list[DispositionOut]


class DispositionSet(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"disposition_id": 1}]}
    )

    disposition_id: ObjectId


class AttemptDisposed(BaseModel):
    attempt_id: int
    disposition_id: int
    outcome: str | None
    contact_state: str


class PreviewContact(BaseModel):
    campaign: CampaignRef
    contact: ContactCard
    attempts: int
    last_outcome: str | None
    script: str


class PreviewDialed(BaseModel):
    attempt_id: int
