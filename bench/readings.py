"""Readings the benches share: a percentile of their timings, and how many queue members
Asterisk has."""

from __future__ import annotations

from graam_pbx.app import Runtime


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def queue_members(runtime: Runtime) -> int:
    events = await runtime.ami.action_list("QueueStatus", {})
    return sum(1 for event in events if event.name == "QueueMember")
