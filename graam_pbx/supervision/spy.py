"""What supervision asks of Asterisk, as pure logic: which channel is the agent's call, and
the call that spies on it (asterisk_conf/extensions.conf, context ``graam-supervision``).

The agent's call is found among Asterisk's channels (``CoreShowChannels``) by the agent's
devices: chan_pjsip names a device's channels ``PJSIP/<sip username>-<8 hex digits>``, so a
channel belongs to a device when the name less its last ``-`` and 8 hex digits is exactly the
device's SIP username (``acme-ana`` is not ``acme-ana-2``'s, nor the other way round).
ChanSpy is then given that channel's uniqueid with its ``u`` option: it spies on that one
channel and no other, whatever other channel names start with.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from graam_pbx.supervision.schemas import Mode

CONTEXT = "graam-supervision"  # asterisk_conf/extensions.conf
CHANNEL_PREFIX = "spy-"  # every supervision call's channel id starts so

# q: no beep nor channel name to the supervisor; u: the channel is named by its uniqueid,
# exactly; E: the supervisor's call ends when the agent's channel hangs up.
_COMMON_OPTIONS = "quE"
_MODE_OPTIONS = {Mode.LISTEN: "", Mode.WHISPER: "w", Mode.BARGE: "B"}

_DEVICE_CHANNEL = re.compile(r"^PJSIP/(?P<device>.+)-[0-9a-f]{8}$")
# What a uniqueid may be to be handed to the dialplan (ChanSpy's argument, the Originate
# application's variable): Asterisk's own are "<systemname>-<seconds>.<serial>".
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


def chanspy_options(mode: Mode) -> str:
    """ChanSpy's options for ``mode``: listen hears both sides and says nothing, whisper
    (``w``) speaks to the agent alone, barge (``B``) to the agent and the caller."""
    return _COMMON_OPTIONS + _MODE_OPTIONS[mode]


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
    that may not be handed to the dialplan)."""
    if event.get("Event") != "CoreShowChannel":
        return None
    uniqueid = event.get("Uniqueid", "")
    if not _UNIQUEID.match(uniqueid):
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


def call_variables(target: LiveChannel, mode: Mode, *, tell_agent: bool) -> dict[str, str]:
    """The channel variables the ``graam-supervision`` context reads."""
    if not _UNIQUEID.match(target.uniqueid):
        raise ValueError(f"uniqueid {target.uniqueid!r} cannot be handed to the dialplan")
    return {
        "GRAAM_SPY_CHANNEL": target.uniqueid,
        "GRAAM_SPY_OPTIONS": chanspy_options(mode),
        "GRAAM_SPY_TELL": "1" if tell_agent else "0",
    }
