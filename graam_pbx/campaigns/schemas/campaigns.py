"""Campaigns: what to call, through which queue and caller ID, when, and how often."""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from graam_pbx.campaigns.models import (
    RETRY_OUTCOMES,
    Audience,
    Campaign,
    CampaignMode,
    CampaignStatus,
    MachineAction,
)
from graam_pbx.fields import Flag, NotNull, ObjectId, ObjectName

# The retries a campaign gets for an outcome it does not name (documented in docs/campaigns.md).
DEFAULT_RETRIES: dict[str, dict[str, int]] = {
    "no_answer": {"delay_seconds": 2 * 3600, "max": 2},
    "busy": {"delay_seconds": 30 * 60, "max": 2},
    "failed": {"delay_seconds": 3600, "max": 1},
    "machine": {"delay_seconds": 4 * 3600, "max": 1},
}
assert tuple(DEFAULT_RETRIES) == RETRY_OUTCOMES  # noqa: S101

ClockTime = Annotated[
    str,
    StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$"),
    Field(examples=["10:00"], description="HH:MM, 24-hour clock, the contact's local time"),
]
# A script shown to the agent: a Jinja template of the contact (escaped when rendered).
Script = Annotated[
    str,
    StringConstraints(max_length=20_000),
    Field(examples=["Hello {{ name }}, I am calling about {{ fields.product }}."]),
]


class HoursIn(BaseModel):
    """A stretch of a weekday (0 Monday … 6 Sunday) when the campaign calls."""

    model_config = ConfigDict(extra="forbid")

    weekday: int = Field(ge=0, le=6, strict=True)
    start: ClockTime
    end: ClockTime

    def bounds(self) -> tuple[time, time]:
        return time.fromisoformat(self.start), time.fromisoformat(self.end)


class RetryRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delay_seconds: int = Field(
        ge=60, le=30 * 86400, strict=True, description="Seconds before the next attempt."
    )
    max: int = Field(ge=0, le=10, strict=True, description="Retries after this outcome.")


class RetryRules(BaseModel):
    """Retries per outcome; an outcome left out takes its default."""

    model_config = ConfigDict(extra="forbid")

    no_answer: RetryRule | None = None
    busy: RetryRule | None = None
    failed: RetryRule | None = None
    machine: RetryRule | None = None

    def merged(self, base: dict[str, Any]) -> dict[str, dict[str, int]]:
        """``base`` (the stored or default rules) with the outcomes named here replaced."""
        rules = {o: dict(base.get(o) or DEFAULT_RETRIES[o]) for o in RETRY_OUTCOMES}
        for outcome in RETRY_OUTCOMES:
            named = getattr(self, outcome)
            if named is not None:
                rules[outcome] = named.model_dump()
        return rules


AbandonTarget = Annotated[
    Decimal,
    Field(
        gt=0,
        le=Decimal("0.03"),
        max_digits=5,
        decimal_places=4,
        description="Abandon rate predictive dialling aims below (the law's limit is 0.03).",
        examples=["0.025"],
    ),
]


class CampaignCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "spring-offer",
                    "list_id": 1,
                    "queue_id": 1,
                    "caller_id_number_id": 1,
                    "mode": "preview",
                    "calling_hours": [{"weekday": 0, "start": "10:00", "end": "12:00"}],
                    "retries": {"busy": {"delay_seconds": 900, "max": 3}},
                    "script": "Hello {{ name }}.",
                }
            ]
        },
    )

    name: ObjectName
    list_id: ObjectId
    queue_id: ObjectId = Field(description="The queue whose agents take the answered calls.")
    caller_id_number_id: ObjectId = Field(
        description="One of the tenant's numbers; in France, automated dialling (progressive, "
        "predictive) needs one of ARCEP's ranges reserved for it."
    )
    mode: CampaignMode = CampaignMode.PROGRESSIVE
    audience: Audience = Audience.CONSUMERS
    require_consent: Flag = False
    calling_hours: list[HoursIn] = Field(
        default_factory=list,
        max_length=100,
        description="Within the law's hours (clipped to them); empty: the law's hours.",
    )
    retries: RetryRules = Field(default_factory=RetryRules)
    ring_seconds: int = Field(25, ge=1, le=120, strict=True)
    max_channels: int = Field(10, ge=1, le=1000, strict=True)
    amd_enabled: Flag = False
    machine_action: MachineAction = MachineAction.HANGUP
    machine_prompt_id: ObjectId | None = None
    abandon_prompt_id: ObjectId | None = Field(
        None, description="The message naming the caller that an abandoned person hears."
    )
    abandon_target: AbandonTarget = Decimal("0.025")
    script: Script = ""

    @field_validator("abandon_target", mode="before")
    @classmethod
    def _no_float(cls, value: Any) -> Any:
        return str(value) if isinstance(value, float) else value


class CampaignUpdate(BaseModel):
    """Any subset, while the campaign is a draft or paused (its list: a draft only)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"max_channels": 20, "abandon_prompt_id": 2}]},
    )

    name: Annotated[ObjectName | None, NotNull] = None
    list_id: Annotated[ObjectId | None, NotNull] = None
    queue_id: Annotated[ObjectId | None, NotNull] = None
    caller_id_number_id: Annotated[ObjectId | None, NotNull] = None
    mode: Annotated[CampaignMode | None, NotNull] = None
    audience: Annotated[Audience | None, NotNull] = None
    require_consent: Annotated[Flag | None, NotNull] = None
    calling_hours: Annotated[list[HoursIn] | None, NotNull] = Field(None, max_length=100)
    retries: Annotated[RetryRules | None, NotNull] = None
    ring_seconds: Annotated[int | None, NotNull] = Field(None, ge=1, le=120, strict=True)
    max_channels: Annotated[int | None, NotNull] = Field(None, ge=1, le=1000, strict=True)
    amd_enabled: Annotated[Flag | None, NotNull] = None
    machine_action: Annotated[MachineAction | None, NotNull] = None
    machine_prompt_id: ObjectId | None = None
    abandon_prompt_id: ObjectId | None = None
    abandon_target: Annotated[AbandonTarget | None, NotNull] = None
    script: Annotated[Script | None, NotNull] = None

    @field_validator("abandon_target", mode="before")
    @classmethod
    def _no_float(cls, value: Any) -> Any:
        return str(value) if isinstance(value, float) else value


class HoursOut(BaseModel):
    weekday: int
    start: str
    end: str


class CampaignOut(BaseModel):
    id: int
    name: str
    list_id: int
    queue_id: int
    caller_id_number_id: int
    mode: CampaignMode
    status: CampaignStatus
    audience: Audience
    require_consent: bool
    calling_hours: list[HoursOut]
    retries: dict[str, RetryRule]
    ring_seconds: int
    max_channels: int
    amd_enabled: bool
    machine_action: MachineAction
    machine_prompt_id: int | None
    abandon_prompt_id: int | None
    abandon_target: Decimal
    script: str
    started_at: datetime | None
    ended_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, campaign: Campaign) -> CampaignOut:
        return cls(
            id=campaign.id,
            name=campaign.name,
            list_id=campaign.list_id,
            queue_id=campaign.queue_id,
            caller_id_number_id=campaign.caller_id_number_id,
            mode=CampaignMode(campaign.mode),
            status=CampaignStatus(campaign.status),
            audience=Audience(campaign.audience),
            require_consent=campaign.require_consent,
            calling_hours=[HoursOut(**hours) for hours in campaign.calling_hours],
            retries={k: RetryRule(**v) for k, v in campaign.retries.items()},
            ring_seconds=campaign.ring_seconds,
            max_channels=campaign.max_channels,
            amd_enabled=campaign.amd_enabled,
            machine_action=MachineAction(campaign.machine_action),
            machine_prompt_id=campaign.machine_prompt_id,
            abandon_prompt_id=campaign.abandon_prompt_id,
            abandon_target=campaign.abandon_target,
            script=campaign.script,
            started_at=campaign.started_at,
            ended_at=campaign.ended_at,
            version=campaign.version,
            created_at=campaign.created_at,
            updated_at=campaign.updated_at,
        )


class CampaignProgress(BaseModel):
    contacts: int = Field(description="Contacts in the campaign.")
    called: int = Field(description="Contacts called at least once.")
    remaining: int = Field(description="Contacts still to call (pending or dialing).")
    by_state: dict[str, int]
    by_outcome: dict[str, int] = Field(description="Attempts by outcome; in_progress: not ended.")
    attempts: int


class AgentStats(BaseModel):
    user_id: int
    display_name: str
    calls: int
    talk_seconds: int
    dispositions: dict[str, int]


class CampaignStatsOut(BaseModel):
    attempts: int
    answered: int = Field(description="Answered by a person and taken by an agent.")
    machines: int
    abandoned: int
    abandon_rate_24h: Decimal = Field(description="Abandoned / (answered + abandoned), 24 h.")
    abandon_rate_30d: Decimal
    contacts_reached: int
    dispositions: dict[str, int]
    talk_seconds: int
    agents: list[AgentStats]


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    contact_id: int
    number: str
    mode: str
    placed_at: datetime
    answered_at: datetime | None
    connected_at: datetime | None
    ended_at: datetime | None
    outcome: str | None
    dial_status: str | None
    amd_status: str | None
    agent_user_id: int | None
    talk_seconds: int | None
    disposition_id: int | None
    disposition_at: datetime | None


class CallRefusalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    contact_id: int
    number: str
    rule: str
    at: datetime
    until: datetime | None
