"""One tenant's wallboard as data: its queues' waiting callers, colour levels and figures, its
agents' states; and the JSON every viewer of the tenant receives (``board_json``).

Pure: no I/O and no clock of its own (``now`` is given), so the rules are unit-tested.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

Level = Literal["ok", "warn", "alarm"]
LEVELS: tuple[Level, ...] = ("ok", "warn", "alarm")
# Callers waiting in one queue: caller's uniqueid -> when it entered.
Callers = Mapping[str, datetime]
# The order agents are listed in: who can take a call first, who is away last.
STATE_ORDER = {
    state: rank
    for rank, state in enumerate(
        ("available", "ringing", "on-call", "wrap-up", "paused", "unregistered", "logged-out")
    )
}


@dataclass(frozen=True)
class QueueSetup:
    """What the board needs of a queue's settings: its name and colour thresholds."""

    id: int
    name: str
    waiting_warn: int = 3
    waiting_alarm: int = 6
    wait_warn_seconds: int = 30
    wait_alarm_seconds: int = 90


@dataclass(frozen=True)
class Figures:
    """A queue's figures for today (in the tenant's zone) and the agents needed now."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    service_level: Decimal | None = None
    abandon_rate: Decimal | None = None
    asa_seconds: Decimal | None = None
    agents_needed: int | None = None


@dataclass(frozen=True)
class AgentLine:
    """An agent on the board."""

    user_id: int
    name: str
    state: str
    since: datetime
    pause_reason: str | None = None
    pause_label: str | None = None


@dataclass(frozen=True)
class CampaignLine:
    """A running outbound campaign on the board: its calls so far and the abandon rate the
    law watches (24 hours)."""

    id: int
    name: str
    mode: str
    attempts: int = 0
    answered: int = 0
    abandon_rate_24h: Decimal = Decimal(0)
    in_progress: int = 0


@dataclass(frozen=True)
class Alert:
    queue_id: int
    kind: Literal["waiting", "longest_wait"]
    level: Level


def _higher(a: Level, b: Level) -> Level:
    return a if LEVELS.index(a) >= LEVELS.index(b) else b


def _level_of(value: float, warn: float, alarm: float) -> Level:
    if value >= alarm:
        return "alarm"
    if value >= warn:
        return "warn"
    return "ok"


def queue_level(setup: QueueSetup, waiting: int, longest_wait: float) -> tuple[Level, list[Alert]]:
    """The queue's colour level and the thresholds it has crossed (nobody waiting: ok)."""
    alerts: list[Alert] = []
    if waiting == 0:
        return "ok", alerts
    level: Level = "ok"
    by_count = _level_of(waiting, setup.waiting_warn, setup.waiting_alarm)
    if by_count != "ok":
        alerts.append(Alert(setup.id, "waiting", by_count))
        level = _higher(level, by_count)
    by_wait = _level_of(longest_wait, setup.wait_warn_seconds, setup.wait_alarm_seconds)
    if by_wait != "ok":
        alerts.append(Alert(setup.id, "longest_wait", by_wait))
        level = _higher(level, by_wait)
    return level, alerts


def oldest(callers: Callers | None) -> datetime | None:
    return min(callers.values()) if callers else None


def seconds_since(start: datetime | None, now: datetime) -> float:
    return max(0.0, (now - start).total_seconds()) if start is not None else 0.0


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _ratio(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@dataclass
class Board:
    """A watched tenant's board between changes: settings, figures and agents (the waiting
    callers are kept for every tenant, watched or not, and passed in)."""

    tenant_id: int
    seq: int
    queues: dict[int, QueueSetup] = field(default_factory=dict)
    figures: dict[int, Figures] = field(default_factory=dict)
    agents: dict[int, AgentLine] = field(default_factory=dict)
    campaigns: dict[int, CampaignLine] = field(default_factory=dict)

    def levels(self, waiting: Mapping[int, Callers], now: datetime) -> tuple[Level, ...]:
        """Each queue's level now: the board changes when one does, even without an event
        (the longest wait crosses a threshold as time passes)."""
        return tuple(
            queue_level(
                setup,
                len(waiting.get(setup.id) or {}),
                seconds_since(oldest(waiting.get(setup.id)), now),
            )[0]
            for setup in self.queues.values()
        )

    def snapshot(self, waiting: Mapping[int, Callers], now: datetime) -> dict[str, Any]:
        """The board as its JSON contract says (``README``: the wallboard's stream)."""
        queues: list[dict[str, Any]] = []
        alerts: list[dict[str, Any]] = []
        for setup in sorted(self.queues.values(), key=lambda q: (q.name, q.id)):
            callers = waiting.get(setup.id) or {}
            first = oldest(callers)
            longest = seconds_since(first, now)
            level, crossed = queue_level(setup, len(callers), longest)
            alerts.extend(
                {"queue_id": a.queue_id, "kind": a.kind, "level": a.level} for a in crossed
            )
            figures = self.figures.get(setup.id, Figures())
            queues.append(
                {
                    "id": setup.id,
                    "name": setup.name,
                    "waiting": len(callers),
                    "longest_wait_s": round(longest, 1),
                    "oldest_entered_at": _iso(first),
                    "level": level,
                    "thresholds": {
                        "waiting_warn": setup.waiting_warn,
                        "waiting_alarm": setup.waiting_alarm,
                        "wait_warn_s": setup.wait_warn_seconds,
                        "wait_alarm_s": setup.wait_alarm_seconds,
                    },
                    "today": {
                        "offered": figures.offered,
                        "answered": figures.answered,
                        "abandoned": figures.abandoned,
                        "service_level": _ratio(figures.service_level),
                        "abandon_rate": _ratio(figures.abandon_rate),
                        "asa_s": _ratio(figures.asa_seconds),
                    },
                    "agents_needed": figures.agents_needed,
                }
            )
        agents = [
            {
                "user_id": agent.user_id,
                "name": agent.name,
                "state": agent.state,
                "since": _iso(agent.since),
                "pause_reason": agent.pause_reason,
                "pause_label": agent.pause_label,
            }
            for agent in sorted(
                self.agents.values(),
                key=lambda a: (STATE_ORDER.get(a.state, len(STATE_ORDER)), a.name, a.user_id),
            )
        ]
        campaigns = [
            {
                "id": line.id,
                "name": line.name,
                "mode": line.mode,
                "attempts": line.attempts,
                "answered": line.answered,
                "abandon_rate_24h": str(line.abandon_rate_24h),
                "in_progress": line.in_progress,
            }
            for line in sorted(self.campaigns.values(), key=lambda c: (c.name, c.id))
        ]
        return {
            "tenant_id": self.tenant_id,
            "seq": self.seq,
            "generated_at": _iso(now),
            "queues": queues,
            "agents": agents,
            "alerts": alerts,
            "campaigns": campaigns,
        }


def board_json(board: Board, waiting: Mapping[int, Callers], now: datetime) -> str:
    return json.dumps(board.snapshot(waiting, now), separators=(",", ":"), ensure_ascii=False)


def sse_frame(event: str, event_id: int, data: str) -> bytes:
    """One Server-Sent Event; ``data`` is one line of JSON (no newline to split)."""
    return f"event: {event}\nid: {event_id}\ndata: {data}\n\n".encode()
