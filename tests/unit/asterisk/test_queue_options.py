"""A queue's join-empty and leave-when-empty choices reach its section of queues.conf."""

from __future__ import annotations

import pytest

from graam_pbx.asterisk.render import environment, render_all
from graam_pbx.queues.models import JOIN_EMPTY, LEAVE_WHEN_EMPTY
from graam_pbx.queues.schemas import JoinEmpty, LeaveWhenEmpty, QueueCreate, QueueUpdate
from tests.unit.asterisk.sample import sample_snapshot, sample_tenant


def queue_section(join_empty: str, leave_when_empty: str) -> list[str]:
    tenant = sample_tenant()
    (queue,) = tenant.queues
    queue = queue._replace(join_empty=join_empty, leave_when_empty=leave_when_empty)
    snapshot = sample_snapshot()._replace(tenants=(tenant._replace(queues=(queue,)),))
    text = render_all(environment(), snapshot)["tenants/t7/queues.conf"]
    section = text.split(f"[t7-q{queue.id}]\n", 1)[1]
    return section.split("\n[", 1)[0].splitlines()


def test_the_defaults_join_always_and_never_leave() -> None:
    lines = queue_section("yes", "no")
    assert "joinempty = yes" in lines
    assert "leavewhenempty = no" in lines
    body = QueueCreate.model_validate({"name": "q"})
    assert (body.join_empty, body.leave_when_empty) == (JoinEmpty.YES, LeaveWhenEmpty.NO)


@pytest.mark.parametrize(("join", "leave"), [("loose", "strict"), ("strict", "loose")])
def test_each_choice_is_rendered_as_asterisk_spells_it(join: str, leave: str) -> None:
    lines = queue_section(join, leave)
    assert f"joinempty = {join}" in lines
    assert f"leavewhenempty = {leave}" in lines
    assert [line for line in lines if line.startswith(("joinempty", "leavewhenempty"))] == [
        f"joinempty = {join}",
        f"leavewhenempty = {leave}",
    ]


def test_the_choices_are_the_columns_and_anything_else_is_refused() -> None:
    assert tuple(JoinEmpty) == JOIN_EMPTY
    assert tuple(LeaveWhenEmpty) == LEAVE_WHEN_EMPTY
    for body in ({"name": "q", "join_empty": "no"}, {"name": "q", "leave_when_empty": "yes"}):
        with pytest.raises(ValueError, match=r"join_empty|leave_when_empty"):
            QueueCreate.model_validate(body)
    with pytest.raises(ValueError, match="join_empty"):
        QueueUpdate.model_validate({"join_empty": None})
