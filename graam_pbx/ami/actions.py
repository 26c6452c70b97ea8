"""Typed AMI actions the control plane uses, over anything that can send an action."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from graam_pbx.ami.errors import AmiActionError, AmiProtocolError
from graam_pbx.ami.protocol import FieldValue, Message


class ActionSender(Protocol):
    async def action(
        self,
        name: str,
        fields: Mapping[str, FieldValue] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the client's contract, see AmiClient
    ) -> Message: ...


class ListActionSender(ActionSender, Protocol):
    async def action_list(
        self,
        name: str,
        fields: Mapping[str, FieldValue] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[Message]: ...


@dataclass(frozen=True, slots=True)
class CoreStatus:
    startup: datetime
    last_reload: datetime
    uptime: timedelta


# Asterisk splits each Variable header on commas and treats quotes, brackets and backslashes
# specially (ast_app_separate_args); a backslash makes the next character literal.
_VARIABLE_SPECIALS = re.compile(r'([\\,"()\[\]])')
_UPTIME = re.compile(r"System uptime:\s*(\d+)")
_LAST_RELOAD = re.compile(r"Last reload:\s*(\d+)")
_UNIQUEID_IN_USE = "already in use"


def _escape_variable(text: str) -> str:
    return _VARIABLE_SPECIALS.sub(r"\\\1", text)


def originate_variables(variables: Mapping[str, str]) -> list[str]:
    """``Variable`` header values for ``variables``, escaped so no value can add a variable."""
    headers = []
    for name, value in variables.items():
        if not name or "=" in name:
            raise ValueError(f"channel variable name {name!r} is empty or contains '='")
        headers.append(f"{_escape_variable(name)}={_escape_variable(value)}")
    return headers


async def ping(ami: ActionSender) -> Message:
    """Ping Asterisk; the answer proves the connection is alive both ways."""
    return await ami.action("Ping")


async def command(ami: ActionSender, cli: str) -> str:
    """Run a CLI command and return its output lines joined by newlines."""
    response = await ami.action("Command", {"Command": cli})
    return "\n".join(response.getall("Output"))


async def core_status(ami: ActionSender) -> CoreStatus:
    """When Asterisk started and last reloaded, in UTC.

    ``core show uptime seconds`` is used because CoreStatus reports local wall-clock dates
    without a time zone.
    """
    output = await command(ami, "core show uptime seconds")
    uptime = _UPTIME.search(output)
    reload = _LAST_RELOAD.search(output)
    if uptime is None:
        raise AmiProtocolError(f"unexpected 'core show uptime seconds' output: {output!r}")
    now = datetime.now(UTC)
    since_start = timedelta(seconds=int(uptime.group(1)))
    since_reload = timedelta(seconds=int(reload.group(1))) if reload else since_start
    return CoreStatus(startup=now - since_start, last_reload=now - since_reload, uptime=since_start)


async def queue_add(
    ami: ActionSender,
    queue: str,
    interface: str,
    *,
    penalty: int = 0,
    member_name: str | None = None,
    state_interface: str | None = None,
    paused: bool = False,
    reason: str | None = None,
) -> Message:
    """Add a dynamic member to a queue."""
    fields: dict[str, FieldValue] = {
        "Queue": queue,
        "Interface": interface,
        "Penalty": penalty,
        "Paused": paused,
    }
    if member_name is not None:
        fields["MemberName"] = member_name
    if state_interface is not None:
        fields["StateInterface"] = state_interface
    if reason is not None:
        fields["Reason"] = reason
    return await ami.action("QueueAdd", fields)


async def queue_remove(ami: ActionSender, queue: str, interface: str) -> Message:
    """Remove a dynamic member from a queue."""
    return await ami.action("QueueRemove", {"Queue": queue, "Interface": interface})


async def queue_pause(
    ami: ActionSender, queue: str | None, interface: str, paused: bool, reason: str | None = None
) -> Message:
    """Pause or unpause a member in one queue, or in every queue when ``queue`` is None."""
    fields: dict[str, FieldValue] = {"Interface": interface, "Paused": paused}
    if queue is not None:
        fields["Queue"] = queue
    if reason is not None:
        fields["Reason"] = reason
    return await ami.action("QueuePause", fields)


async def queue_status(ami: ListActionSender, queue: str | None = None) -> list[Message]:
    """``QueueParams`` and ``QueueMember`` (and ``QueueEntry``) events of one or every queue."""
    fields: dict[str, FieldValue] = {} if queue is None else {"Queue": queue}
    return await ami.action_list("QueueStatus", fields)


async def originate(
    ami: ActionSender,
    channel: str,
    *,
    channel_id: str,
    context: str | None = None,
    exten: str | None = None,
    priority: int | str = 1,
    application: str | None = None,
    data: str | None = None,
    caller_id: str | None = None,
    variables: Mapping[str, str] | None = None,
    timeout_ms: int = 30_000,
    account: str | None = None,
) -> Message:
    """Queue a call on Asterisk, identified by ``channel_id``; the outcome is an OriginateResponse.

    Always asynchronous. Retrying with the same ``channel_id`` is safe: an answer that the
    uniqueid is already in use counts as success, so the call is never placed twice.
    """
    if (application is None) == (context is None or exten is None):
        raise ValueError("originate needs either context and exten, or application")
    fields: dict[str, FieldValue] = {
        "Channel": channel,
        "Async": True,
        "ChannelId": channel_id,
        "Timeout": timeout_ms,
    }
    if application is not None:
        fields["Application"] = application
        if data is not None:
            fields["Data"] = data
    else:
        fields.update({"Context": context or "", "Exten": exten or "", "Priority": priority})
    if caller_id is not None:
        fields["CallerID"] = caller_id
    if account is not None:
        fields["Account"] = account
    if variables:
        fields["Variable"] = originate_variables(variables)
    try:
        return await ami.action("Originate", fields)
    except AmiActionError as err:
        if err.response is not None and _UNIQUEID_IN_USE in err.message.lower():
            return err.response
        raise


async def reload(ami: ActionSender, module: str) -> Message:
    """Reload one Asterisk module (``res_pjsip.so``, ``app_queue.so``, ``dialplan``)."""
    return await ami.action("Reload", {"Module": module})


async def hangup(ami: ActionSender, channel: str, *, cause: int | None = None) -> Message:
    """Hang up a channel by name (or a ``/regex/`` of names)."""
    fields: dict[str, FieldValue] = {"Channel": channel}
    if cause is not None:
        fields["Cause"] = cause
    return await ami.action("Hangup", fields)


async def getvar(ami: ActionSender, channel: str, variable: str) -> str:
    """A channel variable's value ("" when unset)."""
    response = await ami.action("Getvar", {"Channel": channel, "Variable": variable})
    return response.get("Value", "") or ""


async def setvar(ami: ActionSender, channel: str, variable: str, value: str) -> Message:
    """Set a channel variable."""
    return await ami.action("Setvar", {"Channel": channel, "Variable": variable, "Value": value})


async def mix_monitor(ami: ActionSender, channel: str, file: str, options: str) -> Message:
    """Start ``MixMonitor`` on a channel into ``file`` (relative: under Asterisk's monitor
    spool) with the application's ``options``."""
    return await ami.action("MixMonitor", {"Channel": channel, "File": file, "Options": options})


async def stop_mix_monitor(ami: ActionSender, channel: str) -> Message:
    """Stop the channel's ``MixMonitor``."""
    return await ami.action("StopMixMonitor", {"Channel": channel})


async def redirect(
    ami: ActionSender,
    channel: str,
    context: str,
    exten: str,
    *,
    extra: tuple[str, str, str] | None = None,
) -> Message:
    """Send a channel (out of its bridge or application) to ``exten`` in ``context`` at its
    first priority; ``extra`` (channel, context, exten) moves a second channel at once (a dual
    redirect: two parties of one bridge leave it together, neither hung up by the other's
    leaving)."""
    fields: dict[str, FieldValue] = {
        "Channel": channel,
        "Context": context,
        "Exten": exten,
        "Priority": 1,
    }
    if extra is not None:
        fields.update(
            {
                "ExtraChannel": extra[0],
                "ExtraContext": extra[1],
                "ExtraExten": extra[2],
                "ExtraPriority": 1,
            }
        )
    return await ami.action("Redirect", fields)


async def atxfer(ami: ActionSender, channel: str, context: str, exten: str) -> Message:
    """Start an attended transfer from ``channel`` (the transferer) to ``exten`` of
    ``context``: Asterisk feeds the channel its attended-transfer feature code and the digits,
    as if its phone had sent them (so the code must be configured and the channel allowed to
    transfer in its bridge)."""
    return await ami.action("Atxfer", {"Channel": channel, "Context": context, "Exten": exten})


async def bridge(ami: ActionSender, channel1: str, channel2: str) -> Message:
    """Put two channels that are in the dialplan into one new bridge, without a tone; once it
    ends, each goes on in the dialplan after the application it was running."""
    return await ami.action("Bridge", {"Channel1": channel1, "Channel2": channel2, "Tone": "no"})


async def play_dtmf(ami: ActionSender, channel: str, digit: str, *, duration_ms: int) -> Message:
    """Send one DTMF digit out on a channel (to whoever is at its far end)."""
    return await ami.action(
        "PlayDTMF", {"Channel": channel, "Digit": digit, "Duration": duration_ms}
    )
