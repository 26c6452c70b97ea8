"""A campaign simulated without telephony, to check the pacing against the law.

Discrete events with a fixed seed: the pacer decides every second from what a dialer would
measure; each call is answered by a person (with the given probability) after a few seconds,
or rings the law's 15 s and more unanswered; an answered call takes a free agent for an
exponential handling time, or is abandoned when no agent frees up within the legal 2 s.
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections import deque
from dataclasses import dataclass, field
from itertools import pairwise

from graam_pbx.campaigns.pacing import (
    MEASURED_CALLS_BEFORE_PREDICTIVE,
    Decision,
    Pacer,
    PacingInput,
)

DAY_SECONDS = 86_400.0
ABANDON_DELAY = 2.0  # seconds an answered call may wait for an agent (France)
MIN_RING = 15.0  # an unanswered call rings at least this long (France)
RING_SECONDS = 25.0  # the ring time a campaign gives unanswered calls
ANSWER_AFTER = (3.0, 12.0)  # a person answers within these seconds
MEASURED_CALLS = 500  # the answer rate and ring time are measured over these last calls

_ANSWER = 0
_NO_ANSWER = 1
_AGENT_FREE = 2
_GIVE_UP = 3


@dataclass(frozen=True, slots=True)
class MinuteFigures:
    """One simulated minute: calls placed, answered by a person, abandoned, agents talking."""

    minute: int
    attempts: int
    answered: int
    abandoned: int
    occupancy: float


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """The run's totals; ``abandon_rate`` is abandoned / answered by a person."""

    mode: str
    agents: int
    hours: float
    attempts: int
    answered: int
    abandoned: int
    abandon_rate: float
    max_window_abandon_rate: float
    occupancy: float
    max_in_flight: int
    minutes: tuple[MinuteFigures, ...] = field(repr=False)


def max_window_rate(events: list[tuple[float, bool]], window: float, end: float) -> float:
    """The highest abandon rate of any ``window`` seconds within [0, end] (the whole run when
    shorter); ``events``: (answer time, abandoned) sorted by time."""
    if not events:
        return 0.0
    if end <= window:
        return sum(1 for _, lost in events if lost) / len(events)
    # The events a window holds change only where its start or its end crosses one: check the
    # windows starting or ending at an event, and one between each two of those.
    times = [at for at, _ in events]
    lost_before = [0]
    for _, lost in events:
        lost_before.append(lost_before[-1] + int(lost))
    last_start = end - window
    edges = sorted(
        {0.0, last_start}
        | {min(max(0.0, at), last_start) for at in times}
        | {min(max(0.0, at - window), last_start) for at in times}
    )
    starts = edges + [(low + high) / 2 for low, high in pairwise(edges)]
    worst = 0.0
    for start in starts:
        first = bisect.bisect_left(times, start)
        last = bisect.bisect_right(times, start + window)
        if last > first:
            worst = max(worst, (lost_before[last] - lost_before[first]) / (last - first))
    return worst


def simulate(
    mode: str,
    *,
    agents: int,
    handle_seconds: float,
    answer_rate: float,
    hours: float,
    seed: int,
    abandon_target: float = 0.025,
    abandon_limit: float = 0.03,
    cap: int | None = None,
) -> SimulationResult:
    """Run a campaign of ``agents`` for ``hours`` in ``mode`` and measure it."""
    campaign = SimulatedCampaign(
        mode,
        agents=agents,
        handle_seconds=handle_seconds,
        answer_rate=answer_rate,
        hours=hours,
        seed=seed,
        abandon_target=abandon_target,
        abandon_limit=abandon_limit,
        cap=cap,
    )
    return campaign.run(Pacer())


class SimulatedCampaign:
    """One simulated campaign: its event queue and what a dialer would measure of it.

    Driven a second at a time: ``observe(now)`` then ``apply(decision, now)``.
    """

    def __init__(
        self,
        mode: str,
        *,
        agents: int,
        handle_seconds: float,
        answer_rate: float,
        hours: float,
        seed: int,
        abandon_target: float = 0.025,
        abandon_limit: float = 0.03,
        cap: int | None = None,
    ) -> None:
        self.mode = mode
        self.abandon_target = abandon_target
        self.abandon_limit = abandon_limit
        self.agents = agents
        self.handle_seconds = handle_seconds
        self.answer_rate = answer_rate
        self.hours = hours
        self.end = hours * 3600.0
        self.cap = agents * 5 if cap is None else cap
        self.rng = random.Random(seed)  # noqa: S311 -- a reproducible run, not a secret
        self.events: list[tuple[float, int, int, int]] = []  # (at, sequence, kind, call)
        self.sequence = 0
        self.free_agents = agents
        self.placed_at: dict[int, float] = {}  # ringing calls
        self.waiting: dict[int, float] = {}  # answered, waiting for an agent: oldest first
        self.talking: dict[int, tuple[float, float]] = {}  # connected: (since, handling time)
        self.talking_since = 0.0  # the sum of the connected calls' starts
        # What the dialer measures, over the last MEASURED_CALLS finished calls.
        self.recent: deque[tuple[bool, float]] = deque()
        self.recent_answered = 0
        self.recent_ring = 0.0
        self.handled = 0
        self.handled_seconds = 0.0
        self.answers: list[tuple[float, bool]] = []  # (answered at, abandoned)
        self.window_start = 0
        self.window_lost = 0
        self.attempts = 0
        self.answered = 0
        self.abandoned = 0
        self.talk = 0.0
        self.max_in_flight = 0
        self.minutes: list[list[float]] = []

    def push(self, at: float, kind: int, call: int) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (at, self.sequence, kind, call))

    def minute(self, at: float) -> list[float]:
        index = int(at // 60)
        while len(self.minutes) <= index:
            self.minutes.append([0.0, 0.0, 0.0, 0.0])
        return self.minutes[index]

    def finished_ringing(self, call: int, at: float, person: bool) -> None:
        ring = at - self.placed_at.pop(call)
        self.recent.append((person, ring))
        self.recent_answered += int(person)
        self.recent_ring += ring if person else 0.0
        if len(self.recent) > MEASURED_CALLS:
            old_person, old_ring = self.recent.popleft()
            self.recent_answered -= int(old_person)
            self.recent_ring -= old_ring if old_person else 0.0

    def connect(self, call: int, at: float) -> None:
        self.free_agents -= 1
        seconds = self.rng.expovariate(1.0 / self.handle_seconds)
        self.talking[call] = (at, seconds)
        self.talking_since += at
        self.talk += min(seconds, max(0.0, self.end - at))
        self.push(at + seconds, _AGENT_FREE, call)

    def person_answered(self, at: float, lost: bool) -> None:
        self.answers.append((at, lost))
        figures = self.minute(at)
        if lost:
            self.abandoned += 1
            self.window_lost += 1
            figures[2] += 1
        else:
            self.answered += 1
            figures[1] += 1

    def handle(self, at: float, kind: int, call: int) -> None:
        if kind == _ANSWER:
            self.finished_ringing(call, at, True)
            if self.free_agents > 0:
                self.connect(call, at)
                self.person_answered(at, False)
            else:
                self.waiting[call] = at
                self.push(at + ABANDON_DELAY, _GIVE_UP, call)
        elif kind == _NO_ANSWER:
            self.finished_ringing(call, at, False)
        elif kind == _AGENT_FREE:
            self.free_agents += 1
            since, seconds = self.talking.pop(call)
            self.talking_since -= since
            self.handled += 1
            self.handled_seconds += seconds
            if self.waiting:
                oldest = next(iter(self.waiting))
                answered_at = self.waiting.pop(oldest)
                self.connect(oldest, at)
                self.person_answered(answered_at, False)
        elif call in self.waiting:  # _GIVE_UP: no agent within the legal delay
            del self.waiting[call]
            self.person_answered(at - ABANDON_DELAY, True)

    def observe(self, now: float) -> PacingInput:
        """Play the events up to ``now``; what a dialer would know then."""
        while self.events and self.events[0][0] <= now:
            at, _, kind, call = heapq.heappop(self.events)
            self.handle(at, kind, call)
        answers = self.answers
        while (
            self.window_start < len(answers) and answers[self.window_start][0] < now - DAY_SECONDS
        ):
            self.window_lost -= int(answers[self.window_start][1])
            self.window_start += 1
        live_window = len(answers) - self.window_start
        finished = len(self.recent)
        return PacingInput(
            mode=self.mode,
            agents_available=self.free_agents,
            agents_busy=self.agents - self.free_agents,
            calls_dialing=len(self.placed_at),
            calls_waiting=len(self.waiting),
            # Too few finished calls yet for a measure: the pacer dials progressively.
            answer_rate=(
                self.recent_answered / finished
                if finished >= MEASURED_CALLS_BEFORE_PREDICTIVE
                else 0.0
            ),
            mean_ring_seconds=self.recent_ring / self.recent_answered
            if self.recent_answered
            else 0.0,
            mean_handle_seconds=self.mean_handle_seconds(now),
            abandon_rate_short=self.window_lost / live_window if live_window else 0.0,
            abandon_rate_long=self.abandoned / len(answers) if answers else 0.0,
            abandon_target=self.abandon_target,
            abandon_limit=self.abandon_limit,
            cap=self.cap,
        )

    def mean_handle_seconds(self, now: float) -> float:
        """The handling time as a dialer should measure it: the time of the calls finished and
        of those still in progress, per call finished (the exponential law's estimate with
        calls in progress; the calls finished first alone are the short ones)."""
        if not self.handled:
            return 0.0
        ongoing = len(self.talking) * now - self.talking_since
        return (self.handled_seconds + ongoing) / self.handled

    def place(self, now: float) -> None:
        self.attempts += 1
        call = self.attempts
        self.placed_at[call] = now
        self.minute(now)[0] += 1
        if self.rng.random() < self.answer_rate:
            self.push(now + self.rng.uniform(*ANSWER_AFTER), _ANSWER, call)
        else:
            self.push(now + self.rng.uniform(MIN_RING, RING_SECONDS), _NO_ANSWER, call)

    def apply(self, decision: Decision, now: float) -> None:
        """Place the calls decided at ``now``, and count the second."""
        for _ in range(decision.calls):
            self.place(now)
        self.max_in_flight = max(self.max_in_flight, len(self.placed_at) + len(self.waiting))
        self.minute(now)[3] += self.agents - self.free_agents

    def run(self, pacer: Pacer) -> SimulationResult:
        """The whole run, ``pacer`` deciding every second."""
        now = 0.0
        while now < self.end:
            self.apply(pacer.decide(self.observe(now), now), now)
            now += 1.0
        return self.result()

    def result(self) -> SimulationResult:
        """The figures so far; calls still ringing or waiting are left out, talk is counted up
        to the end of the run."""
        live = self.answered + self.abandoned
        seconds = 60.0 * self.agents
        return SimulationResult(
            mode=self.mode,
            agents=self.agents,
            hours=self.hours,
            attempts=self.attempts,
            answered=self.answered,
            abandoned=self.abandoned,
            abandon_rate=self.abandoned / live if live else 0.0,
            max_window_abandon_rate=max_window_rate(sorted(self.answers), DAY_SECONDS, self.end),
            occupancy=self.talk / (self.agents * self.end) if self.agents and self.end else 0.0,
            max_in_flight=self.max_in_flight,
            minutes=tuple(
                MinuteFigures(
                    minute=n,
                    attempts=int(row[0]),
                    answered=int(row[1]),
                    abandoned=int(row[2]),
                    occupancy=row[3] / seconds if seconds else 0.0,
                )
                for n, row in enumerate(self.minutes)
            ),
        )
