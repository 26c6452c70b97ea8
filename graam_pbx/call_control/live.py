"""A tenant's live calls among Asterisk's channels: what the calls API reads and acts on.

A call is the set of channels sharing one linkedid: Asterisk gives every channel a call makes
the linkedid of the channel that started it (a click-to-call's is the channel id the control
plane chose). The channels are read with ``CoreShowChannels`` from the tenant's node, once per
request; nothing here sends anything else.

**Whose call.** Every channel of a tenant's call carries the tenant's account code ``t<id>``:
its devices' endpoints set it, its inbound and outbound routes set it on the carrier's channel,
the control plane's Originates set it, and a channel Asterisk makes for a call (a dialled
trunk, a queue member, a Local channel) takes its maker's. A call is the tenant's when at least
one of its channels carries ``t<id>`` and none carries another account code; anything else (a
call of another tenant, or of none) does not exist for the caller, who is told 404 before any
action is sent. An agent's calls are those with a channel on one of its own devices.

**Who is who in a call.** The agent's channel is one of the tenant's devices' channels
(an agent's own device's, for an agent), answered, in a bridge first and the newest first, as
``graam_pbx.ami.channels`` finds an agent's call; the other party is the one channel in that
bridge with it. A call on hold through the API has its two parties out of any bridge, in the
``graam-hold`` context (``asterisk_conf/extensions.conf``): the agent at ``wait``, the other
party at ``music``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from graam_pbx.ami.actions import ListActionSender
from graam_pbx.ami.channels import device_of_channel, is_uniqueid
from graam_pbx.call_control.calls_schemas import CallStateName

HOLD_CONTEXT = "graam-hold"  # asterisk_conf/extensions.conf
HOLD_MUSIC = "music"  # the other party's extension there
HOLD_WAIT = "wait"  # the agent's
_UP = "Up"
# What a channel's name may be to be handed to the dialplan (the held parties name each
# other): chan_pjsip's and Local's names, nothing that splits an application's arguments.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9/@._;+-]{1,200}$")


@dataclass(frozen=True)
class CallChannel:
    """One channel of a call, as ``CoreShowChannel`` lists it."""

    name: str
    uniqueid: str
    linkedid: str
    state: str  # Asterisk's ChannelStateDesc
    account: str
    context: str
    exten: str
    bridge: str  # its bridge's id; "" when in none
    seconds: int

    @property
    def up(self) -> bool:
        return self.state == _UP

    @property
    def bridged(self) -> bool:
        return bool(self.bridge)

    @property
    def device(self) -> str | None:
        """The SIP username of the device the channel is of (None: not a device's)."""
        return device_of_channel(self.name)

    @property
    def held(self) -> bool:
        """On hold through the API: parked in the hold context, in no bridge."""
        return self.context == HOLD_CONTEXT and not self.bridged

    @property
    def safe_name(self) -> bool:
        return bool(_SAFE_NAME.match(self.name))


@dataclass(frozen=True)
class LiveCall:
    id: str  # the linkedid
    channels: tuple[CallChannel, ...]

    def state(self) -> CallStateName:
        if any(channel.held for channel in self.channels):
            return CallStateName.HELD
        bridges = [channel.bridge for channel in self.channels if channel.bridged]
        if len(bridges) > len(set(bridges)):
            return CallStateName.CONNECTED
        if any(channel.up for channel in self.channels):
            return CallStateName.ANSWERED
        return CallStateName.RINGING

    def on_devices(self, devices: Collection[str]) -> list[CallChannel]:
        return [channel for channel in self.channels if channel.device in devices]


def _seconds(duration: str) -> int:
    parts = duration.split(":")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return 0
    hours, minutes, seconds = (int(part) for part in parts)
    return hours * 3600 + minutes * 60 + seconds


def channel_of(event: Mapping[str, str]) -> CallChannel | None:
    """The channel a ``CoreShowChannel`` event describes (None: another event, or ids that
    may not be handed on)."""
    if event.get("Event") != "CoreShowChannel":
        return None
    uniqueid, linkedid = event.get("Uniqueid", ""), event.get("Linkedid", "")
    if not (is_uniqueid(uniqueid) and is_uniqueid(linkedid)):
        return None
    return CallChannel(
        name=event.get("Channel", ""),
        uniqueid=uniqueid,
        linkedid=linkedid,
        state=event.get("ChannelStateDesc", ""),
        account=event.get("AccountCode", ""),
        context=event.get("Context", ""),
        exten=event.get("Exten", ""),
        bridge=event.get("BridgeId", ""),
        seconds=_seconds(event.get("Duration", "")),
    )


def account_of(tenant_id: int) -> str:
    return f"t{tenant_id}"


def tenants_calls(channels: Iterable[CallChannel], tenant_id: int) -> list[LiveCall]:
    """The tenant's calls among ``channels``, oldest first."""
    by_call: dict[str, list[CallChannel]] = {}
    for channel in channels:
        by_call.setdefault(channel.linkedid, []).append(channel)
    account = account_of(tenant_id)
    calls = []
    for linkedid, members in by_call.items():
        accounts = {channel.account for channel in members} - {""}
        if accounts == {account}:
            members.sort(key=lambda channel: -channel.seconds)
            calls.append(LiveCall(linkedid, tuple(members)))
    calls.sort(key=lambda call: -max(channel.seconds for channel in call.channels))
    return calls


async def read_calls(ami: ListActionSender, tenant_id: int, *, timeout: float) -> list[LiveCall]:  # noqa: ASYNC109
    """The tenant's live calls, read from Asterisk now (raises ``AmiError`` when it cannot
    be read)."""
    events = await ami.action_list("CoreShowChannels", timeout=timeout)
    channels = (channel_of(event) for event in events)
    return tenants_calls((c for c in channels if c is not None), tenant_id)


def agent_channel(call: LiveCall, devices: Collection[str]) -> CallChannel | None:
    """The agent's channel: among the answered channels of ``devices`` in the call, one in a
    bridge before one that is not, the newest first (None: none answered)."""
    answered = [channel for channel in call.on_devices(devices) if channel.up]
    if not answered:
        return None
    return min(answered, key=lambda channel: (not channel.bridged, channel.seconds))


def bridge_peers(call: LiveCall, channel: CallChannel) -> list[CallChannel]:
    """The channels in ``channel``'s bridge with it."""
    if not channel.bridged:
        return []
    return [c for c in call.channels if c.bridge == channel.bridge and c.name != channel.name]


def held_pair(call: LiveCall, devices: Collection[str]) -> tuple[CallChannel, CallChannel] | None:
    """The agent's channel and the other party's of a call held through the API (the agent's
    on one of ``devices``), else None."""
    waiting = [c for c in call.channels if c.held and c.exten == HOLD_WAIT and c.device in devices]
    music = [c for c in call.channels if c.held and c.exten == HOLD_MUSIC]
    if len(waiting) != 1 or len(music) != 1:
        return None
    return waiting[0], music[0]
