"""Destinations (typed references between a tenant's objects), and the routes using them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.agents.models import AgentDevice
from graam_pbx.auth.models import User
from graam_pbx.errors import Invalid
from graam_pbx.ivr.models import IvrMenu, IvrOption
from graam_pbx.prompts.models import Prompt
from graam_pbx.queues.models import Queue
from graam_pbx.routing.models import InboundRoute
from graam_pbx.routing.schemas import Destination, DestinationType
from graam_pbx.voicemail.models import VoicemailBox

_TARGETS: dict[DestinationType, Any] = {
    DestinationType.AGENT: User,
    DestinationType.EXTENSION: AgentDevice,
    DestinationType.QUEUE: Queue,
    DestinationType.IVR: IvrMenu,
    DestinationType.VOICEMAIL: VoicemailBox,
    DestinationType.ANNOUNCEMENT: Prompt,
}

# Every (type, id) column pair that can point at an object, and what owns it.
_REFERENCES: list[tuple[str, Any, str, str]] = [
    ("inbound route", InboundRoute, "open_dest_type", "open_dest_id"),
    ("inbound route", InboundRoute, "closed_dest_type", "closed_dest_id"),
    ("queue", Queue, "fallback_type", "fallback_id"),
    ("IVR menu", IvrMenu, "timeout_dest_type", "timeout_dest_id"),
    ("IVR menu", IvrMenu, "invalid_dest_type", "invalid_dest_id"),
    ("IVR option", IvrOption, "dest_type", "dest_id"),
]


async def check_destination(
    session: AsyncSession, tenant_id: int, destination: Destination | None, field: str
) -> None:
    """Refuse (422 on ``field``) a destination that is not an object of this tenant."""
    if destination is None or destination.type is DestinationType.HANGUP:
        return
    model = _TARGETS[destination.type]
    statement = select(model.id).where(model.id == destination.id, model.tenant_id == tenant_id)
    if destination.type is DestinationType.AGENT:
        statement = statement.where(User.role == "agent")
    if await session.scalar(statement) is None:
        raise Invalid(field, f"no {destination.type} {destination.id} in this tenant")


async def references_to(
    session: AsyncSession, tenant_id: int, kind: DestinationType, object_id: int
) -> list[str]:
    """What still routes calls to an object ("inbound route 4", …): it cannot be deleted."""
    found: list[str] = []
    for label, model, type_column, id_column in _REFERENCES:
        rows = await session.scalars(
            select(model.id).where(
                model.tenant_id == tenant_id,
                getattr(model, type_column) == kind.value,
                getattr(model, id_column) == object_id,
            )
        )
        found.extend(f"{label} {row}" for row in rows)
    return found
