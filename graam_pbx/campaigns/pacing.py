"""How many calls a campaign places now: preview, progressive or predictive.

Pure and synchronous: the dialer feeds a ``PacingInput`` each tick and places
``Decision.calls`` new calls. Rates and times are floats here (measures, not money).

Predictive dialling, the model:

- the agents expected free when a call placed now is answered are the available ones plus
  each busy agent's chance to finish within the mean ring time (remaining handling time taken
  as exponential, so memoryless: ``1 - exp(-ring / handle)``), less the answered calls already
  waiting for an agent;
- answers among ``n`` calls in flight are binomial (each answered by a person with the
  measured answer rate); the calls that find no agent are abandons. The pacer keeps ``n``
  such that the expected overflow (normal approximation) stays within an abandon budget;
- the budget is a share of the campaign's abandon target that shrinks to nothing as the
  measured abandon rates (short and long periods) approach the target; from the target on,
  the campaign is dialled progressively until the rates fall back under it.

The ratio (calls in flight per agent expected free) and the budget are recomputed at least
every ``recompute_seconds`` and kept between; the fall back to progressive is immediate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PREVIEW = "preview"
PROGRESSIVE = "progressive"
PREDICTIVE = "predictive"

# The share of the abandon target the pacer aims at when no call was abandoned yet: the model
# is approximate (ring ages, handling times that are not exponential), so aim well under it.
TARGET_SHARE = 0.8
# Answer rates below this are noise of the first attempts: dialling at 1/rate would flood.
MIN_ANSWER_RATE = 0.05
# Finished calls a campaign needs before its answer rate is trusted: until then it dials
# progressively (a few first calls measure luck, and over-dialling on them abandons people).
MEASURED_CALLS_BEFORE_PREDICTIVE = 50
# The most calls in flight per agent expected free, whatever the answer rate.
MAX_RATIO = 1.0 / MIN_ANSWER_RATE
# The ratio grows by at most this factor per recomputation: the first measures of a campaign
# (a few dozen calls) are noisy, and a low answer rate measured by chance would flood.
RAMP = 1.5


@dataclass(frozen=True, slots=True)
class PacingInput:
    """What the dialer knows of one campaign at a tick.

    ``answer_rate``: calls answered by a person per call placed (machines excluded);
    ``mean_ring_seconds``: mean time from placing a call to its answer, over answered calls;
    ``mean_handle_seconds``: mean time an agent spends on a campaign call (talk and wrap-up);
    ``abandon_rate_short``/``_long``: the measured rates over the law's two periods (24 h,
    30 days); ``cap``: the most calls dialling or waiting for an agent at once.
    """

    mode: str
    agents_available: int
    agents_busy: int
    calls_dialing: int
    calls_waiting: int
    answer_rate: float
    mean_ring_seconds: float
    mean_handle_seconds: float
    abandon_rate_short: float
    abandon_rate_long: float
    abandon_target: float
    abandon_limit: float
    cap: int


@dataclass(frozen=True, slots=True)
class Decision:
    """``calls`` to place now; ``mode`` the one applied (predictive may fall back to
    progressive); ``ratio`` the calls in flight per agent expected free (0 in preview)."""

    calls: int
    mode: str
    ratio: float


def free_within(busy: int, seconds: float, mean_handle_seconds: float) -> float:
    """Busy agents expected to finish within ``seconds`` (exponential handling time)."""
    if busy <= 0 or seconds <= 0 or mean_handle_seconds <= 0:
        return 0.0
    return busy * -math.expm1(-seconds / mean_handle_seconds)


def overflow_share(calls: int, answer_rate: float, free: float) -> float:
    """Expected answers finding no agent, per expected answer, when ``calls`` are in flight
    for ``free`` agents (binomial answers, normal approximation)."""
    if calls <= 0:
        return 0.0
    mean = calls * answer_rate
    sigma = math.sqrt(calls * answer_rate * (1.0 - answer_rate))
    if sigma <= 0.0:
        return max(0.0, mean - free) / mean
    z = (free - mean) / sigma
    density = math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    tail = 0.5 * math.erfc(z / math.sqrt(2.0))
    return max(0.0, sigma * density - (free - mean) * tail) / mean


def calls_within_budget(free: float, answer_rate: float, budget: float) -> int:
    """The most calls in flight whose expected overflow share stays within ``budget``."""
    if free <= 0.0:
        return 0
    low = 0  # within budget
    high = math.ceil(free / answer_rate) + 1
    if overflow_share(high, answer_rate, free) <= budget:
        return high
    while high - low > 1:  # overflow_share grows with the calls in flight
        middle = (low + high) // 2
        if overflow_share(middle, answer_rate, free) <= budget:
            low = middle
        else:
            high = middle
    return low


class Pacer:
    """The pacing of one campaign; keeps its predictive ratio between recomputations."""

    def __init__(self, recompute_seconds: float = 15.0) -> None:
        self.recompute_seconds = recompute_seconds
        self._computed_at: float | None = None
        self._ratio = 1.0
        self._budget = 0.0
        self._answer_rate = 1.0
        self._fell_back = False

    def decide(self, state: PacingInput, now: float) -> Decision:
        """The calls to place now for ``state`` (``now`` in seconds, any monotonic origin)."""
        if state.mode == PREVIEW:
            return Decision(0, PREVIEW, 0.0)
        room = max(0, state.cap) - max(0, state.calls_dialing) - max(0, state.calls_waiting)
        progressive = min(
            room,
            max(0, state.agents_available)
            - max(0, state.calls_dialing)
            - max(0, state.calls_waiting),
        )
        if state.mode != PREDICTIVE or state.answer_rate <= 0.0:
            return Decision(max(0, progressive), PROGRESSIVE, 1.0)
        limit = min(state.abandon_target, state.abandon_limit)
        worst = max(state.abandon_rate_short, state.abandon_rate_long)
        if worst >= limit:
            # Back under the target, the ratio ramps up again from one call per agent.
            self._fell_back = True
            self._ratio = 1.0
            return Decision(max(0, progressive), PROGRESSIVE, 1.0)
        if (
            self._fell_back
            or self._computed_at is None
            or now - self._computed_at >= self.recompute_seconds
            or now < self._computed_at  # a clock that went back: start over
        ):
            self._recompute(state, limit, worst, now)
        horizon = max(0.0, state.mean_ring_seconds)
        free = (
            max(0, state.agents_available)
            + free_within(state.agents_busy, horizon, state.mean_handle_seconds)
            - max(0, state.calls_waiting)
        )
        in_flight = math.floor(free * self._ratio + 1e-9)
        if overflow_share(in_flight, self._answer_rate, free) > self._budget:
            in_flight = calls_within_budget(free, self._answer_rate, self._budget)
        calls = max(progressive, in_flight - max(0, state.calls_dialing))
        return Decision(max(0, min(calls, room)), PREDICTIVE, self._ratio)

    def _recompute(self, state: PacingInput, limit: float, worst: float, now: float) -> None:
        self._computed_at = now
        self._fell_back = False
        self._answer_rate = min(1.0, max(MIN_ANSWER_RATE, state.answer_rate))
        headroom = max(0.0, 1.0 - worst / limit) if limit > 0 else 0.0
        self._budget = limit * TARGET_SHARE * headroom
        # The ratio for the agents expected free now (one at least): the budget decides how
        # far above one call per free agent the campaign may go.
        free = max(
            1.0,
            state.agents_available
            + free_within(state.agents_busy, state.mean_ring_seconds, state.mean_handle_seconds)
            - state.calls_waiting,
        )
        fits = calls_within_budget(free, self._answer_rate, self._budget)
        self._ratio = min(MAX_RATIO, self._ratio * RAMP, max(1.0, fits / free))
