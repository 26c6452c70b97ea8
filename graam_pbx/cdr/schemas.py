from __future__ import annotations

import base64
import binascii
import math
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from graam_pbx.cdr.models import Cdr
from graam_pbx.errors import Invalid
from graam_pbx.fields import MAX_ID

MAX_SUMMARY_DAYS = 400


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"
    FEATURE = "feature"  # an agent's feature code (*45, *46, *47): never billed nor answered


class Disposition(StrEnum):
    """What became of a leg: Asterisk's dispositions, spelt for a URL (``asterisk`` is the value
    it writes), and ``refused``: the dialplan refused the call (``refusal_reason`` says why)."""

    ANSWERED = "answered"
    NO_ANSWER = "no-answer"
    BUSY = "busy"
    FAILED = "failed"
    CONGESTION = "congestion"
    REFUSED = "refused"

    @property
    def asterisk(self) -> str:
        return self.value.replace("-", " ").upper()


class CdrFilters(BaseModel):
    """What a list, an export or a summary is restricted to; every bound is optional."""

    model_config = ConfigDict(extra="forbid")

    since: datetime | None = Field(None, description="Legs started at or after (with a zone).")
    until: datetime | None = Field(None, description="Legs started before (with a zone).")
    direction: Direction | None = None
    from_number: str | None = Field(None, max_length=80, description="The caller (CDR src).")
    to_number: str | None = Field(None, max_length=80, description="What was dialled (dst).")
    did: str | None = Field(None, max_length=32, description="The tenant's number called.")
    queue_id: int | None = Field(None, ge=1, le=MAX_ID)
    agent_id: int | None = Field(None, ge=1, le=MAX_ID, description="The agent's user id.")
    forwarded_from: int | None = Field(
        None, ge=1, le=MAX_ID, description="Legs this user's forwarding rules sent (a user id)."
    )
    disposition: Disposition | None = None
    min_duration: Decimal | None = Field(
        None, ge=0, le=10**8, description="Seconds, ringing included (duration)."
    )
    min_billsec: Decimal | None = Field(
        None, ge=0, le=10**8, description="Seconds answered (billsec)."
    )
    linkedid: str | None = Field(None, max_length=150, description="Every leg of one call.")
    billable: bool | None = Field(None, description="Legs billing counts, or never counts.")

    @model_validator(mode="after")
    def _zoned_range(self) -> CdrFilters:
        for name in ("since", "until"):
            moment: datetime | None = getattr(self, name)
            if moment is not None and moment.utcoffset() is None:
                raise Invalid(f"query.{name}", "must carry a time zone (…Z or …+01:00)")
        if self.since and self.until and self.until <= self.since:
            raise Invalid("query.until", "must be after since")
        return self


class CdrCursor(BaseModel):
    """Where a page ended: the last leg's start (microseconds since the epoch) and id."""

    started_us: int
    id: int

    def encode(self) -> str:
        raw = f"{self.started_us}.{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str | None) -> CdrCursor | None:
        """The cursor a page returned; anything else is a 422 on ``cursor``."""
        if cursor is None:
            return None
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            started, _, ident = text.partition(".")
            value = cls(started_us=int(started), id=int(ident))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise Invalid("query.cursor", "not a cursor returned by this API") from None
        if not (0 <= value.id <= MAX_ID and abs(value.started_us) < 2**62):
            raise Invalid("query.cursor", "not a cursor returned by this API")
        return value


class CdrOut(BaseModel):
    """One leg of a call. Seconds are decimal strings, exact to the microsecond."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 81,
                    "tenant_id": 12,
                    "linkedid": "graam-1795406655.0",
                    "uniqueid": "graam-1795406655.1",
                    "sequence": 1,
                    "started_at": "2026-11-23T04:04:15.534076Z",
                    "answered_at": "2026-11-23T04:04:15.535017Z",
                    "ended_at": "2026-11-23T04:04:16.936954Z",
                    "duration": "1.402878",
                    "billsec": "1.401937",
                    "billed_seconds": 2,
                    "disposition": "answered",
                    "refusal_reason": None,
                    "billable": False,
                    "direction": "inbound",
                    "from_number": "+33612345678",
                    "to_number": "+33123456789",
                    "did": "+33123456789",
                    "queue_id": None,
                    "agent_id": None,
                    "device": None,
                    "forwarded_from": None,
                    "caller_id": '"Jo" <+33612345678>',
                    "channel": "PJSIP/trunk-carrier-00000001",
                    "peer_channel": "",
                    "last_application": "Playback",
                    "source": "ami",
                }
            ]
        }
    )

    id: int
    tenant_id: int | None = Field(
        description="The tenant the leg belongs to; null when Asterisk named no tenant."
    )
    linkedid: str = Field(description="Shared by every leg of one call.")
    uniqueid: str
    sequence: int
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    duration: Decimal = Field(description="Seconds from start to end.")
    billsec: Decimal = Field(description="Seconds from answer to end (exact).")
    billed_seconds: int = Field(description="Every started second of billsec.")
    disposition: str = Field(
        description="answered, no-answer, busy, failed, congestion, or refused (by the dialplan)."
    )
    refusal_reason: str | None = Field(
        description="Why the dialplan refused the call: suspended, destination-not-allowed, "
        "no-route; null unless refused."
    )
    billable: bool = Field(
        description="Counted by billing: an answered outbound leg with billsec > 0, never "
        "refused nor a feature code."
    )
    direction: str | None = Field(description="inbound, outbound, internal or feature.")
    from_number: str
    to_number: str = Field(
        description="What was dialled: E.164 for a number, the extension of an internal call."
    )
    did: str | None
    queue_id: int | None
    agent_id: int | None = Field(description="The agent who took the leg (its queue legs too).")
    device: str | None = Field(description="The agent's device (SIP username) on its legs.")
    forwarded_from: int | None = Field(
        description="The user whose forwarding rule sent this leg here (unconditional, busy, "
        "no-answer, unreachable or do-not-disturb); null when the call was not forwarded by a "
        "user. A leg forwarded by a number to an external phone has did set instead."
    )
    caller_id: str
    channel: str
    peer_channel: str
    last_application: str
    source: str = Field(description="ami (live) or csv (backfilled from Asterisk's log).")

    @classmethod
    def of(cls, cdr: Cdr) -> CdrOut:
        return cls(
            id=cdr.id,
            tenant_id=cdr.tenant_id,
            linkedid=cdr.linkedid,
            uniqueid=cdr.uniqueid,
            sequence=cdr.sequence,
            started_at=cdr.started_at,
            answered_at=cdr.answered_at,
            ended_at=cdr.ended_at,
            duration=cdr.duration,
            billsec=cdr.billsec,
            billed_seconds=billed_seconds(cdr.billsec),
            disposition=leg_disposition(cdr),
            refusal_reason=cdr.refusal_reason,
            billable=cdr.billable,
            direction=cdr.direction,
            from_number=cdr.src,
            to_number=dialled(cdr),
            did=cdr.did,
            queue_id=cdr.queue_id,
            agent_id=cdr.agent_user_id,
            device=cdr.device,
            forwarded_from=cdr.forwarded_from,
            caller_id=cdr.clid,
            channel=cdr.channel,
            peer_channel=cdr.dstchannel,
            last_application=cdr.lastapp,
            source=cdr.source,
        )


def billed_seconds(billsec: Decimal) -> int:
    """The contract bills every started second."""
    return math.ceil(billsec)


def disposition_name(asterisk: str) -> str:
    return asterisk.strip().lower().replace(" ", "-")


def leg_disposition(cdr: Cdr) -> str:
    """``refused`` when the dialplan refused the call (Asterisk says it was answered: the
    refusal answers to play its announcement), else Asterisk's own."""
    return Disposition.REFUSED.value if cdr.refusal_reason else disposition_name(cdr.disposition)


def dialled(cdr: Cdr) -> str:
    """What was dialled; legs recorded before the dialplan said it show Asterisk's ``dst``."""
    return cdr.to_number if cdr.to_number is not None else cdr.dst


class SummaryRow(BaseModel):
    """Legs of one day (in the summary's ``timezone``) and direction."""

    day: date
    direction: str | None
    legs: int = Field(description="CDRs (one per leg).")
    calls: int = Field(description="Distinct calls (linkedid).")
    answered: int = Field(
        description="Legs answered; never a refused leg nor a feature code (direction feature)."
    )
    refused: int = Field(description="Legs the dialplan refused (disposition refused).")
    billable: int = Field(description="Billable legs.")
    billable_billsec: Decimal = Field(description="Seconds of the billable legs (exact).")
    total_billsec: Decimal
    average_billsec: Decimal | None = Field(description="Over the answered legs.")


class SummaryOut(BaseModel):
    tenant_id: int | None = Field(
        description="The tenant summed up; null: every tenant (an operator naming none)."
    )
    since: datetime
    until: datetime
    timezone: str = Field(
        description="Zone of the days: the tenant's, or UTC for a summary across tenants."
    )
    items: list[SummaryRow]


def summary_range(filters: CdrFilters, now: datetime) -> tuple[datetime, datetime]:
    """The range a summary covers: as asked, else the last 30 days; at most 400 days."""
    until = filters.until or now
    since = filters.since or until - timedelta(days=30)
    if until - since > timedelta(days=MAX_SUMMARY_DAYS):
        raise Invalid("query.since", f"a summary covers at most {MAX_SUMMARY_DAYS} days")
    return since, until
