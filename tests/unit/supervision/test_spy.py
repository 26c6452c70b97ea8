"""Which of Asterisk's channels is the agent's call, and the ChanSpy call that listens to it."""

from __future__ import annotations

import pytest

from graam_pbx.ami import Message
from graam_pbx.ami import channels as channels_of
from graam_pbx.supervision import spy
from graam_pbx.supervision.schemas import Mode


def shown(
    name: str,
    uniqueid: str = "graam-1733400000.1",
    *,
    state: str = "Up",
    bridge: str = "b1",
    duration: str = "00:00:05",
) -> Message:
    """A CoreShowChannel event as Asterisk 22 sends it (the fields read, and a few others)."""
    return Message(
        [
            ("Event", "CoreShowChannel"),
            ("Channel", name),
            ("ChannelState", "6" if state == "Up" else "5"),
            ("ChannelStateDesc", state),
            ("Uniqueid", uniqueid),
            ("Linkedid", "graam-1733400000.0"),
            ("Application", "AppQueue"),
            ("Duration", duration),
            ("BridgeId", bridge),
        ]
    )


def channels(*events: Message) -> list[channels_of.LiveChannel]:
    return [c for c in (channels_of.live_channel(event) for event in events) if c is not None]


@pytest.mark.parametrize(
    ("mode", "options"),
    [(Mode.LISTEN, "quE"), (Mode.WHISPER, "quEw"), (Mode.BARGE, "quEB")],
)
def test_each_mode_spies_on_one_channel_by_uniqueid_quietly_until_it_ends(
    mode: Mode, options: str
) -> None:
    assert spy.chanspy_options(mode) == options


@pytest.mark.parametrize(
    ("name", "device"),
    [
        ("PJSIP/acme-ana-0000002a", "acme-ana"),
        ("PJSIP/acme-ana-2-0000002b", "acme-ana-2"),
        # A device whose own name ends like a channel's serial is still told apart.
        ("PJSIP/acme-ana-0000002a-0000002c", "acme-ana-0000002a"),
        ("PJSIP/acme-ana", None),
        ("PJSIP/acme-ana-0000002", None),
        ("PJSIP/acme-ana-0000002G", None),
        ("Local/queue@t1-queue-00000001;1", None),
        ("SIP/acme-ana-0000002a", None),
    ],
)
def test_a_channel_is_of_the_device_named_before_its_serial(name: str, device: str | None) -> None:
    assert channels_of.device_of_channel(name) == device


def test_the_agents_call_is_a_channel_of_its_devices_exactly() -> None:
    listed = channels(
        shown("PJSIP/acme-ana-2-00000001", "u-other"),  # another device, named alike
        shown("PJSIP/acme-anab-00000002", "u-longer"),
        shown("PJSIP/acme-ana-00000003", "u-ana"),
        shown("PJSIP/acme-bob-00000004", "u-bob"),
    )
    found = channels_of.agent_call(listed, {"acme-ana"})
    assert found is not None and found.uniqueid == "u-ana"
    assert channels_of.agent_call(listed, {"acme-zoe"}) is None


def test_an_answered_call_in_a_bridge_comes_first_then_the_newest() -> None:
    listed = channels(
        shown("PJSIP/acme-ana-00000001", "ringing", state="Ringing", duration="00:00:01"),
        shown("PJSIP/acme-ana-00000002", "alone", bridge="", duration="00:00:02"),
        shown("PJSIP/acme-ana-00000003", "older", duration="00:10:00"),
        shown("PJSIP/acme-ana-00000004", "newer", duration="00:00:40"),
    )
    found = channels_of.agent_call(listed, {"acme-ana"})
    assert found is not None and (found.uniqueid, found.bridged, found.seconds) == (
        "newer",
        True,
        40,
    )
    alone = channels_of.agent_call(
        channels(shown("PJSIP/acme-ana-00000002", "alone", bridge="")), {"acme-ana"}
    )
    assert alone is not None and alone.uniqueid == "alone"


def test_a_ringing_phone_is_no_call() -> None:
    ringing = channels(shown("PJSIP/acme-ana-00000001", state="Ringing"))
    assert channels_of.agent_call(ringing, {"acme-ana"}) is None


@pytest.mark.parametrize(
    "uniqueid", ["", "a,b", "x)y", "a b", "1^2", "$" + "{EXTEN}", "a" * 151, "-lead"]
)
def test_a_uniqueid_that_could_change_the_dialplans_arguments_is_never_taken(
    uniqueid: str,
) -> None:
    assert channels_of.live_channel(shown("PJSIP/acme-ana-00000001", uniqueid)) is None
    target = channels_of.LiveChannel("PJSIP/acme-ana-00000001", uniqueid, "", True, True, 1)
    with pytest.raises(ValueError, match="cannot be handed to the dialplan"):
        spy.call_variables(target, Mode.LISTEN, tell_agent=True)


def test_the_call_carries_the_channel_the_options_and_whether_to_tell() -> None:
    (target,) = channels(shown("PJSIP/acme-ana-00000001", "graam-1733400000.17"))
    assert spy.call_variables(target, Mode.WHISPER, tell_agent=True) == {
        "GRAAM_SPY_CHANNEL": "graam-1733400000.17",
        "GRAAM_SPY_OPTIONS": "quEw",
        "GRAAM_SPY_TELL": "1",
    }
    assert spy.call_variables(target, Mode.BARGE, tell_agent=False)["GRAAM_SPY_TELL"] == "0"


def test_other_events_and_odd_durations() -> None:
    assert channels_of.live_channel(Message([("Event", "CoreShowChannelsComplete")])) is None
    (odd,) = channels(shown("PJSIP/acme-ana-00000001", duration="soon"))
    assert odd.seconds == 0
