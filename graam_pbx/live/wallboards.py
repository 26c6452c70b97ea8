"""The live wallboards: each watched tenant's board, kept from the control plane's own state
and pushed to its viewers.

- Waiting callers, for every tenant (what an unwatched tenant costs): AMI's QueueCallerJoin,
  QueueCallerLeave and QueueCallerAbandon, seeded by one ``QueueStatus`` for all tenants at
  start, after every AMI resync and after the bus dropped events of ours.
- Agents' states, for watched tenants: read from ``agent_state_intervals`` when the board is
  built, then again for the agents the timeline moved (its committed moves) and for the
  tenants whose sessions changed (logins, logouts, pauses): one query per batch, never per
  viewer, never a question to Asterisk.
- Today's figures and the agents needed now: the same KPIs and Erlang C as the statistics
  API, refreshed once per tenant when its queue calls are written (at most every
  ``figures_interval``) and every ``REFRESH_INTERVAL`` (a new day, changed settings).
- The tenant's running outbound campaigns: attempts, answered, the abandon rate over 24 hours
  and the calls in progress, from the campaigns' own statistics, read every
  ``CAMPAIGNS_INTERVAL`` (the dialer's calls change them without a queue event).

A change marks its tenant; within ``coalesce`` seconds the board is serialised once and the
same bytes are offered to each viewer, who keeps only the newest (a slow viewer skips boards
instead of queueing them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents import states as agent_states
from graam_pbx.agents.worker import AgentWorker
from graam_pbx.ami import AmiError, AmiSupervisor, EventBus, Message, Subscription, event_time
from graam_pbx.ami import actions as ami_actions
from graam_pbx.ami.bus import RESYNC_EVENT
from graam_pbx.auth.principal import Principal, Role, Scope
from graam_pbx.campaigns import service as campaigns_service
from graam_pbx.campaigns import stats as campaigns_stats
from graam_pbx.campaigns.models import Outcome
from graam_pbx.errors import GraamError, Unavailable
from graam_pbx.live.board import (
    AgentLine,
    Board,
    CampaignLine,
    Figures,
    QueueSetup,
    board_json,
    sse_frame,
)
from graam_pbx.queue_calls.tracker import queue_ids
from graam_pbx.queue_calls.worker import QueueCallWorker
from graam_pbx.queues import service as queues_service
from graam_pbx.rest import every_page
from graam_pbx.stats import service as stats_service
from graam_pbx.stats.kpi import Interval

log = logging.getLogger(__name__)

EVENTS = ("QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon")
SUBSCRIBER = "wallboards"
# Seconds a change waits for the next before its board is sent: none beyond the events the
# bus hands over together (its subscriber takes what is queued in one go), which change the
# board once.
COALESCE = 0.0
HEARTBEAT = 15.0  # seconds between two comments on a quiet stream (proxies keep it open)
HEARTBEAT_FRAME = b": heartbeat\n\n"
FIGURES_INTERVAL = 3.0  # seconds between two refreshes of one tenant's figures, at least
REFRESH_INTERVAL = 60.0  # seconds: figures, queues and agents re-read anyway (a new day)
CAMPAIGNS_INTERVAL = 5.0  # seconds between two reads of a watched tenant's running campaigns
ABANDON_WINDOW = timedelta(hours=24)  # the law's shorter abandon period, shown live
TICK = 1.0  # seconds: levels re-judged (a wait crosses its threshold by itself)
# Seconds a board nobody watches is kept: the page's own stream, or a viewer reconnecting,
# finds it built.
KEEP_UNWATCHED = 10.0
SEED_TIMEOUT = 10.0
RETRY = 2.0
# Staffing for the coming quarter of an hour, from the last hour, for 80 % within the
# queue's service level seconds (the statistics API's defaults).
STAFFING_TARGET = Decimal("0.8")
STAFFING_HISTORY = 4
QUEUES_PAGE = 500


class Viewer:
    """One open stream: the newest board of its tenant not yet sent, and nothing older.

    It waits on nothing but its own event: no timer per stream and per board (the heartbeat
    of quiet streams is one task for all of them, ``Wallboards``' ``_heartbeat_loop``).
    """

    def __init__(self, tenant_id: int) -> None:
        self.tenant_id = tenant_id
        self.latest: bytes | None = None
        self.closed = False
        self.offered = False  # a board offered since the last heartbeat tick
        self._ready = asyncio.Event()

    def offer(self, frame: bytes) -> None:
        self.latest = frame
        self.offered = True
        self._ready.set()

    def beat(self) -> None:
        """A heartbeat comment, unless a board was offered since the last tick."""
        if not self.offered and self.latest is None:
            self.latest = HEARTBEAT_FRAME
            self._ready.set()
        self.offered = False

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    async def next(self) -> bytes | None:
        """The newest board (or a heartbeat) once there is one; None once closed."""
        if self.latest is None and not self.closed:
            await self._ready.wait()
        self._ready.clear()
        if self.closed:
            return None
        frame, self.latest = self.latest, None
        return frame


class _Build:
    """A board being built: the lock its builder holds, and how many build or wait."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class _Watched:
    """A built board and who watches it."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.viewers: set[Viewer] = set()
        self.frame: bytes = b""
        self.levels: tuple[str, ...] = ()
        self.figures_at = 0.0  # monotonic time of the last refresh of its figures
        self.figures_due = False
        self.campaigns_at = 0.0  # monotonic time of the last read of its campaigns


def system_scope(tenant_id: int) -> Scope:
    """The wallboards read a tenant's figures as its supervisors may (each viewer's own role
    and tenant were checked when its stream opened)."""
    return Scope(tenant_id, Principal(0, Role.SUPERVISOR, tenant_id, "wallboard"), None)


class Wallboards:
    """The control plane's live wallboards (``runtime.live``)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        ami: AmiSupervisor | None,
        *,
        agents: AgentWorker | None = None,
        queue_calls: QueueCallWorker | None = None,
        coalesce: float = COALESCE,
        figures_interval: float = FIGURES_INTERVAL,
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self._ami = ami
        self._agents = agents
        self._queue_calls = queue_calls
        self._coalesce = coalesce
        self._figures_interval = figures_interval
        # Every tenant's waiting callers: tenant -> queue -> caller's uniqueid -> entered.
        self.waiting: dict[int, dict[int, dict[str, datetime]]] = {}
        self._watched: dict[int, _Watched] = {}
        self._building: dict[int, _Build] = {}
        self._dirty: set[int] = set()
        self._publish_handle: asyncio.TimerHandle | None = None
        self._agents_pending: dict[int, set[int] | None] = {}  # None: all of the tenant's
        self._agents_wake = asyncio.Event()
        self._figures_wake = asyncio.Event()
        self._seed_wake = asyncio.Event()
        # While a seed's QueueStatus is in flight: each caller that joined (when) or left
        # (None) meanwhile, its last event winning (None: no seed in flight).
        self._seed_seen: dict[tuple[int, int, str], datetime | None] | None = None
        self._subscription: Subscription | None = None
        self._dropped_seen = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.seeds = 0

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._closing = False
        self._subscription = self._bus.subscribe(
            SUBSCRIBER, [*EVENTS, RESYNC_EVENT], self._on_event, maxsize=100_000
        )
        if self._agents is not None:
            self._agents.timeline.listeners.append(self._on_moves)
            self._agents.session_listeners.append(self._on_sessions)
        if self._queue_calls is not None:
            self._queue_calls.listeners.append(self._on_calls)
        self._seed_wake.set()
        self._tasks = [
            asyncio.create_task(self._seed_loop(), name="wallboards-seed"),
            asyncio.create_task(self._agents_loop(), name="wallboards-agents"),
            asyncio.create_task(self._figures_loop(), name="wallboards-figures"),
            asyncio.create_task(self._heartbeat_loop(), name="wallboards-heartbeat"),
        ]

    def close_streams(self) -> None:
        """End every open stream and refuse new ones (the process is stopping)."""
        self._closing = True
        for watched in self._watched.values():
            for viewer in watched.viewers:
                viewer.close()

    async def stop(self) -> None:
        self.close_streams()
        if self._agents is not None:
            with contextlib.suppress(ValueError):
                self._agents.timeline.listeners.remove(self._on_moves)
            with contextlib.suppress(ValueError):
                self._agents.session_listeners.remove(self._on_sessions)
        if self._queue_calls is not None:
            with contextlib.suppress(ValueError):
                self._queue_calls.listeners.remove(self._on_calls)
        if self._subscription is not None:
            await self._bus.unsubscribe(self._subscription)
            self._subscription = None
        if self._publish_handle is not None:
            self._publish_handle.cancel()
            self._publish_handle = None
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        self._tasks = []
        self._watched.clear()

    # ---- viewers --------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            for watched in self._watched.values():
                for viewer in watched.viewers:
                    viewer.beat()

    async def watch(self, tenant_id: int) -> Viewer:
        """A stream of the tenant's board, starting with the board as it is now."""
        if self._closing:
            raise Unavailable("the control plane is stopping")
        watched = await self._board(tenant_id)
        if self._closing:  # began stopping while the board was built
            raise Unavailable("the control plane is stopping")
        viewer = Viewer(tenant_id)
        viewer.offer(watched.frame)
        watched.viewers.add(viewer)
        return viewer

    def leave(self, viewer: Viewer) -> None:
        """A stream ended: shortly after its tenant's last viewer, its board goes away."""
        watched = self._watched.get(viewer.tenant_id)
        if watched is None:
            return
        watched.viewers.discard(viewer)
        if not watched.viewers:
            self._release_later(viewer.tenant_id)

    async def board(self, tenant_id: int) -> dict[str, Any]:
        """The tenant's board now, as data (the page's first render), built if need be."""
        watched = await self._board(tenant_id)
        board = watched.board.snapshot(self.waiting.get(tenant_id, {}), datetime.now(UTC))
        if not watched.viewers:
            self._release_later(tenant_id)
        return board

    def _release_later(self, tenant_id: int) -> None:
        if self._closing:
            self._release(tenant_id)
            return
        asyncio.get_running_loop().call_later(KEEP_UNWATCHED, self._release, tenant_id)

    def _release(self, tenant_id: int) -> None:
        """Forget a board nobody watches (what its tenant's callers cost stays)."""
        watched = self._watched.get(tenant_id)
        if watched is None or watched.viewers:
            return
        del self._watched[tenant_id]
        self._dirty.discard(tenant_id)
        self._agents_pending.pop(tenant_id, None)

    def viewers(self, tenant_id: int) -> int:
        watched = self._watched.get(tenant_id)
        return len(watched.viewers) if watched else 0

    async def _board(self, tenant_id: int) -> _Watched:
        watched = self._watched.get(tenant_id)
        if watched is not None:
            return watched
        # Kept while anyone builds or waits to: one build at a time, even after a failed one,
        # and the moves committed meanwhile are kept for it (``_on_moves``).
        build = self._building.get(tenant_id)
        if build is None:
            build = self._building[tenant_id] = _Build()
        build.users += 1
        try:
            async with build.lock:
                watched = self._watched.get(tenant_id)
                if watched is None:
                    # Boards' numbers keep growing across restarts: milliseconds at the build.
                    board = Board(tenant_id, seq=int(time.time() * 1000))
                    watched = _Watched(board)
                    await self._read_setup(board)
                    await self._read_agents(board, None)
                    await self._read_figures(board)
                    watched.figures_at = watched.campaigns_at = time.monotonic()
                    self._watched[tenant_id] = watched
                    self._serialise(watched)
                    if tenant_id in self._agents_pending:
                        self._agents_wake.set()  # moves committed while it was being read
        finally:
            build.users -= 1
            if not build.users:
                del self._building[tenant_id]
        return watched

    # ---- changes --------------------------------------------------------------------------

    def _mark(self, tenant_id: int) -> None:
        if tenant_id not in self._watched:
            return
        self._dirty.add(tenant_id)
        if self._publish_handle is None:
            self._publish_handle = asyncio.get_running_loop().call_later(
                self._coalesce, self._publish
            )

    def _publish(self) -> None:
        """Each changed board serialised once, the same bytes offered to all its viewers."""
        self._publish_handle = None
        dirty, self._dirty = self._dirty, set()
        for tenant_id in dirty:
            watched = self._watched.get(tenant_id)
            if watched is None:
                continue
            watched.board.seq += 1
            self._serialise(watched)
            for viewer in watched.viewers:
                viewer.offer(watched.frame)

    def _serialise(self, watched: _Watched) -> None:
        board = watched.board
        now = datetime.now(UTC)
        waiting = self.waiting.get(board.tenant_id, {})
        watched.levels = board.levels(waiting, now)
        watched.frame = sse_frame("board", board.seq, board_json(board, waiting, now))

    # ---- waiting callers ------------------------------------------------------------------

    def _on_event(self, message: Message) -> None:
        name = message.event
        if name == RESYNC_EVENT:
            self._seed_wake.set()
            return
        ids = queue_ids(message.get("Queue", ""))
        uniqueid = message.get("Uniqueid", "")
        if ids is None or not uniqueid:
            return
        tenant_id, queue_id = ids
        key = (tenant_id, queue_id, uniqueid)
        if name == "QueueCallerJoin":
            entered = event_time(message, datetime.now(UTC))
            self.waiting.setdefault(tenant_id, {}).setdefault(queue_id, {})[uniqueid] = entered
            if self._seed_seen is not None:
                self._seed_seen[key] = entered
            watched = self._watched.get(tenant_id)
            if watched is not None and queue_id not in watched.board.queues:
                watched.figures_due = True  # a queue the board does not know yet
                self._figures_wake.set()
        else:  # left: answered, gone elsewhere, or gave up
            self._forget(tenant_id, queue_id, uniqueid)
            if self._seed_seen is not None:
                self._seed_seen[key] = None
        self._mark(tenant_id)
        self._watch_drops()

    def _forget(self, tenant_id: int, queue_id: int, uniqueid: str) -> None:
        queues = self.waiting.get(tenant_id)
        if queues is None:
            return
        callers = queues.get(queue_id)
        if callers is None:
            return
        callers.pop(uniqueid, None)
        if not callers:
            del queues[queue_id]
            if not queues:
                del self.waiting[tenant_id]

    def _watch_drops(self) -> None:
        subscription = self._subscription
        if subscription is not None and subscription.dropped != self._dropped_seen:
            self._dropped_seen = subscription.dropped
            self._seed_wake.set()  # a missed leave would keep a caller waiting forever

    async def _seed_loop(self) -> None:
        failing = False
        while True:
            await self._seed_wake.wait()
            self._seed_wake.clear()
            try:
                await self._seed()
            except asyncio.CancelledError:
                raise
            except (AmiError, TimeoutError, OSError) as err:
                if not failing:
                    log.warning("waiting callers not read from Asterisk; retrying: %s", err)
                failing = True
                self._seed_wake.set()
                await asyncio.sleep(RETRY)
                continue
            if failing:
                log.info("waiting callers read from Asterisk again")
            failing = False

    async def _seed(self) -> None:
        """Every queue's waiting callers from one ``QueueStatus``, plus what joined and
        minus what left while it was asked."""
        if self._ami is None:
            return
        seen: dict[tuple[int, int, str], datetime | None] = {}
        self._seed_seen = seen
        try:
            async with asyncio.timeout(SEED_TIMEOUT):
                messages = await ami_actions.queue_status(self._ami)
            received = datetime.now(UTC)
            fresh: dict[int, dict[int, dict[str, datetime]]] = {}
            for message in messages:
                if message.event != "QueueEntry":
                    continue
                ids = queue_ids(message.get("Queue", ""))
                uniqueid = message.get("Uniqueid", "")
                wait = message.get("Wait", "0") or "0"
                if ids is None or not uniqueid or not wait.isdecimal():  # what int() reads
                    continue
                entered = datetime.fromtimestamp(received.timestamp() - int(wait), UTC)
                fresh.setdefault(ids[0], {}).setdefault(ids[1], {})[uniqueid] = entered
            for (tenant_id, queue_id, uniqueid), last in seen.items():
                callers = fresh.setdefault(tenant_id, {}).setdefault(queue_id, {})
                if last is None:
                    callers.pop(uniqueid, None)
                else:
                    callers[uniqueid] = last
            fresh = {
                tenant: {queue: callers for queue, callers in queues.items() if callers}
                for tenant, queues in fresh.items()
            }
            before = set(self.waiting)
            self.waiting = {tenant: queues for tenant, queues in fresh.items() if queues}
        finally:
            self._seed_seen = None
        for tenant_id in before | set(self.waiting):
            self._mark(tenant_id)
        self.seeds += 1

    # ---- agents ---------------------------------------------------------------------------

    def _on_moves(self, moves: Sequence[agent_states.Move], results: Sequence[int]) -> None:
        """The timeline's committed moves. Each agent named is read again, whatever its
        result: a call's end that moved says 0, and so may a move another writer made first."""
        del results
        for move in moves:
            if move.tenant_id not in self._watched and move.tenant_id not in self._building:
                continue
            pending = self._agents_pending.get(move.tenant_id, set())
            if pending is not None:
                pending.add(move.agent_id)
                self._agents_pending[move.tenant_id] = pending
            self._agents_wake.set()

    def agents_moved(self, tenant_id: int, agent_ids: set[int] | None) -> None:
        """Moves another process committed (the active worker's timeline, heard through
        Postgres): the agents named (None: all the tenant's) are read again."""
        if tenant_id not in self._watched and tenant_id not in self._building:
            return
        pending = self._agents_pending.get(tenant_id, set())
        if pending is not None:
            self._agents_pending[tenant_id] = None if agent_ids is None else pending | agent_ids
        self._agents_wake.set()

    def sessions_changed(self, tenant_ids: set[int] | None) -> None:
        """Logins, logouts or pauses another process committed (None: any tenant's)."""
        self._on_sessions(
            set(self._watched) | set(self._building) if tenant_ids is None else tenant_ids
        )

    def calls_written(self, tenant_ids: set[int] | None) -> None:
        """Queue calls another process committed (None: any tenant's)."""
        self._on_calls(set(self._watched) if tenant_ids is None else tenant_ids)

    def read_everything(self) -> None:
        """Anything may have changed unheard (a LISTEN connection was down): every watched
        board's agents and figures are read again."""
        self.sessions_changed(None)
        self.calls_written(None)

    def _on_sessions(self, tenant_ids: set[int]) -> None:
        """Committed logins, logouts and pauses of these tenants."""
        for tenant_id in tenant_ids:
            if tenant_id in self._watched or tenant_id in self._building:
                self._agents_pending[tenant_id] = None
                self._agents_wake.set()

    async def _agents_loop(self) -> None:
        while True:
            await self._agents_wake.wait()
            await asyncio.sleep(self._coalesce)  # the moves committed together, read together
            self._agents_wake.clear()
            pending, self._agents_pending = self._agents_pending, {}
            for tenant_id, agent_ids in pending.items():
                watched = self._watched.get(tenant_id)
                if watched is None:
                    if tenant_id in self._building:  # read again once its board is built
                        self._agents_pending[tenant_id] = None
                    continue
                try:
                    await self._read_agents(watched.board, agent_ids)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("agent states not read for the wallboard tenant=%d", tenant_id)
                    continue
                self._mark(tenant_id)

    async def _read_agents(self, board: Board, agent_ids: set[int] | None) -> None:
        async with self._sessions() as session:
            found = await agent_states.agents_now(session, board.tenant_id, agent_ids)
        lines = {
            agent.agent_id: AgentLine(
                user_id=agent.agent_id,
                name=agent.name,
                state=agent.state,
                since=agent.since,
                pause_reason=agent.pause_reason_code,
                pause_label=agent.pause_reason_label,
            )
            for agent in found
        }
        if agent_ids is None:
            board.agents = lines
        else:
            for agent_id in agent_ids:
                line = lines.get(agent_id)
                if line is None:
                    board.agents.pop(agent_id, None)
                else:
                    board.agents[agent_id] = line

    # ---- figures --------------------------------------------------------------------------

    def _on_calls(self, tenant_ids: set[int]) -> None:
        """Queue calls of these tenants were committed: their figures changed."""
        for tenant_id in tenant_ids:
            watched = self._watched.get(tenant_id)
            if watched is not None:
                watched.figures_due = True
                self._figures_wake.set()

    async def _figures_loop(self) -> None:
        while True:
            await self._figures_tick()

    async def _figures_tick(self) -> None:
        """Wait for queue calls written (or the next tick), then refresh the figures that
        are due and whose last refresh is old enough; re-judge the levels of waiting queues."""
        timeout = TICK
        now = time.monotonic()
        for watched in self._watched.values():
            if watched.figures_due:
                timeout = min(timeout, max(0.05, watched.figures_at + self._figures_interval - now))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._figures_wake.wait()
        self._figures_wake.clear()
        now = time.monotonic()
        for tenant_id, watched in list(self._watched.items()):
            age = now - watched.figures_at
            if (watched.figures_due and age >= self._figures_interval) or age >= REFRESH_INTERVAL:
                watched.figures_due = False
                watched.figures_at = now
                if age >= REFRESH_INTERVAL:
                    # By the agents' task: a read of them all, begun before a move and ended
                    # after its own read, would put the agent back in its old state.
                    self._agents_pending[tenant_id] = None
                    self._agents_wake.set()
                try:
                    await self._read_setup(watched.board)
                    await self._read_figures(watched.board)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("wallboard figures not read tenant=%d", tenant_id)
                    continue
                self._mark(tenant_id)
            if now - watched.campaigns_at >= CAMPAIGNS_INTERVAL:
                watched.campaigns_at = now
                try:
                    changed = await self._read_campaigns(watched.board)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("wallboard campaigns not read tenant=%d", tenant_id)
                    changed = False
                if changed:
                    self._mark(tenant_id)
            waiting = self.waiting.get(tenant_id)
            if waiting and watched.board.levels(waiting, datetime.now(UTC)) != watched.levels:
                self._mark(tenant_id)

    async def _read_setup(self, board: Board) -> None:
        scope = system_scope(board.tenant_id)
        async with self._sessions() as session:
            queues = await every_page(
                lambda after: queues_service.list_queues(
                    session, scope, after_id=after, limit=QUEUES_PAGE
                )
            )
        board.queues = {
            queue.id: QueueSetup(
                id=queue.id,
                name=queue.name,
                waiting_warn=queue.wallboard_waiting_warn,
                waiting_alarm=queue.wallboard_waiting_alarm,
                wait_warn_seconds=queue.wallboard_wait_warn_seconds,
                wait_alarm_seconds=queue.wallboard_wait_alarm_seconds,
            )
            for queue in queues
        }

    async def _read_figures(self, board: Board) -> None:
        """Today's KPIs of every queue (the statistics API's), and Erlang C's agents."""
        scope = system_scope(board.tenant_id)
        now = datetime.now(UTC)
        figures: dict[int, Figures] = {}
        async with self._sessions() as session:
            today = await stats_service.period(session, scope, None, None, Interval.DAY)
            _, totals = await stats_service.queue_stats(session, scope, today, None)
            kpis = {row.queue_id: row.kpis for row in totals}
            for queue_id in board.queues:
                needed: int | None
                try:
                    plan = await stats_service.staffing(
                        session,
                        scope,
                        queue_id,
                        interval=Interval.QUARTER,
                        target_level=STAFFING_TARGET,
                        target_seconds=None,
                        history=STAFFING_HISTORY,
                        calls=None,
                        aht_seconds=None,
                        now=now,
                    )
                    needed = plan.staffing.agents
                except GraamError:
                    needed = None  # calls without an answer yet: no handling time to plan with
                item = kpis.get(queue_id)
                figures[queue_id] = (
                    Figures(agents_needed=needed)
                    if item is None
                    else Figures(
                        offered=item.offered,
                        answered=item.answered,
                        abandoned=item.abandoned,
                        service_level=item.service_level_answered,
                        abandon_rate=item.abandon_rate,
                        asa_seconds=item.average_speed_of_answer,
                        agents_needed=needed,
                    )
                )
        board.figures = figures
        await self._read_campaigns(board)  # the figures of its outbound calls

    # ---- campaigns ------------------------------------------------------------------------

    async def _read_campaigns(self, board: Board) -> bool:
        """The tenant's running campaigns with their figures; whether they changed."""
        now = datetime.now(UTC)
        lines: dict[int, CampaignLine] = {}
        async with self._sessions() as session:
            # Every few seconds per watched tenant: the running campaigns alone, and their
            # attempts only (not a count of their contacts, hundreds of thousands each).
            for campaign in await campaigns_service.running_campaigns(session, board.tenant_id):
                by_outcome = await campaigns_stats.attempts_by_outcome(session, campaign.id)
                abandons = await campaigns_stats.abandon_figures(
                    session, campaign.id, now - ABANDON_WINDOW, now
                )
                lines[campaign.id] = CampaignLine(
                    id=campaign.id,
                    name=campaign.name,
                    mode=campaign.mode,
                    attempts=sum(by_outcome.values()),
                    answered=by_outcome.get(Outcome.ANSWERED.value, 0),
                    abandon_rate_24h=abandons.rate,
                    in_progress=by_outcome.get(campaigns_stats.IN_PROGRESS, 0),
                )
        changed = lines != board.campaigns
        board.campaigns = lines
        return changed
