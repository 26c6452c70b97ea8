"""What supervision asks of Asterisk, as pure logic: the call that spies on the agent's call
(asterisk_conf/extensions.conf, context ``graam-supervision``).

The agent's call is found by ``graam_pbx.ami.channels``; ChanSpy is then given that channel's
uniqueid with its ``u`` option: it spies on that one channel and no other, whatever other
channel names start with.
"""

from __future__ import annotations

from graam_pbx.ami.channels import LiveChannel, is_uniqueid
from graam_pbx.supervision.schemas import Mode

CONTEXT = "graam-supervision"  # asterisk_conf/extensions.conf
CHANNEL_PREFIX = "spy-"  # every supervision call's channel id starts so

# q: no beep nor channel name to the supervisor; u: the channel is named by its uniqueid,
# exactly; E: the supervisor's call ends when the agent's channel hangs up.
_COMMON_OPTIONS = "quE"
_MODE_OPTIONS = {Mode.LISTEN: "", Mode.WHISPER: "w", Mode.BARGE: "B"}


def chanspy_options(mode: Mode) -> str:
    """ChanSpy's options for ``mode``: listen hears both sides and says nothing, whisper
    (``w``) speaks to the agent alone, barge (``B``) to the agent and the caller."""
    return _COMMON_OPTIONS + _MODE_OPTIONS[mode]


def call_variables(target: LiveChannel, mode: Mode, *, tell_agent: bool) -> dict[str, str]:
    """The channel variables the ``graam-supervision`` context reads."""
    if not is_uniqueid(target.uniqueid):
        raise ValueError(f"uniqueid {target.uniqueid!r} cannot be handed to the dialplan")
    return {
        "GRAAM_SPY_CHANNEL": target.uniqueid,
        "GRAAM_SPY_OPTIONS": chanspy_options(mode),
        "GRAAM_SPY_TELL": "1" if tell_agent else "0",
    }
