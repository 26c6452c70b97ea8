from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    tenant_id: int | None
    actor_user_id: int | None
    actor_role: str | None
    actor_label: str | None
    action: str
    object_type: str
    object_id: str | None
    changes: dict[str, Any]
    address: str | None
