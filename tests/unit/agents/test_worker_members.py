"""The agent worker's passes against a scripted Asterisk: under a storm a queue is listed
(``QueueStatus``) once while what was listed is fresh, each new member added once, and what
was kept is dropped, and the queue listed again, whenever it may be wrong: a full pass, an
``already there`` answer, a failed action."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from graam_pbx.agents import sessions as agent_sessions
from graam_pbx.agents import worker as worker_module
from graam_pbx.agents.sessions import QueueSeat
from graam_pbx.agents.worker import AgentWorker
from graam_pbx.ami import AmiActionError, EventBus, Message
from graam_pbx.ami.supervisor import AmiSupervisor, OneAsterisk
from graam_pbx.settings import Settings

TENANT = 7
QUEUE = 3
QUEUE_NAME = f"t{TENANT}-q{QUEUE}"


class ScriptedAsterisk:
    """The part of an AMI supervisor the worker uses, over a queue's members in memory."""

    def __init__(self) -> None:
        self.members: dict[str, dict[str, str]] = {}  # location → fields
        self.sent: list[str] = []
        self.fail_next: str | None = None  # an action answered with this error, once

    def client_or_raise(self) -> object:
        return self

    async def action_list(self, action: str, fields: Mapping[str, Any]) -> list[Message]:
        self.sent.append(action)
        return [
            Message(
                [
                    ("Event", "QueueMember"),
                    ("Queue", QUEUE_NAME),
                    ("Location", location),
                    *member.items(),
                ]
            )
            for location, member in self.members.items()
        ]

    async def action(self, action: str, fields: Mapping[str, Any], **_: Any) -> Message:
        self.sent.append(action)
        if self.fail_next is not None:
            message, self.fail_next = self.fail_next, None
            raise AmiActionError(action, message)
        location = str(fields["Interface"])
        if action == "QueueAdd":
            self.members[location] = {
                "Paused": "0",
                "PausedReason": "",
                "Penalty": str(fields.get("Penalty", 0)),
                "Membership": "dynamic",
            }
        elif action == "QueueRemove":
            self.members.pop(location, None)
        return Message([("Response", "Success")])


def seat(user_id: int) -> QueueSeat:
    return QueueSeat(TENANT, QUEUE, user_id, f"u{user_id}", 0, False, None)


@pytest.fixture
def asterisk() -> ScriptedAsterisk:
    return ScriptedAsterisk()


@pytest.fixture
def seats(monkeypatch: pytest.MonkeyPatch) -> list[QueueSeat]:
    """The live sessions' seats the worker reads (a list the test changes)."""
    wanted: list[QueueSeat] = []

    async def seats_and_queues(
        _: object, tenant_ids: Collection[int] | None
    ) -> tuple[list[QueueSeat], list[tuple[int, int]]]:
        return list(wanted), [(TENANT, QUEUE)]

    monkeypatch.setattr(agent_sessions, "seats_and_queues", seats_and_queues)
    return wanted


@pytest.fixture
def worker(asterisk: ScriptedAsterisk) -> AgentWorker:
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    ami: AmiSupervisor = asterisk  # type: ignore[assignment]
    return AgentWorker(engine, ami, EventBus(), Settings(), routes=OneAsterisk(ami))


def listings(asterisk: ScriptedAsterisk) -> int:
    return asterisk.sent.count("QueueStatus")


async def test_a_storm_lists_a_queue_once_while_fresh_and_adds_each_member_once(
    worker: AgentWorker,
    asterisk: ScriptedAsterisk,
    seats: list[QueueSeat],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "MEMBERS_FRESH", 3600.0)
    for user_id in range(1, 6):
        seats.append(seat(user_id))
        await worker.reconcile({TENANT})
    assert listings(asterisk) == 1
    assert asterisk.sent.count("QueueAdd") == 5
    assert set(asterisk.members) == {f"PJSIP/u{n}" for n in range(1, 6)}

    # A logout: the kept members say who to remove.
    seats.pop(0)
    result = await worker.reconcile({TENANT})
    assert result.removed == 1
    assert set(asterisk.members) == {f"PJSIP/u{n}" for n in range(2, 6)}
    assert listings(asterisk) == 1


async def test_stale_members_are_listed_again(
    worker: AgentWorker,
    asterisk: ScriptedAsterisk,
    seats: list[QueueSeat],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "MEMBERS_FRESH", 0.0)
    seats.append(seat(1))
    await worker.reconcile({TENANT})
    # Removed behind the worker's back: the next pass lists the queue and adds it again.
    asterisk.members.clear()
    await worker.reconcile({TENANT})
    assert listings(asterisk) == 2
    assert set(asterisk.members) == {"PJSIP/u1"}


async def test_a_full_pass_lists_again_and_fixes_what_others_changed(
    worker: AgentWorker,
    asterisk: ScriptedAsterisk,
    seats: list[QueueSeat],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "MEMBERS_FRESH", 3600.0)
    seats.append(seat(1))
    await worker.reconcile({TENANT})
    asterisk.members.clear()  # behind the worker's back
    asterisk.members["PJSIP/stranger"] = {"Paused": "0", "Penalty": "0", "Membership": "dynamic"}
    result = await worker.reconcile(None)
    assert listings(asterisk) == 2
    assert (result.added, result.removed) == (1, 1)
    assert set(asterisk.members) == {"PJSIP/u1"}


async def test_an_unexpected_answer_or_a_failure_drops_what_was_kept(
    worker: AgentWorker,
    asterisk: ScriptedAsterisk,
    seats: list[QueueSeat],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "MEMBERS_FRESH", 3600.0)
    await worker.reconcile({TENANT})
    assert listings(asterisk) == 1

    # Asterisk had the member already: not as kept, so the next pass lists again.
    asterisk.members["PJSIP/u1"] = {"Paused": "0", "Penalty": "0", "Membership": "dynamic"}
    seats.append(seat(1))
    asterisk.fail_next = "Unable to add interface: Already there"
    await worker.reconcile({TENANT})
    await worker.reconcile({TENANT})
    assert listings(asterisk) == 2

    # A failed action: everything kept is dropped, the pass fails and the next one lists.
    seats.append(seat(2))
    asterisk.fail_next = "Out of memory"
    with pytest.raises(AmiActionError):
        await worker.reconcile({TENANT})
    await worker.reconcile({TENANT})
    assert listings(asterisk) == 3
    assert set(asterisk.members) == {"PJSIP/u1", "PJSIP/u2"}
