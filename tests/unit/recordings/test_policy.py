from __future__ import annotations

from graam_pbx.recordings.policy import Direction, Mode, Policy, Rule, Side, dialplan_plan

IN, OUT, INTERNAL = Direction.INBOUND, Direction.OUTBOUND, Direction.INTERNAL


def test_no_rule_records_nothing() -> None:
    assert Policy().mode(IN, user_id=1, queue_id=2) is Mode.NEVER


def test_the_agents_rule_beats_the_queues_which_beats_the_tenants() -> None:
    policy = Policy(
        (
            Rule(None, None, None, Mode.ALWAYS),
            Rule(7, None, None, Mode.NEVER),
            Rule(None, 3, IN, Mode.ON_DEMAND),
        )
    )
    assert policy.mode(IN, user_id=3, queue_id=7) is Mode.ON_DEMAND
    assert policy.mode(IN, user_id=4, queue_id=7) is Mode.NEVER
    assert policy.mode(IN, user_id=4, queue_id=8) is Mode.ALWAYS
    # The agent's rule is for inbound calls only: its outbound calls follow the tenant's.
    assert policy.mode(OUT, user_id=3, queue_id=None) is Mode.ALWAYS


def test_a_rule_for_the_direction_beats_one_for_every_direction_in_the_same_scope() -> None:
    policy = Policy((Rule(None, None, OUT, Mode.NEVER), Rule(None, None, None, Mode.ALWAYS)))
    assert policy.tenant_mode(OUT) is Mode.NEVER
    assert policy.tenant_mode(IN) is Mode.ALWAYS
    assert policy.tenant_mode(INTERNAL) is Mode.ALWAYS


def test_a_queue_rule_applies_to_inbound_calls_only() -> None:
    policy = Policy((Rule(7, None, None, Mode.ALWAYS),))
    assert policy.mode(IN, user_id=None, queue_id=7) is Mode.ALWAYS
    assert policy.mode(OUT, user_id=None, queue_id=7) is Mode.NEVER


def test_a_queue_is_announced_when_its_callers_may_be_recorded_by_anyone() -> None:
    rules = (Rule(None, 3, IN, Mode.ON_DEMAND),)
    plan = dialplan_plan(rules, queues=[7, 8], agents=[3, 4], announced=True)
    assert plan.announced_queues == {7, 8}  # agent 3 may record any queue's call it takes
    assert plan.queue_modes == {7: Mode.NEVER, 8: Mode.NEVER}
    assert plan.agent_inbound == {3: Mode.ON_DEMAND}
    silent = dialplan_plan(rules, queues=[7], agents=[4], announced=True)
    assert silent.announced_queues == frozenset()
    assert dialplan_plan(rules, queues=[7], agents=[3], announced=False).announced_queues == set()


def test_a_tenant_without_rules_has_no_recording_in_its_dialplan() -> None:
    plan = dialplan_plan((), queues=[7], agents=[3], announced=True)
    assert not plan.active
    assert plan.outbound == {}
    assert plan.announced_queues == frozenset()


def test_outbound_modes_name_only_agents_whose_calls_may_be_recorded() -> None:
    rules = (Rule(None, None, OUT, Mode.ALWAYS), Rule(None, 4, OUT, Mode.NEVER))
    assert dialplan_plan(rules, queues=[], agents=[3, 4], announced=False).outbound == {
        3: Mode.ALWAYS
    }


def test_a_call_dialled_to_an_agent_follows_its_inbound_rule_else_the_tenants() -> None:
    policy = Policy(
        (
            Rule(None, None, IN, Mode.ON_DEMAND),
            Rule(7, None, None, Mode.ALWAYS),  # a queue's rule: not for calls dialled direct
            Rule(None, 3, IN, Mode.ALWAYS),
            Rule(None, 4, OUT, Mode.NEVER),
        )
    )
    assert policy.direct_mode(3) is Mode.ALWAYS
    assert policy.direct_mode(4) is Mode.ON_DEMAND
    assert Policy((Rule(7, None, None, Mode.ALWAYS),)).direct_mode(3) is Mode.NEVER


def test_an_internal_call_follows_the_callee_then_the_caller_then_the_tenant() -> None:
    policy = Policy(
        (
            Rule(None, None, INTERNAL, Mode.ON_DEMAND),
            Rule(None, 3, INTERNAL, Mode.NEVER),
            Rule(None, 4, None, Mode.ALWAYS),
            Rule(None, 5, IN, Mode.ALWAYS),  # inbound only: not for internal calls
        )
    )
    # The callee's own rule, on its own leg, even against the caller's.
    assert policy.internal(callee=3, caller=4) == (Mode.NEVER, Side.CALLEE)
    assert policy.internal(callee=4, caller=3) == (Mode.ALWAYS, Side.CALLEE)
    # The callee has none: the caller's, on the caller's leg.
    assert policy.internal(callee=5, caller=4) == (Mode.ALWAYS, Side.CALLER)
    assert policy.internal(callee=6, caller=3) == (Mode.NEVER, Side.CALLER)
    # Neither: the tenant's, on the callee's leg.
    assert policy.internal(callee=5, caller=6) == (Mode.ON_DEMAND, Side.CALLEE)
    assert Policy().internal(callee=1, caller=2) == (Mode.NEVER, Side.CALLEE)


def test_the_plan_of_direct_and_internal_calls() -> None:
    rules = (
        Rule(None, None, IN, Mode.ALWAYS),
        Rule(None, 3, IN, Mode.NEVER),
        Rule(None, 4, INTERNAL, Mode.ON_DEMAND),
        Rule(None, None, INTERNAL, Mode.ALWAYS),
    )
    plan = dialplan_plan(rules, queues=[7], agents=[3, 4], announced=True)
    assert plan.direct_inbound == {3: Mode.NEVER, 4: Mode.ALWAYS}
    assert plan.internal_own == {4: Mode.ON_DEMAND}
    assert plan.internal_tenant is Mode.ALWAYS
    assert plan.announce_direct  # agent 4's callers may be recorded
    assert not dialplan_plan(rules, queues=[], agents=[3], announced=True).announce_direct
    assert not dialplan_plan(rules, queues=[], agents=[4], announced=False).announce_direct


def test_the_plan_resolves_every_internal_call_as_the_policy_does() -> None:
    """The dialplan decides an internal call from the plan alone (the called agent's own rule,
    the calling agent's, the tenant's): the same mode and leg as Policy.internal."""
    agents = (3, 4, 5)
    for rules in (
        (),
        (Rule(None, None, INTERNAL, Mode.ON_DEMAND),),
        (Rule(None, 3, INTERNAL, Mode.NEVER), Rule(None, 4, None, Mode.ALWAYS)),
        (Rule(None, 4, IN, Mode.ALWAYS), Rule(None, None, None, Mode.ALWAYS)),
    ):
        plan = dialplan_plan(rules, queues=[], agents=agents, announced=False)
        policy = Policy(rules)
        for callee in agents:
            for caller in agents:
                if callee in plan.internal_own:
                    dialplan = (plan.internal_own[callee], Side.CALLEE)
                elif caller in plan.internal_own:
                    dialplan = (plan.internal_own[caller], Side.CALLER)
                else:
                    dialplan = (plan.internal_tenant, Side.CALLEE)
                assert dialplan == policy.internal(callee=callee, caller=caller), (rules, callee)
