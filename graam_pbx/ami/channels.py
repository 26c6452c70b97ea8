"""An agent's live call among Asterisk's channels: what supervision and in-call control act on.

The call is found among Asterisk's channels (``CoreShowChannels``) by the agent's devices:
chan_pjsip names a device's channels ``PJSIP/<sip username>-<8 hex digits>``, so a channel
belongs to a device when the name less its last ``-`` and 8 hex digits is exactly the
device's SIP username (``acme-ana`` is not ``acme-ana-2``'s, nor the other way round). Every
action on that call then names the channel by its uniqueid or its exact name, never by a
prefix another channel's name could share.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from graam_pbx.ami.actions import ListActionSender

_DEVICE_CHANNEL = re.compile(r"^PJSIP/(?P<device>.+)-[0-9a-f]{8}$")
# What a uniqueid may be to be handed to the dialplan or an action: Asterisk's own are
# "<systemname>-<seconds>.<serial>".
_UNIQUEID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,149}$")
_UP = "Up"


@dataclass(frozen=True)
class LiveChannel:
    """One of Asterisk's channels, as ``CoreShowChannel`` lists it."""

    name: str
    uniqueid: str
    linkedid: str
    up: bool
    bridged: bool
    seconds: int  # since the channel was made


def is_uniqueid(value: str) -> bool:
    """Whether ``value`` may be handed to the dialplan or an action as a uniqueid."""
    return bool(_UNIQUEID.match(value))


def device_of_channel(name: str) -> str | None:
    """The SIP username of the device a channel is of (None: not a device's channel)."""
    match = _DEVICE_CHANNEL.match(name)
    return match.group("device") if match else None


def _seconds(duration: str) -> int:
    """``HH:MM:SS`` (CoreShowChannel's Duration) in seconds; 0 when it is not that."""
    parts = duration.split(":")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return 0
    hours, minutes, seconds = (int(part) for part in parts)
    return hours * 3600 + minutes * 60 + seconds


def live_channel(event: Mapping[str, str]) -> LiveChannel | None:
    """The channel a ``CoreShowChannel`` event describes (None: another event, or a uniqueid
    that may not be handed on)."""
    if event.get("Event") != "CoreShowChannel":
        return None
    uniqueid = event.get("Uniqueid", "")
    if not is_uniqueid(uniqueid):
        return None
    return LiveChannel(
        name=event.get("Channel", ""),
        uniqueid=uniqueid,
        linkedid=event.get("Linkedid", ""),
        up=event.get("ChannelStateDesc") == _UP,
        bridged=bool(event.get("BridgeId")),
        seconds=_seconds(event.get("Duration", "")),
    )


def agent_call(channels: Iterable[LiveChannel], devices: Collection[str]) -> LiveChannel | None:
    """The agent's call: among the answered channels of its devices, one in a bridge (talking
    to someone) before one that is not, and the newest first. None: the agent is on no call."""
    answered = [
        channel for channel in channels if channel.up and device_of_channel(channel.name) in devices
    ]
    if not answered:
        return None
    return min(answered, key=lambda channel: (not channel.bridged, channel.seconds))


async def find_agent_call(
    ami: ListActionSender,
    devices: Collection[str],
    *,
    timeout: float,  # noqa: ASYNC109 - handed to the action, as AmiClient does
) -> LiveChannel | None:
    """The agent's call, read from Asterisk now (raises ``AmiError`` when it cannot be read)."""
    events = await ami.action_list("CoreShowChannels", timeout=timeout)
    channels = (live_channel(event) for event in events)
    return agent_call((c for c in channels if c is not None), devices)
