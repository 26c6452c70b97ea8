from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ConfigStatusOut(BaseModel):
    """One tenant's configuration: the generation committed in the database vs the one live
    in Asterisk (files written and reloads done)."""

    tenant_id: int
    committed_generation: int = Field(description="Grows with every committed change.")
    applied_generation: int = Field(description="The committed generation live in Asterisk.")
    pending: bool = Field(description="A committed change is not live yet.")
    last_error: str | None = Field(
        description="Why the last try to make it live failed (cleared once it is live)."
    )
    failing_since: datetime | None = Field(description="Failing without interruption since.")
    applied_at: datetime | None = Field(description="When the applied generation went live.")
    committed_at: datetime | None = Field(description="When the last change was committed.")


class TrunkFailureOut(BaseModel):
    """A trunk whose configuration cannot be rendered: its previous configuration stays."""

    trunk_id: int
    name: str
    last_error: str
    failing_since: datetime


class PlatformConfigStatusOut(BaseModel):
    """Every tenant's status (operators), and the trunks that fail to render."""

    tenants: list[ConfigStatusOut]
    pending_tenants: int
    failing_trunks: list[TrunkFailureOut]
