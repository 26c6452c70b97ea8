from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from graam_pbx.errors import Invalid
from graam_pbx.fields import MAX_ID
from graam_pbx.queue_calls.models import QueueCall
from graam_pbx.queue_calls.tracker import Outcome


@dataclass(frozen=True)
class QueueCallFilters:
    since: datetime | None = None
    until: datetime | None = None
    queue_id: int | None = None
    agent_id: int | None = None
    outcome: Outcome | None = None


class QueueCallCursor(BaseModel):
    """Where a page ended: the last row's entry time (microseconds since the epoch) and id."""

    entered_us: int
    id: int

    def encode(self) -> str:
        raw = f"{self.entered_us}.{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str | None) -> QueueCallCursor | None:
        """The cursor a page returned; anything else is a 422 on ``cursor``."""
        if cursor is None:
            return None
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            entered, _, ident = text.partition(".")
            value = cls(entered_us=int(entered), id=int(ident))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise Invalid("query.cursor", "not a cursor returned by this API") from None
        if not (0 <= value.id <= MAX_ID and abs(value.entered_us) < 2**62):
            raise Invalid("query.cursor", "not a cursor returned by this API")
        return value


class QueueCallOut(BaseModel):
    """One caller's stay in one queue. Seconds are decimal strings, to the millisecond."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    tenant_id: int
    queue_id: int | None
    queue_name: str
    entry: int
    linkedid: str
    caller_uniqueid: str
    caller_number: str
    did: str | None
    entered_at: datetime
    position_at_entry: int | None
    answered_at: datetime | None
    agent_id: int | None
    device_id: int | None
    ended_at: datetime
    wait_seconds: Decimal
    talk_seconds: Decimal
    hold_seconds: Decimal
    wrapup_seconds: Decimal
    ring_no_answer: int
    outcome: Outcome
    abandon_position: int | None
    exit_key: str | None
    source: str

    @classmethod
    def of(cls, row: QueueCall) -> QueueCallOut:
        return cls.model_validate(row)
