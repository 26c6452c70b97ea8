from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from graam_pbx.sip_security.models import SipBlock


class SipBlockOut(BaseModel):
    """A SIP source blocked after repeated failed authentications."""

    id: int
    address: str = Field(description="The blocked source: an IPv4 address or an IPv6 /64.")
    reason: str
    failures: int = Field(description="Failed authentications counted when it was blocked.")
    blocked_at: datetime
    expires_at: datetime
    unblocked_at: datetime | None = Field(
        description="When it was lifted (by an operator, or at expiry); null while in force."
    )
    unblocked_by: str | None = Field(
        description="Who lifted it: an operator's e-mail, `cli`, `allow-list`; null at expiry."
    )
    active: bool = Field(description="Asterisk denies this source now.")

    @classmethod
    def of(cls, block: SipBlock, active: bool) -> SipBlockOut:
        return cls(
            id=block.id,
            address=block.address,
            reason=block.reason,
            failures=block.failures,
            blocked_at=block.blocked_at,
            expires_at=block.expires_at,
            unblocked_at=block.unblocked_at,
            unblocked_by=block.unblocked_by,
            active=active,
        )
