"""Hold and resume a live call through the API.

Asterisk 22 has no AMI action that holds one party of a bridge: a phone holds with a
re-INVITE (Asterisk then plays the other party hold music), which the control plane cannot
make a phone send, and ARI's hold works only on channels of a Stasis application. So a hold
takes both parties out of their bridge with one ``Redirect`` (the channel and the extra
channel move at once: neither is hung up by the other's leaving) into ``graam-hold``
(``asterisk_conf/extensions.conf``): the other party hears hold music (``default``), the agent
waits in silence; each names the other in ``GRAAM_HOLD_PEER``, so that either hanging up
hangs the other up. Resuming clears both names and puts the two back into one bridge
(``Bridge``). While held, the call shows ``held``; its two channels keep their names, ids and
linkedid, so the call keeps its id.

What a hold costs: the call's legs are cut where it leaves and rejoins a bridge (Asterisk's
CDRs follow bridges), so a held call has a leg before, one while held and one after; an
outbound call's legs while and after are still its agent's outbound legs, billed as such, as
the carrier bills the whole time. A queue call held this way has left its queue: the queue's
figures end it there.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami import AmiActionError, AmiError
from graam_pbx.ami import actions as ami_actions
from graam_pbx.ami.supervisor import AmiRoutes
from graam_pbx.auth.principal import Scope
from graam_pbx.call_control import live
from graam_pbx.call_control.calls import locate
from graam_pbx.call_control.calls_schemas import CallStateName, ControlOut
from graam_pbx.call_control.control import audited, parties
from graam_pbx.errors import Conflict, Unavailable

MUSIC_CLASS = "default"
PEER_VARIABLE = "GRAAM_HOLD_PEER"
MUSIC_VARIABLE = "GRAAM_HOLD_MOH"


class CallNotHeld(Conflict):
    """The call is not on hold through the API."""

    error_id = "call-not-held"


class CallNotHoldable(Conflict):
    """A channel of the call has a name the dialplan cannot be handed."""

    error_id = "call-not-holdable"


async def hold(
    sessions: async_sessionmaker[AsyncSession], scope: Scope, routes: AmiRoutes, call_id: str
) -> ControlOut:
    """Put the call's other party on hold music and its agent aside (409 ``call-held``,
    ``call-not-connected``, ``call-not-two-party``)."""
    async with sessions() as session:
        located = await locate(session, scope, routes, call_id)
    both = parties(located)
    if not (both.agent.safe_name and both.other.safe_name):
        raise CallNotHoldable("this call's channels cannot be held")
    await audited(
        sessions,
        scope,
        call_id,
        "call-hold",
        {"agent_channel": both.agent.name, "held_channel": both.other.name},
    )
    ami = located.ami
    try:
        await ami_actions.setvar(ami, both.other.name, MUSIC_VARIABLE, MUSIC_CLASS)
        await ami_actions.setvar(ami, both.other.name, PEER_VARIABLE, both.agent.name)
        await ami_actions.setvar(ami, both.agent.name, PEER_VARIABLE, both.other.name)
        await ami_actions.redirect(
            ami,
            both.other.name,
            live.HOLD_CONTEXT,
            live.HOLD_MUSIC,
            extra=(both.agent.name, live.HOLD_CONTEXT, live.HOLD_WAIT),
        )
    except AmiError as err:
        await _forget_peers(located.ami, both.agent.name, both.other.name)
        raise Unavailable(f"Asterisk did not hold the call: {err}", retry_after=1) from err
    return ControlOut(id=call_id, action="hold", channels=[both.other.name, both.agent.name])


async def _forget_peers(ami: ami_actions.ActionSender, *names: str) -> None:
    """Clear the held parties' names of each other (best effort: a channel may be gone)."""
    for name in names:
        try:
            await ami_actions.setvar(ami, name, PEER_VARIABLE, "")
        except AmiError:
            continue


async def resume(
    sessions: async_sessionmaker[AsyncSession], scope: Scope, routes: AmiRoutes, call_id: str
) -> ControlOut:
    """Put the held call's two parties back together (409 ``call-not-held``)."""
    async with sessions() as session:
        located = await locate(session, scope, routes, call_id)
    pair = live.held_pair(located.call, located.viewer.own)
    if pair is None:
        state = located.call.state()
        reason = "is not on hold" if state is not CallStateName.HELD else "cannot be resumed"
        raise CallNotHeld(f"the call {reason}")
    agent, other = pair
    await audited(
        sessions,
        scope,
        call_id,
        "call-resume",
        {"agent_channel": agent.name, "held_channel": other.name},
    )
    # Unnamed first: once bridged, neither hangs the other up from graam-hold any more, and
    # each ends when the bridge does.
    await _forget_peers(located.ami, agent.name, other.name)
    try:
        await ami_actions.bridge(located.ami, agent.name, other.name)
    except AmiActionError as err:
        # One of them left meanwhile: nobody to talk to, the other is hung up.
        for name in (agent.name, other.name):
            try:
                await ami_actions.hangup(located.ami, name)
            except AmiError:
                continue
        raise CallNotHeld(f"the call ended while on hold: {err.message}") from err
    except AmiError as err:
        raise Unavailable(f"Asterisk did not resume the call: {err}", retry_after=1) from err
    return ControlOut(id=call_id, action="resume", channels=[agent.name, other.name])
