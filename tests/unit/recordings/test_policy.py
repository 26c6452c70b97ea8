from __future__ import annotations

from graam_pbx.recordings.policy import Direction, Mode, Policy, Rule, dialplan_plan

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
