"""Controlling a live call of the caller's: hang it up, transfer its other party, send DTMF.

Each action finds the call (``calls.locate``: another tenant's, or for an agent one not its
own, is 404 and nothing but Asterisk's list of channels was read), checks it can be done,
writes its audit entry in a transaction of its own that commits, and only then sends its AMI
actions: no call is changed that the audit log does not hold.

- **Hangup** hangs up every channel of the call.
- **Blind transfer** sends the other party (``live.bridge_peers`` of the agent's channel) to
  the target with ``Redirect``, into the tenant's own dialplan: an extension to
  ``t<id>-dest,ext-<device>`` and a queue to ``t<id>-dest,queue-<id>`` (what a number routed
  there runs), a number to ``t<id>-transfer-number``, which dials it through
  ``t<id>-outbound`` (the tenant's caller ID, routes and billing) from a Local channel kept
  apart, so that the moved party's leg and the number's stay two CDRs. The agent's channel,
  left alone, ends.
- **Attended transfer** is Asterisk's own (``Atxfer`` on the agent's channel): the other party
  hears hold music while the agent is put through to the target, dialled in
  ``t<id>-internal`` as the agent's phone would (an extension's digits, a number as
  ``00…#``), a queue as ``<id>#`` in ``t<id>-transfer-queue`` (Atxfer sends its target as
  DTMF digits); the agent completes it by hanging up (or ``*2``), ``*1`` goes back. To
  a queue, the agent waits in it as a caller would, talks with the queue's agent who answers,
  then hangs up: the caller takes the agent's place. The agent's channel must be allowed to
  transfer in its bridge (queue calls, calls dialled to an agent's phone and click-to-calls
  are), else 409 ``attended-transfer-unavailable``.
- **DTMF** is sent out to the other party with ``PlayDTMF``, one digit after the other; the
  audit entry counts the digits and never holds them (they may be a code).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents.models import AgentDevice
from graam_pbx.ami import AmiActionError, AmiError
from graam_pbx.ami import actions as ami_actions
from graam_pbx.ami.supervisor import AmiRoutes
from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Scope
from graam_pbx.call_control import live
from graam_pbx.call_control.calls import Located, locate
from graam_pbx.call_control.calls_schemas import (
    CallStateName,
    ControlOut,
    TargetType,
    TransferIn,
    TransferTarget,
)
from graam_pbx.call_control.outbound import check_reachable, check_tenant_calls
from graam_pbx.errors import Conflict, Invalid, Unavailable
from graam_pbx.queues.models import Queue

DTMF_MS = 200  # each digit's length
_NO_SUCH_CHANNEL = "no such channel"


class CallNotConnected(Conflict):
    """The call has no answered agent talking to another party."""

    error_id = "call-not-connected"


class SeveralParties(Conflict):
    """The agent's bridge holds more than one other party (a conference, a supervisor)."""

    error_id = "call-not-two-party"


class CallHeld(Conflict):
    """The call is on hold: resume it first."""

    error_id = "call-held"


class AttendedUnavailable(Conflict):
    """The agent's channel may not start an attended transfer."""

    error_id = "attended-transfer-unavailable"


@dataclass(frozen=True)
class Parties:
    agent: live.CallChannel
    other: live.CallChannel


def parties(located: Located) -> Parties:
    """The agent's channel and the other party's, in one bridge (409 otherwise)."""
    call = located.call
    if call.state() is CallStateName.HELD:
        raise CallHeld("the call is on hold: resume it first")
    agent = live.agent_channel(call, located.viewer.own)
    if agent is None or not agent.bridged:
        raise CallNotConnected("no agent of this call is talking to anyone")
    peers = live.bridge_peers(call, agent)
    if not peers:
        raise CallNotConnected("no agent of this call is talking to anyone")
    if len(peers) > 1:
        raise SeveralParties("the agent is talking to several parties")
    return Parties(agent, peers[0])


async def audited(
    sessions: async_sessionmaker[AsyncSession],
    scope: Scope,
    call_id: str,
    action: str,
    changes: dict[str, Any],
) -> None:
    """The action's audit entry, committed before anything is sent."""
    async with sessions() as session, session.begin():
        await audit.record(session, scope, action, "call", call_id, changes)


def _unavailable(what: str, err: AmiError) -> Unavailable:
    return Unavailable(f"Asterisk did not {what}: {err}", retry_after=1)


async def hangup(
    sessions: async_sessionmaker[AsyncSession], scope: Scope, routes: AmiRoutes, call_id: str
) -> ControlOut:
    async with sessions() as session:
        located = await locate(session, scope, routes, call_id)
    names = [channel.name for channel in located.call.channels]
    await audited(sessions, scope, call_id, "call-hangup", {"channels": names})
    for name in names:
        try:
            await ami_actions.hangup(located.ami, name)
        except AmiActionError as err:
            if _NO_SUCH_CHANNEL not in err.message.lower():  # gone with the others
                raise _unavailable("hang the call up", err) from err
        except AmiError as err:
            raise _unavailable("hang the call up", err) from err
    return ControlOut(id=call_id, action="hangup", channels=names)


@dataclass(frozen=True)
class _Target:
    context: str
    exten: str
    audit: dict[str, Any]


async def _device_of_extension(session: AsyncSession, tenant_id: int, extension: str) -> int:
    device = await session.scalar(
        select(AgentDevice.id).where(
            AgentDevice.tenant_id == tenant_id, AgentDevice.extension == extension
        )
    )
    if device is None:
        raise Invalid("body.to.extension", f"no device of this tenant has extension {extension}")
    return device


async def _target(
    session: AsyncSession, tenant_id: int, target: TransferTarget, *, attended: bool
) -> _Target:
    """Where the transfer goes, checked in the tenant (422 naming the field otherwise)."""
    tenant = f"t{tenant_id}"
    if target.type is TargetType.EXTENSION and target.extension is not None:
        device = await _device_of_extension(session, tenant_id, target.extension)
        described = {"type": "extension", "extension": target.extension, "device_id": device}
        if attended:  # the digits, as the agent's phone dials them
            return _Target(f"{tenant}-internal", target.extension, described)
        return _Target(f"{tenant}-dest", f"ext-{device}", described)
    if target.type is TargetType.QUEUE and target.id is not None:
        queue = await session.scalar(
            select(Queue.id).where(Queue.tenant_id == tenant_id, Queue.id == target.id)
        )
        if queue is None:
            raise Invalid("body.to.id", f"no queue {target.id} in this tenant")
        described = {"type": "queue", "id": queue}
        if attended:  # sent as DTMF: the queue's id, and # ends the digits at once
            return _Target(f"{tenant}-transfer-queue", f"{queue}#", described)
        return _Target(f"{tenant}-dest", f"queue-{queue}", described)
    if target.type is TargetType.NUMBER and target.number is not None:
        await check_tenant_calls(session, tenant_id)
        await check_reachable(session, tenant_id, target.number, "body.to.number")
        described = {"type": "number", "number": target.number}
        if attended:  # 00 for +, and # ends the digits at once
            return _Target(f"{tenant}-internal", f"00{target.number[1:]}#", described)
        return _Target(f"{tenant}-transfer-number", target.number, described)
    raise Invalid("body.to", "not a transfer target")  # the schema's validator prevents it


async def transfer(
    sessions: async_sessionmaker[AsyncSession],
    scope: Scope,
    routes: AmiRoutes,
    call_id: str,
    data: TransferIn,
) -> ControlOut:
    async with sessions() as session:
        located = await locate(session, scope, routes, call_id)
        both = parties(located)
        target = await _target(session, scope.tenant_id, data.to, attended=data.attended)
    if data.attended:
        try:
            features = await ami_actions.getvar(
                located.ami, both.agent.name, "CHANNEL(dtmf_features)"
            )
        except AmiError as err:
            raise _unavailable("say whether the agent may transfer", err) from err
        if "T" not in features:
            raise AttendedUnavailable(
                "this call's agent may not start an attended transfer (a blind one may be made)"
            )
    await audited(
        sessions,
        scope,
        call_id,
        "call-transfer",
        {
            "to": target.audit,
            "attended": data.attended,
            "agent_channel": both.agent.name,
            "transferred_channel": both.other.name,
        },
    )
    try:
        if data.attended:
            await ami_actions.atxfer(located.ami, both.agent.name, target.context, target.exten)
        else:
            await ami_actions.redirect(located.ami, both.other.name, target.context, target.exten)
    except AmiError as err:
        raise _unavailable("transfer the call", err) from err
    moved = both.agent.name if data.attended else both.other.name
    return ControlOut(id=call_id, action="transfer", channels=[moved])


async def send_dtmf(
    sessions: async_sessionmaker[AsyncSession],
    scope: Scope,
    routes: AmiRoutes,
    call_id: str,
    digits: str,
) -> ControlOut:
    async with sessions() as session:
        located = await locate(session, scope, routes, call_id)
    both = parties(located)
    await audited(
        sessions,
        scope,
        call_id,
        "call-dtmf",
        {"digits": len(digits), "channel": both.other.name},
    )
    try:
        for digit in digits:
            await ami_actions.play_dtmf(located.ami, both.other.name, digit, duration_ms=DTMF_MS)
    except AmiError as err:
        raise _unavailable("send the digits", err) from err
    return ControlOut(id=call_id, action="dtmf", channels=[both.other.name])
