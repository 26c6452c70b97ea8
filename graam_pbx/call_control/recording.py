"""Start and pause the recording of one's own call from the console or the API.

The dialplan prepares every call the tenant's policy lets be recorded
(``dialplans/agent_leg.conf.j2``, ``t<tenant>-record,start``) on the user's channel:
``GRAAM_REC_FILE`` names the leg's file, ``GRAAM_REC_MODE`` says the mode (``always`` or
``on_demand``) and ``GRAAM_REC_ON`` is ``1`` while ``MixMonitor`` writes. The in-call code
``*3`` toggles that in the dialplan (``asterisk_conf/extensions.conf``, ``graam-rec``); this
does the same over AMI on the same channel: ``MixMonitor`` into the same file with the same
options (``a``: appended; ``b``: only while bridged), or ``StopMixMonitor``, and the same
variable set. So a pause cuts the paused stretch out of the file, whichever way it was asked
for, and the file is registered as any other (``graam_pbx.recordings.worker``).

The call is the caller's own: found among Asterisk's channels by the caller's devices, on the
tenant's node. Every change is written to the audit log (``recording-start`` or
``recording-pause``, object ``call``: the linkedid) in the request's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.agents.service import device_extensions
from graam_pbx.ami import AmiError, channels
from graam_pbx.ami import actions as ami_actions
from graam_pbx.ami.supervisor import AmiRoutes, AmiSupervisor
from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Scope
from graam_pbx.call_control.schemas import RecordingState
from graam_pbx.errors import Conflict, Unavailable
from graam_pbx.recordings.policy import Mode

AMI_TIMEOUT = 5.0
FILE_VARIABLE = "GRAAM_REC_FILE"  # the leg's file, under Asterisk's monitor spool
MODE_VARIABLE = "GRAAM_REC_MODE"
ON_VARIABLE = "GRAAM_REC_ON"
MIXMONITOR_OPTIONS = "ab"  # as the dialplan's: appended, only while bridged


class NotOnCall(Conflict):
    """The caller has no answered call."""

    error_id = "not-on-call"


class NotRecordable(Conflict):
    """The tenant's policy does not let this call be recorded."""

    error_id = "call-not-recordable"


@dataclass(frozen=True)
class _Call:
    ami: AmiSupervisor  # the tenant's node's connection
    channel: channels.LiveChannel
    file: str
    mode: Mode | None
    recording: bool

    def state(self, recording: bool | None = None) -> RecordingState:
        return RecordingState(
            call=self.channel.linkedid,
            channel=self.channel.name,
            recordable=bool(self.file),
            mode=self.mode,
            recording=self.recording if recording is None else recording,
        )


def _mode(value: str) -> Mode | None:
    try:
        return Mode(value)
    except ValueError:
        return None


async def _own_call(session: AsyncSession, scope: Scope, routes: AmiRoutes) -> _Call:
    devices = await device_extensions(session, scope.tenant_id, scope.principal.user_id)
    if not devices:
        raise NotOnCall("you have no device, so no call")
    ami = await routes.for_tenant(scope.tenant_id)
    try:
        target = await channels.find_agent_call(ami, devices.keys(), timeout=AMI_TIMEOUT)
        if target is None:
            raise NotOnCall("you are not on a call")
        file = await ami_actions.getvar(ami, target.name, FILE_VARIABLE)
        mode = await ami_actions.getvar(ami, target.name, MODE_VARIABLE) if file else ""
        on = await ami_actions.getvar(ami, target.name, ON_VARIABLE) if file else ""
    except AmiError as err:
        raise Unavailable(f"your call cannot be read now: {err}", retry_after=1) from err
    return _Call(ami, target, file, _mode(mode), on == "1")


async def current(session: AsyncSession, scope: Scope, routes: AmiRoutes) -> RecordingState:
    """The recording of the caller's call (409 ``not-on-call`` without one)."""
    return (await _own_call(session, scope, routes)).state()


async def change(
    session: AsyncSession, scope: Scope, routes: AmiRoutes, *, recording: bool
) -> RecordingState:
    """Record the caller's call from now on, or pause its recording; asking for what already
    is changes nothing. 409 ``not-on-call``, 409 ``call-not-recordable``."""
    call = await _own_call(session, scope, routes)
    if not call.file:
        raise NotRecordable("the tenant's recording policy does not record this call")
    if call.recording == recording:
        return call.state()
    name = call.channel.name
    try:
        if recording:
            await ami_actions.mix_monitor(call.ami, name, call.file, MIXMONITOR_OPTIONS)
        else:
            await ami_actions.stop_mix_monitor(call.ami, name)
        await ami_actions.setvar(call.ami, name, ON_VARIABLE, "1" if recording else "0")
    except AmiError as err:
        raise Unavailable(f"Asterisk did not change the recording: {err}", retry_after=1) from err
    await audit.record(
        session,
        scope,
        "recording-start" if recording else "recording-pause",
        "call",
        call.channel.linkedid,
        {"channel": name, "mode": call.mode.value if call.mode else None},
    )
    return call.state(recording)
