"""Finding one of the caller's calls: live among Asterisk's channels (``live.py``), else
ended in its CDRs, else a click-to-call not started yet.

Admins, supervisors and operators acting in the tenant see every call of the tenant; an agent
its own (a channel on one of its devices, a leg it took, its click-to-call). A call of another
tenant, or one the caller may not see, is 404: only the list of channels was read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.agents.models import AgentDevice
from graam_pbx.ami import AmiError
from graam_pbx.ami.supervisor import AmiRoutes, AmiSupervisor
from graam_pbx.auth.principal import Role, Scope
from graam_pbx.call_control import live
from graam_pbx.call_control.calls_schemas import (
    CallOut,
    CallStateName,
    ChannelOut,
    LegOut,
)
from graam_pbx.call_control.models import ClickToCall, OriginateStatus
from graam_pbx.cdr.models import Cdr
from graam_pbx.errors import NotFound, Unavailable

AMI_TIMEOUT = 5.0
# A click-to-call with no channel yet is starting for this long after it was asked (the
# Originate's ring time and a margin), then it has ended.
STARTING_FOR = timedelta(seconds=45)


class CallNotFound(NotFound):
    """No such call of the caller's: not live, never recorded, or another tenant's."""

    error_id = "call-not-found"


@dataclass(frozen=True)
class Viewer:
    """Who asks, in terms of devices: the tenant's devices (SIP username → user) and those the
    caller acts on as the agent (an agent's own; everyone else: every device)."""

    scope: Scope
    devices: dict[str, int]

    @property
    def is_agent(self) -> bool:
        return self.scope.role is Role.AGENT

    @property
    def own(self) -> frozenset[str]:
        if not self.is_agent:
            return frozenset(self.devices)
        me = self.scope.principal.user_id
        return frozenset(name for name, user in self.devices.items() if user == me)

    def sees(self, call: live.LiveCall) -> bool:
        return not self.is_agent or bool(call.on_devices(self.own))


@dataclass(frozen=True)
class Located:
    """A live call of the caller's, and the connection to the Asterisk it is on."""

    ami: AmiSupervisor
    call: live.LiveCall
    viewer: Viewer


async def viewer(session: AsyncSession, scope: Scope) -> Viewer:
    rows = await session.execute(
        select(AgentDevice.sip_username, AgentDevice.user_id).where(
            AgentDevice.tenant_id == scope.tenant_id
        )
    )
    return Viewer(scope, {row.sip_username: row.user_id for row in rows})


async def _read(ami: AmiSupervisor, tenant_id: int) -> list[live.LiveCall]:
    try:
        return await live.read_calls(ami, tenant_id, timeout=AMI_TIMEOUT)
    except AmiError as err:
        raise Unavailable(f"Asterisk's channels cannot be read now: {err}", retry_after=1) from err


async def live_calls(
    session: AsyncSession, scope: Scope, routes: AmiRoutes
) -> tuple[list[live.LiveCall], Viewer]:
    """The live calls the caller sees, oldest first."""
    seen = await viewer(session, scope)
    ami = await routes.for_tenant(scope.tenant_id)
    return [call for call in await _read(ami, scope.tenant_id) if seen.sees(call)], seen


async def locate(session: AsyncSession, scope: Scope, routes: AmiRoutes, call_id: str) -> Located:
    """The caller's live call ``call_id`` (404 ``call-not-found`` otherwise)."""
    seen = await viewer(session, scope)
    ami = await routes.for_tenant(scope.tenant_id)
    for call in await _read(ami, scope.tenant_id):
        if call.id == call_id and seen.sees(call):
            return Located(ami, call, seen)
    raise CallNotFound(f"no live call {call_id}")


def channels_out(call: live.LiveCall, devices: dict[str, int]) -> list[ChannelOut]:
    return [
        ChannelOut(
            name=channel.name,
            uniqueid=channel.uniqueid,
            state=channel.state,
            bridged=channel.bridged,
            held=channel.held,
            device=channel.device if channel.device in devices else None,
            user_id=devices.get(channel.device or ""),
        )
        for channel in call.channels
    ]


async def _click(session: AsyncSession, tenant_id: int, call_id: str) -> ClickToCall | None:
    click: ClickToCall | None = await session.scalar(
        select(ClickToCall).where(
            ClickToCall.tenant_id == tenant_id, ClickToCall.call_id == call_id
        )
    )
    return click


async def _legs(session: AsyncSession, tenant_id: int, call_id: str) -> list[Cdr]:
    rows = await session.scalars(
        select(Cdr)
        .where(Cdr.tenant_id == tenant_id, Cdr.linkedid == call_id)
        .order_by(Cdr.started_at, Cdr.id)
    )
    return list(rows)


def _leg_out(cdr: Cdr) -> LegOut:
    return LegOut(
        uniqueid=cdr.uniqueid,
        direction=cdr.direction,
        disposition=cdr.disposition,
        to_number=cdr.to_number,
        agent_user_id=cdr.agent_user_id,
        answered_at=cdr.answered_at,
        ended_at=cdr.ended_at,
        billsec=cdr.billsec,
        billable=cdr.billable,
    )


async def call_out(session: AsyncSession, scope: Scope, routes: AmiRoutes, call_id: str) -> CallOut:
    """A call's state: live, else ended (with its legs), else a click-to-call starting or
    never placed. 404 ``call-not-found``."""
    click = await _click(session, scope.tenant_id, call_id)
    agent, number = (click.agent_user_id, click.number) if click else (None, None)
    seen = await viewer(session, scope)
    ami = await routes.for_tenant(scope.tenant_id)
    for call in await _read(ami, scope.tenant_id):
        if call.id == call_id and (seen.sees(call) or agent == scope.principal.user_id):
            return CallOut(
                id=call.id,
                state=call.state(),
                channels=channels_out(call, seen.devices),
                legs=[],
                agent_user_id=agent,
                number=number,
            )
    legs = await _legs(session, scope.tenant_id, call_id)
    mine = not seen.is_agent or agent == scope.principal.user_id
    mine = mine or any(
        leg.agent_user_id == scope.principal.user_id or leg.device in seen.own for leg in legs
    )
    if not mine or (not legs and click is None):
        raise CallNotFound(f"no call {call_id}")
    state = CallStateName.ENDED
    if not legs and click is not None:
        if click.status == OriginateStatus.FAILED.value:
            state = CallStateName.NOT_PLACED
        elif datetime.now(UTC) - click.created_at < STARTING_FOR:
            state = CallStateName.STARTING
    return CallOut(
        id=call_id,
        state=state,
        channels=[],
        legs=[_leg_out(leg) for leg in legs],
        agent_user_id=agent,
        number=number,
    )
