"""Asterisk's side of the agents' timeline: queue and contact events move agents' states.

Asterisk 22 names the agent in its queue events by the member name the agent worker gives
(``agent-<user id>``) and the tenant by the queue's name (``t<tenant>-q<queue>``):

- ``AgentCalled`` → ``ringing``; ``AgentRingNoAnswer``, ``AgentDump``, or the member's device
  back to not-in-use (``QueueMemberStatus`` ``Status: 1``) while still ringing (the caller
  gave up) → the base state (``paused`` with its reason, else ``available``);
- ``AgentConnect`` → ``on-call``; ``AgentComplete`` → ``wrap-up`` for the queue's
  ``wrapuptime`` (Asterisk says nothing when it ends: a timer here does), else the base state;
- ``ContactStatus`` ``Unreachable`` of a logged-in agent's device → ``unregistered``;
  ``Reachable`` again → the base state.

Events are handled one at a time, in Asterisk's order. Those that queue up while a
transaction runs are handled together in the next one (at most ``BATCH_EVENTS``): a busy call
centre costs a transaction per batch, not per event, and a move costs one statement
(``states``). Should an event of a batch fail, the batch is rolled back and its events are
handled again one transaction each, so that one bad event spoils no other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents import states
from graam_pbx.ami import EventBus, Message, Subscription

log = logging.getLogger(__name__)

_QUEUE_NAME = re.compile(r"^t(\d{1,18})-q(\d{1,18})$")
_MEMBER_NAME = re.compile(r"^agent-(\d{1,18})$")
_AOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
EVENTS = (
    "AgentCalled",
    "AgentConnect",
    "AgentComplete",
    "AgentRingNoAnswer",
    "AgentDump",
    "QueueMemberStatus",
    "ContactStatus",
)
# Asterisk's device state "not in use" in QueueMemberStatus.
NOT_INUSE = "1"
STOP_TIMEOUT = 5.0
BATCH_EVENTS = 200  # events handled in one transaction at most
QUEUED_EVENTS = 10_000  # events waiting for a transaction at most (then dropped, logged)
# Open wrap-ups and the seconds left of the longest wrap-up time of their tenant's queues.
_OPEN_WRAPUPS = text(
    """
    SELECT i.tenant_id, i.agent_id,
           greatest(0, extract(epoch FROM i.started_at
                        + make_interval(secs => coalesce(max(q.wrapup_time), 0))
                        - clock_timestamp()))
    FROM agent_state_intervals i LEFT JOIN queues q ON q.tenant_id = i.tenant_id
    WHERE i.ended_at IS NULL AND i.state = 'wrap-up'
    GROUP BY i.id
    """
)


# Told every committed batch of moves and their results (as ``states.apply`` returns them).
MovesListener = Callable[[Sequence[states.Move], Sequence[int]], None]


class AgentTimeline:
    """Follows Asterisk's events into ``agent_state_intervals``."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: EventBus) -> None:
        self._sessions = sessions
        self._bus = bus
        self._subscription: Subscription | None = None
        self._wrapups: dict[int, asyncio.Task[None]] = {}  # agent → end of its wrap-up
        self._failing = False
        # Agents known not to be ringing. Only AgentCalled here moves an agent into ringing,
        # so one seen out of it (moved on, or found elsewhere) stays out until its next
        # AgentCalled: the device back to not-in-use after every call (QueueMemberStatus) then
        # costs no transaction that would find nothing to do.
        self._not_ringing: set[int] = set()
        self._queued: list[Message] = []
        self._dropping = False
        self._drain_task: asyncio.Task[None] | None = None
        self._batch_session: AsyncSession | None = None  # the drain task's transaction
        self._plan: list[states.Move] | None = None  # its moves, made together at its end
        # Who hears the committed moves (the live wallboards); each must return at once.
        self.listeners: list[MovesListener] = []

    async def start(self) -> None:
        self._subscription = self._bus.subscribe("agent-timeline", EVENTS, self._enqueue)
        try:
            await self._resume_wrapups()
        except Exception:
            log.exception("agent wrap-ups left open by a previous run stay open")

    async def _resume_wrapups(self) -> None:
        """Wrap-ups a previous run left open end when the longest of their tenant's wrap-up
        times since they began is over (at once if it already is)."""
        async with self._sessions() as session:
            rows = await session.execute(_OPEN_WRAPUPS)
        for tenant_id, agent_id, remaining in rows:
            self._start_wrapup_timer(tenant_id, agent_id, float(remaining))

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._bus.unsubscribe(self._subscription)
            self._subscription = None
        if self._drain_task is not None:
            done, _ = await asyncio.wait([self._drain_task], timeout=STOP_TIMEOUT)
            if not done:
                # Stuck on the database: its batch rolls back rather than outlive the engine.
                self._drain_task.cancel()
                await asyncio.wait([self._drain_task])
        tasks = list(self._wrapups.values())
        self._wrapups = {}
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT)

    def _enqueue(self, message: Message) -> None:
        """The bus's handler: queue the event for the drain task."""
        if len(self._queued) >= QUEUED_EVENTS:
            if not self._dropping:
                log.warning("agent states behind: AMI events dropped")
            self._dropping = True
            return
        self._dropping = False
        self._queued.append(message)
        if self._drain_task is None or self._drain_task.done():
            self._drain_task = asyncio.create_task(self._drain(), name="agent-timeline")

    async def _drain(self) -> None:
        """Handle what is queued, ``BATCH_EVENTS`` at a time, each batch in one transaction
        whose moves are made in one statement at its end (should it fail: each of its events
        in a transaction of its own)."""
        while self._queued:
            batch = self._queued[:BATCH_EVENTS]
            del self._queued[:BATCH_EVENTS]
            plan: list[states.Move] = []
            try:
                async with self._sessions() as session, session.begin():
                    self._batch_session, self._plan = session, plan
                    try:
                        for message in batch:
                            await self._follow(message)
                    finally:
                        self._batch_session, self._plan = None, None
                    results = await states.apply(session, plan)
            except Exception:
                # Rolled back: what this run believed of the agents' states may be wrong.
                self._not_ringing.clear()
                for message in batch:
                    await self.on_event(message)
            else:
                self._after(plan, results)
                if self._failing:
                    log.info("agent states from AMI events recovered")
                self._failing = False

    def _in_batch(self) -> bool:
        return self._batch_session is not None and asyncio.current_task() is self._drain_task

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        """The drain task's batch transaction, else a transaction of its own."""
        session = self._batch_session
        if session is not None and self._in_batch():
            yield session
        else:
            async with self._sessions() as own, own.begin():
                yield own

    async def _make(self, *moves: states.Move) -> None:
        """Into the drain task's batch (made at its end), else made now."""
        if self._plan is not None and self._in_batch():
            self._plan.extend(moves)
            return
        async with self._sessions() as session, session.begin():
            results = await states.apply(session, moves)
        self._after(moves, results)

    def _after(self, moves: Sequence[states.Move], results: Sequence[int]) -> None:
        """Once made: a wrap-up entered ends after its seconds, unless its agent already
        moved on in the same moves (its AgentConnect, planned earlier, cancelled no timer)."""
        wrapups: dict[int, tuple[int, int]] = {}  # agent -> (tenant, seconds) still in wrap-up
        for move, result in zip(moves, results, strict=True):
            if move.kind == "complete" and result:
                wrapups[move.agent_id] = (move.tenant_id, result)
            elif result:
                wrapups.pop(move.agent_id, None)  # out of its wrap-up (a move from it)
        for agent_id, (tenant_id, seconds) in wrapups.items():
            self._start_wrapup_timer(tenant_id, agent_id, seconds)
        for listener in self.listeners:
            try:
                listener(moves, results)
            except Exception:
                log.exception("a listener of agent moves failed")

    async def on_event(self, message: Message) -> None:
        try:
            await self._follow(message)
        except Exception:
            if not self._failing:
                log.exception("agent state from an AMI event failed event=%s", message.name)
            self._failing = True
        else:
            if self._failing:
                log.info("agent states from AMI events recovered")
            self._failing = False

    async def _follow(self, message: Message) -> None:
        name = message.name
        if name == "ContactStatus":
            await self._contact(message.get("AOR", ""), message.get("ContactStatus", ""))
            return
        queue = _QUEUE_NAME.match(message.get("Queue", ""))
        member = _MEMBER_NAME.match(message.get("MemberName", ""))
        if queue is None or member is None:
            return
        tenant_id, queue_id, agent_id = int(queue[1]), int(queue[2]), int(member[1])
        if name == "AgentCalled":
            self._not_ringing.discard(agent_id)
            await self._move(
                tenant_id, agent_id, "ringing", only_from=states.BASE_STATES | {"wrap-up"}
            )
        elif name == "AgentConnect":
            self._end_wrapup_timer(agent_id)
            # Never out of logged-out: a logout may have committed since the event was sent.
            await self._move(
                tenant_id,
                agent_id,
                "on-call",
                only_from=states.BASE_STATES | states.CALL_STATES | {"unregistered"},
            )
            self._not_ringing.add(agent_id)  # on a call, or not logged in
        elif name in ("AgentRingNoAnswer", "AgentDump") or (
            name == "QueueMemberStatus" and message.get("Status") == NOT_INUSE
        ):
            if agent_id not in self._not_ringing:
                await self._back_to_base(tenant_id, agent_id, only_from={"ringing"})
                self._not_ringing.add(agent_id)  # back to its base, or was not ringing
        elif name == "AgentComplete":
            await self._complete(tenant_id, queue_id, agent_id)
            self._not_ringing.add(agent_id)

    async def _move(
        self,
        tenant_id: int,
        agent_id: int,
        state: states.State,
        *,
        only_from: frozenset[str] | set[str] | None = None,
    ) -> None:
        """Move a logged-in agent of this tenant; an agent not logged in has no call states."""
        frozen = frozenset(only_from) if only_from is not None else None
        await self._make(states.Move("live", tenant_id, agent_id, state, only_from=frozen))

    async def _back_to_base(
        self, tenant_id: int, agent_id: int, *, only_from: frozenset[str] | set[str]
    ) -> None:
        await self._make(states.Move("base", tenant_id, agent_id, only_from=frozenset(only_from)))

    async def _complete(self, tenant_id: int, queue_id: int, agent_id: int) -> None:
        await self._make(states.Move("complete", tenant_id, agent_id, queue_id=queue_id))

    def _start_wrapup_timer(self, tenant_id: int, agent_id: int, seconds: float) -> None:
        self._end_wrapup_timer(agent_id)
        task = asyncio.create_task(
            self._wrapup_ends(tenant_id, agent_id, seconds), name=f"agent-wrapup-{agent_id}"
        )
        self._wrapups[agent_id] = task

    async def _wrapup_ends(self, tenant_id: int, agent_id: int, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._wrapups.pop(agent_id, None)
        try:
            await self._back_to_base(tenant_id, agent_id, only_from={"wrap-up"})
        except Exception:
            log.exception(
                "ending an agent's wrap-up failed tenant=%d agent=%d", tenant_id, agent_id
            )

    def _end_wrapup_timer(self, agent_id: int) -> None:
        task = self._wrapups.pop(agent_id, None)
        if task is not None:
            task.cancel()

    async def _contact(self, aor: str, status: str) -> None:
        if not _AOR.match(aor) or status not in ("Unreachable", "Reachable"):
            return
        async with self._transaction() as session:
            agents = await states.live_agents_on_device(session, aor)
        if status == "Unreachable":
            away = states.BASE_STATES | states.CALL_STATES
            moves = [states.Move("any", t, a, "unregistered", only_from=away) for t, a in agents]
        else:
            back = frozenset({"unregistered"})
            moves = [states.Move("base", t, a, only_from=back) for t, a in agents]
        await self._make(*moves)
