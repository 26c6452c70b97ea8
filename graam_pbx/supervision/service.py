"""Starting a supervision: checked in the caller's tenant, written to the audit log, then the
supervisor's device is called.

``prepare`` runs in the request's transaction: it finds the agent (in the caller's tenant
only: another tenant's agent does not exist, and no AMI action is sent for it), the
supervisor's device, and then, over the AMI connection of the tenant's node, the agent's call;
it records the start in the audit log. ``call_supervisor`` sends the one ``Originate`` once
that transaction has committed: no supervisor hears a call the audit log does not hold.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.agents.models import AgentDevice
from graam_pbx.agents.service import device_extensions
from graam_pbx.ami import AmiError, channels
from graam_pbx.ami import actions as ami_actions
from graam_pbx.ami.supervisor import AmiRoutes, AmiSupervisor
from graam_pbx.audit import service as audit
from graam_pbx.auth.models import User
from graam_pbx.auth.principal import Role, Scope
from graam_pbx.errors import Conflict, Invalid, NotFound, Unavailable
from graam_pbx.recordings.models import DEFAULT_TELLS_AGENT, RecordingSettings
from graam_pbx.supervision import spy
from graam_pbx.supervision.schemas import Mode, SupervisionStart

log = logging.getLogger(__name__)

RING_SECONDS = 30  # the supervisor's device rings this long
AMI_TIMEOUT = 5.0


class NotOnCall(Conflict):
    """The agent has no answered call to supervise."""

    error_id = "agent-not-on-call"


class NoDevice(Conflict):
    """The supervisor has no device to be called on."""

    error_id = "supervisor-has-no-device"


@dataclass(frozen=True)
class Supervision:
    """A supervision checked and audited, its call still to be placed."""

    id: str  # the supervision call's channel id
    tenant_id: int
    agent_user_id: int
    mode: Mode
    device_id: int
    device: str  # the supervisor's device's SIP username
    agent_extension: str
    agent_channel: channels.LiveChannel
    agent_told: bool
    ami: AmiSupervisor  # the tenant's node's connection


async def _agent(session: AsyncSession, scope: Scope, user_id: int) -> User:
    agent = await session.scalar(
        select(User).where(
            User.id == user_id,
            User.tenant_id == scope.tenant_id,
            User.role == Role.AGENT.value,
        )
    )
    if agent is None:
        raise NotFound(f"no agent {user_id} in this tenant")
    return agent


async def _supervisor_device(
    session: AsyncSession, scope: Scope, device_id: int | None, agent_user_id: int
) -> AgentDevice:
    """The device the supervisor is called on: the one named (its own; an operator, who owns
    none in a tenant, any of the tenant's but the agent's), else the supervisor's first."""
    operator = scope.role is Role.OPERATOR
    if device_id is None:
        if operator:
            raise NoDevice("an operator names the device to be called on (device_id)")
        device = await session.scalar(
            select(AgentDevice)
            .where(
                AgentDevice.tenant_id == scope.tenant_id,
                AgentDevice.user_id == scope.principal.user_id,
            )
            .order_by(AgentDevice.id)
            .limit(1)
        )
        if device is None:
            raise NoDevice("the supervisor has no device to be called on")
        return device
    device = await session.scalar(
        select(AgentDevice).where(
            AgentDevice.id == device_id, AgentDevice.tenant_id == scope.tenant_id
        )
    )
    if device is None or (not operator and device.user_id != scope.principal.user_id):
        raise Invalid("body.device_id", f"no device {device_id} of yours in this tenant")
    if device.user_id == agent_user_id:
        raise Invalid("body.device_id", f"device {device_id} is the agent's own")
    return device


async def _tells_agent(session: AsyncSession, tenant_id: int) -> bool:
    tells = await session.scalar(
        select(RecordingSettings.supervision_tells_agent).where(
            RecordingSettings.tenant_id == tenant_id
        )
    )
    return DEFAULT_TELLS_AGENT if tells is None else tells  # a tenant without a row


async def prepare(
    session: AsyncSession, scope: Scope, data: SupervisionStart, routes: AmiRoutes
) -> Supervision:
    """Check a supervision and record it in the audit log (the caller's transaction).

    404 for an agent not of the caller's tenant, before anything reaches Asterisk; 409 when
    the supervisor has no device or the agent is on no call; 422 for a device that is not the
    supervisor's.
    """
    await _agent(session, scope, data.agent_user_id)
    device = await _supervisor_device(session, scope, data.device_id, data.agent_user_id)
    agent_devices = await device_extensions(session, scope.tenant_id, data.agent_user_id)
    if not agent_devices:
        raise NotOnCall(f"agent {data.agent_user_id} has no device, so no call")
    ami = await routes.for_tenant(scope.tenant_id)
    try:
        target = await channels.find_agent_call(ami, agent_devices.keys(), timeout=AMI_TIMEOUT)
    except AmiError as err:
        raise Unavailable(f"Asterisk's channels cannot be read now: {err}", retry_after=1) from err
    if target is None:
        raise NotOnCall(f"agent {data.agent_user_id} is not on a call")
    agent_device = channels.device_of_channel(target.name) or ""
    supervision = Supervision(
        id=f"{spy.CHANNEL_PREFIX}{uuid.uuid4().hex}",
        tenant_id=scope.tenant_id,
        agent_user_id=data.agent_user_id,
        mode=data.mode,
        device_id=device.id,
        device=device.sip_username,
        agent_extension=agent_devices.get(agent_device, ""),
        agent_channel=target,
        agent_told=await _tells_agent(session, scope.tenant_id),
        ami=ami,
    )
    await audit.record(
        session,
        scope,
        "supervise",
        "agent",
        data.agent_user_id,
        {
            "mode": data.mode.value,
            "device_id": device.id,
            "device": device.sip_username,
            "agent_channel": target.name,
            "call": target.linkedid,
            "agent_told": supervision.agent_told,
            "channel_id": supervision.id,
        },
    )
    return supervision


async def call_supervisor(supervision: Supervision) -> None:
    """Call the supervisor's device; answered, it tells the agent (when the tenant does) and
    spies on the agent's channel. Sent once the audit entry is committed."""
    tenant = f"t{supervision.tenant_id}"
    try:
        await ami_actions.originate(
            supervision.ami,
            f"PJSIP/{supervision.device}",
            channel_id=supervision.id,
            context=spy.CONTEXT,
            exten="s",
            # The supervisor's phone shows the mode and the agent's extension.
            caller_id=f'"{supervision.mode.value}" <{supervision.agent_extension}>',
            variables=spy.call_variables(
                supervision.agent_channel, supervision.mode, tell_agent=supervision.agent_told
            ),
            timeout_ms=RING_SECONDS * 1000,
            account=tenant,  # the call's CDR is the tenant's
        )
    except AmiError as err:
        log.warning(
            "supervision call not placed tenant=%d id=%s error=%s",
            supervision.tenant_id,
            supervision.id,
            err,
        )
        raise Unavailable(
            "Asterisk did not take the supervision call; try again", retry_after=1
        ) from err
