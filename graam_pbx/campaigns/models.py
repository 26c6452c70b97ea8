from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base, TenantOwned, Timestamped, Versioned


class CampaignMode(StrEnum):
    PREVIEW = "preview"  # the agent sees the contact and asks to dial
    PROGRESSIVE = "progressive"  # one call per available agent
    PREDICTIVE = "predictive"  # more calls than available agents, from measured rates


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"  # by a user; final
    FINISHED = "finished"  # every contact done; final


class Audience(StrEnum):
    CONSUMERS = "consumers"  # the opposition list (Bloctel) and consent rules apply
    BUSINESSES = "businesses"


class MachineAction(StrEnum):
    HANGUP = "hangup"
    MESSAGE = "message"


class ContactState(StrEnum):
    """Where one contact stands in one campaign."""

    PENDING = "pending"  # may be called from next_attempt_at (null: now)
    DIALING = "dialing"  # an attempt is in progress
    DONE = "done"  # reached (answered by a person) or retries exhausted: never called again
    BLOCKED = "blocked"  # a rule forbids calling it in this campaign (do-not-call, opposition…)


class Outcome(StrEnum):
    """How one attempt ended."""

    ANSWERED = "answered"  # a person answered and an agent took the call
    ABANDONED = "abandoned"  # a person answered and no agent came within the legal delay
    MACHINE = "machine"  # an answering machine (detected, or set by the agent)
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"  # congestion, unavailable, refused by the carrier or the dialplan
    LOST = "lost"  # the control plane lost track of it (restart); never placed again


RETRY_OUTCOMES = ("no_answer", "busy", "failed", "machine")

_MODES = "('preview', 'progressive', 'predictive')"
_STATUSES = "('draft', 'running', 'paused', 'stopped', 'finished')"
_CONTACT_STATES = "('pending', 'dialing', 'done', 'blocked')"
_OUTCOMES = "('answered', 'abandoned', 'machine', 'no_answer', 'busy', 'failed', 'lost')"


class ContactList(TenantOwned, Timestamped, Versioned, Base):
    """A tenant's list of people to call; numbers are read in ``default_region``'s format."""

    __tablename__ = "contact_lists"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    default_region: Mapped[str] = mapped_column(String(2), default="FR")


class Contact(TenantOwned, Base):
    """One number of a list (one row per number: duplicates within a list are merged)."""

    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("list_id", "number"),
        CheckConstraint("number ~ '^\\+[1-9][0-9]{6,14}$'", name="e164_format"),
        Index("ix_contacts_tenant_number", "tenant_id", "number"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    list_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contact_lists.id", ondelete="CASCADE")
    )
    number: Mapped[str] = mapped_column(String(16))
    # The number's region (ISO 3166, "RE" for Réunion) and the time zones it may ring in.
    region: Mapped[str] = mapped_column(String(2))
    time_zones: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    name: Mapped[str | None] = mapped_column(String(200))
    # The list's other columns, usable in scripts as {{ fields.<name> }}.
    fields: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # Proof of the person's consent to be called (required for consumer calls in France
    # since August 2026 when the campaign asks for it).
    consent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consent_source: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ContactImport(TenantOwned, Base):
    """One CSV import into a list and its counts; its refused rows are ``ImportRefusal``s."""

    __tablename__ = "contact_imports"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    list_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contact_lists.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(200))
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_added: Mapped[int] = mapped_column(Integer, default=0)
    rows_merged: Mapped[int] = mapped_column(Integer, default=0)
    rows_refused: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ImportRefusal(Base):
    """One refused row of an import: its line number, the field at fault and why."""

    __tablename__ = "contact_import_refusals"

    import_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contact_imports.id", ondelete="CASCADE"), primary_key=True
    )
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    field: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    value: Mapped[str] = mapped_column(Text)


class DoNotCall(TenantOwned, Base):
    """A number the tenant must never call (its own do-not-call list)."""

    __tablename__ = "do_not_call"
    __table_args__ = (UniqueConstraint("tenant_id", "number"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    number: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OppositionList(TenantOwned, Base):
    """One import of the national opposition list's answer (Bloctel), dated by its check."""

    __tablename__ = "opposition_lists"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    list_date: Mapped[date] = mapped_column(Date)
    filename: Mapped[str] = mapped_column(String(200))
    numbers: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OppositionNumber(Base):
    __tablename__ = "opposition_numbers"
    __table_args__ = (Index("ix_opposition_numbers_tenant_number", "tenant_id", "number"),)

    list_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("opposition_lists.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tenants.id"))


class Disposition(TenantOwned, Timestamped, Base):
    """An entry of the tenant's catalogue of call results an agent sets after a call."""

    __tablename__ = "dispositions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        CheckConstraint("code ~ '^[a-z0-9][a-z0-9_-]{0,31}$'", name="code_format"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(64))
    # The person refused to be called: no call to the number for the law's refusal period.
    refusal: Mapped[bool] = mapped_column(Boolean, default=False)
    # The call met the campaign's aim (counted as a success in the statistics).
    success: Mapped[bool] = mapped_column(Boolean, default=False)
    # The agent found an answering machine that detection took for a person.
    machine: Mapped[bool] = mapped_column(Boolean, default=False)
    # The contact is to be called again (by the retry rules of "no answer").
    callback: Mapped[bool] = mapped_column(Boolean, default=False)


class Campaign(TenantOwned, Timestamped, Versioned, Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        CheckConstraint(f"mode in {_MODES}", name="mode_known"),
        CheckConstraint(f"status in {_STATUSES}", name="status_known"),
        CheckConstraint("audience in ('consumers', 'businesses')", name="audience_known"),
        CheckConstraint("machine_action in ('hangup', 'message')", name="machine_action_known"),
        CheckConstraint("ring_seconds BETWEEN 15 AND 120", name="ring_seconds_range"),
        CheckConstraint("max_channels BETWEEN 1 AND 1000", name="max_channels_range"),
        CheckConstraint(
            "abandon_target > 0 AND abandon_target <= 0.03", name="abandon_target_range"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    list_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contact_lists.id", ondelete="RESTRICT"), index=True
    )
    queue_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("queues.id", ondelete="RESTRICT"), index=True
    )
    caller_id_number_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("phone_numbers.id", ondelete="RESTRICT")
    )
    mode: Mapped[str] = mapped_column(String(16), default=CampaignMode.PROGRESSIVE)
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.DRAFT)
    audience: Mapped[str] = mapped_column(String(16), default=Audience.CONSUMERS)
    require_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    # The campaign's own calling hours ([{"weekday": 0-6, "start": "HH:MM", "end": "HH:MM"}],
    # in the contact's time zone), within the law's; empty: the law's hours.
    calling_hours: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    # Per outcome in RETRY_OUTCOMES: {"delay_seconds": int, "max": int} (max retries).
    retries: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    ring_seconds: Mapped[int] = mapped_column(Integer, default=25)
    max_channels: Mapped[int] = mapped_column(Integer, default=10)
    amd_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    machine_action: Mapped[str] = mapped_column(String(16), default=MachineAction.HANGUP)
    machine_prompt_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("prompts.id", ondelete="RESTRICT")
    )
    # The message an abandoned person hears, naming the caller (required to dial automatically).
    abandon_prompt_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("prompts.id", ondelete="RESTRICT")
    )
    abandon_target: Mapped[Decimal] = mapped_column(Numeric(5, 4), default=Decimal("0.025"))
    script: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The dialer holding the campaign, until when (a Postgres lease: one dialer at a time).
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CampaignContact(TenantOwned, Base):
    """One contact's progress in one campaign (rows made when the campaign starts)."""

    __tablename__ = "campaign_contacts"
    __table_args__ = (
        CheckConstraint(f"state in {_CONTACT_STATES}", name="state_known"),
        Index("ix_campaign_contacts_due", "campaign_id", "state", "next_attempt_at"),
    )

    campaign_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(16), default=ContactState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Retries made per outcome ({"busy": 1}) against the campaign's maxima.
    retries_used: Mapped[dict[str, int]] = mapped_column(JSONB, default=dict)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_outcome: Mapped[str | None] = mapped_column(String(16))
    # Why the contact is blocked or waiting (a rule id of the law, see campaigns/law.py).
    last_rule: Mapped[str | None] = mapped_column(String(32))
    disposition_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("dispositions.id", ondelete="RESTRICT")
    )
    # Preview mode: the agent the contact is shown to, until they dial or skip it.
    reserved_by: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL")
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CampaignAttempt(TenantOwned, Base):
    """One call placed (or about to be) to one contact: written before Asterisk is asked."""

    __tablename__ = "campaign_attempts"
    __table_args__ = (
        CheckConstraint(f"outcome IS NULL OR outcome in {_OUTCOMES}", name="outcome_known"),
        Index("ix_campaign_attempts_tenant_number_at", "tenant_id", "number", "placed_at"),
        Index("ix_campaign_attempts_campaign_at", "campaign_id", "placed_at"),
        Index("ix_campaign_attempts_open", "campaign_id", postgresql_where="ended_at IS NULL"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE")
    )
    contact_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[str] = mapped_column(String(16))
    # Asterisk's uniqueid of the originated channel: one per attempt, never reused.
    channel_id: Mapped[str] = mapped_column(String(64), unique=True)
    mode: Mapped[str] = mapped_column(String(16))
    placed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    connected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(16))
    dial_status: Mapped[str | None] = mapped_column(String(16))  # Asterisk's DIALSTATUS
    amd_status: Mapped[str | None] = mapped_column(String(16))  # AMD's AMDSTATUS
    agent_user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    talk_seconds: Mapped[int | None] = mapped_column(Integer)
    disposition_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("dispositions.id", ondelete="RESTRICT")
    )
    disposition_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CallRefusal(TenantOwned, Base):
    """A call the dialer did not place, and the rule that forbade it (the compliance log)."""

    __tablename__ = "call_refusals"
    __table_args__ = (Index("ix_call_refusals_campaign_at", "campaign_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE")
    )
    contact_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contacts.id", ondelete="CASCADE")
    )
    number: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # When the rule allows the call again (null: never in this campaign).
    until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
