"""Which calls are recorded: a tenant's rules resolved for one agent, queue and direction.

A rule names a scope (the whole tenant, one queue or one agent), a direction or every
direction, and a mode: ``never``, ``always`` or ``on_demand`` (the agent starts it, from the
phone or the console). For a call the most specific rule wins: the agent's over the queue's
over the tenant's, and within one scope a rule for the call's direction over one for every
direction. No rule at all: ``never``. A queue's rules apply to the calls it hands to agents
(inbound); an agent's apply to every call the agent takes or makes.

A call dialled straight to an agent (a number or a menu routed to the agent or one of its
phones) is inbound: the agent's rule, else the tenant's. A call between two phones of the
tenant is internal: the called agent's rule, else the calling agent's, else the tenant's; the
leg recorded is that of the agent whose rule decides (the called one for the tenant's rule),
so that agent holds the recording and its ``*3``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


class Mode(StrEnum):
    NEVER = "never"
    ALWAYS = "always"
    ON_DEMAND = "on_demand"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class Side(StrEnum):
    """Which phone's leg of an internal call is recorded."""

    CALLER = "caller"
    CALLEE = "callee"


class Rule(NamedTuple):  # a named tuple: it travels in the config snapshot (pickled)
    queue_id: int | None
    user_id: int | None
    direction: Direction | None  # None: every direction
    mode: Mode


def _pick(rules: Iterable[Rule], direction: Direction) -> Mode | None:
    """The mode of the rule for ``direction`` among one scope's rules, else of the rule for
    every direction; None when the scope has neither."""
    every: Mode | None = None
    for rule in rules:
        if rule.direction is direction:
            return rule.mode
        if rule.direction is None:
            every = rule.mode
    return every


@dataclass(frozen=True)
class Policy:
    """One tenant's rules, resolved by scope."""

    rules: tuple[Rule, ...] = ()

    def tenant_mode(self, direction: Direction) -> Mode:
        scope = (r for r in self.rules if r.queue_id is None and r.user_id is None)
        return _pick(scope, direction) or Mode.NEVER

    def queue_mode(self, queue_id: int) -> Mode:
        """What a call of this queue gets from the queue's rules, else the tenant's."""
        scope = (r for r in self.rules if r.queue_id == queue_id)
        return _pick(scope, Direction.INBOUND) or self.tenant_mode(Direction.INBOUND)

    def agent_mode(self, user_id: int, direction: Direction) -> Mode | None:
        """The agent's own rule for ``direction``; None: the agent has none (the queue's or
        the tenant's applies)."""
        return _pick((r for r in self.rules if r.user_id == user_id), direction)

    def mode(self, direction: Direction, *, user_id: int | None, queue_id: int | None) -> Mode:
        """The mode of one call."""
        if user_id is not None:
            own = self.agent_mode(user_id, direction)
            if own is not None:
                return own
        if queue_id is not None and direction is Direction.INBOUND:
            return self.queue_mode(queue_id)
        return self.tenant_mode(direction)

    def direct_mode(self, user_id: int) -> Mode:
        """The mode of an inbound call dialled straight to the agent (no queue)."""
        return self.mode(Direction.INBOUND, user_id=user_id, queue_id=None)

    def internal(self, *, callee: int, caller: int) -> tuple[Mode, Side]:
        """The mode of an internal call from agent ``caller`` to agent ``callee``, and whose
        leg is recorded: the callee's own rule, else the caller's own rule (the caller's leg),
        else the tenant's (the callee's leg)."""
        own = self.agent_mode(callee, Direction.INTERNAL)
        if own is not None:
            return own, Side.CALLEE
        theirs = self.agent_mode(caller, Direction.INTERNAL)
        if theirs is not None:
            return theirs, Side.CALLER
        return self.tenant_mode(Direction.INTERNAL), Side.CALLEE

    def may_record_queue(self, queue_id: int, agents: Iterable[int]) -> bool:
        """Whether a call of this queue may be recorded whoever takes it: its callers are
        told when the tenant announces recordings."""
        if self.queue_mode(queue_id) is not Mode.NEVER:
            return True
        return any(
            self.agent_mode(agent, Direction.INBOUND) not in (None, Mode.NEVER) for agent in agents
        )


@dataclass(frozen=True)
class DialplanPlan:
    """What a tenant's dialplan needs of its policy (graam_pbx/asterisk/render.py).

    Empty (``active`` false) for a tenant without rules: its dialplan has no recording line.
    """

    active: bool
    queue_modes: Mapping[int, Mode]  # queue → the mode its calls get unless the agent has one
    announced_queues: frozenset[int]  # queues whose callers hear the announcement
    agent_inbound: Mapping[int, Mode]  # agent → its own rule for inbound calls
    outbound: Mapping[int, Mode]  # agent → the mode of its outbound calls (never: absent)
    # Calls dialled straight to an agent's phones (dialplans/tenant_dest.conf.j2); the
    # dialplan tells inbound (from anywhere but the tenant's phones) from internal, and
    # resolves internal calls as Policy.internal does.
    direct_inbound: Mapping[int, Mode]  # agent → the mode of inbound calls dialled to it
    internal_own: Mapping[int, Mode]  # agent → its own rule for internal calls
    internal_tenant: Mode  # the tenant's rule for internal calls
    announce_direct: bool  # callers of direct inbound calls that may be recorded are told


def dialplan_plan(
    rules: tuple[Rule, ...], queues: Iterable[int], agents: Iterable[int], announced: bool
) -> DialplanPlan:
    """``announced``: the tenant has an announcement."""
    policy = Policy(rules)
    agents = tuple(agents)
    queues = tuple(queues)
    agent_inbound = {
        agent: mode
        for agent in agents
        if (mode := policy.agent_mode(agent, Direction.INBOUND)) is not None
    }
    outbound = {
        agent: mode
        for agent in agents
        if (mode := policy.mode(Direction.OUTBOUND, user_id=agent, queue_id=None)) is not Mode.NEVER
    }
    direct_inbound = {agent: policy.direct_mode(agent) for agent in agents}
    return DialplanPlan(
        active=bool(rules),
        queue_modes={queue: policy.queue_mode(queue) for queue in queues},
        announced_queues=frozenset(
            queue for queue in queues if announced and policy.may_record_queue(queue, agents)
        ),
        agent_inbound=agent_inbound,
        outbound=outbound,
        direct_inbound=direct_inbound,
        internal_own={
            agent: mode
            for agent in agents
            if (mode := policy.agent_mode(agent, Direction.INTERNAL)) is not None
        },
        internal_tenant=policy.tenant_mode(Direction.INTERNAL),
        announce_direct=announced
        and any(mode is not Mode.NEVER for mode in direct_inbound.values()),
    )
