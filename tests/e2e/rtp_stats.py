"""What Asterisk counts of a channel's media: proof that audio flows, read over AMI."""

from __future__ import annotations

from graam_pbx.ami import AmiSupervisor


async def channels(ami: AmiSupervisor) -> dict[str, str]:
    """Every channel's name → its state (Up, Ringing, …)."""
    events = await ami.action_list("CoreShowChannels", {})
    return {
        event.get("Channel", ""): event.get("ChannelStateDesc", "")
        for event in events
        if event.name == "CoreShowChannel"
    }


async def rtp_counts(ami: AmiSupervisor, channel: str) -> tuple[int, int]:
    """(packets received, packets sent) by Asterisk on ``channel``'s audio stream
    (chan_pjsip's ``CHANNEL(rtcp,rxcount|txcount,audio)``)."""
    counts = []
    for field in ("rxcount", "txcount"):
        answer = await ami.action(
            "Getvar", {"Channel": channel, "Variable": f"CHANNEL(rtcp,{field},audio)"}
        )
        counts.append(int(float(answer.get("Value", "") or 0)))
    return counts[0], counts[1]
