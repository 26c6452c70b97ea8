"""The agent worker: Asterisk's queue members follow the sessions in Postgres.

- After every committed login, logout or pause (announced by tenant through the session
  factory's ``on_agent_change``), after every AMI (re)connect and every
  ``agent_reconcile_interval``, it compares Asterisk's members (``QueueStatus``) with the
  live sessions of those tenants and fixes Asterisk: adds the missing, removes members nobody
  is logged in as, and corrects pauses and penalties. Requests that arrive while a pass runs,
  or within ``MERGE_WINDOW`` of its end, are merged into the next one; while passes come back
  to back, a queue's members listed less than ``MEMBERS_FRESH`` ago (with this worker's own
  changes since) stand for a new listing.
- It ends sessions whose device is gone: a contact removed (unregistered or expired) and no
  other left, a device unreachable for longer than ``agent_unreachable_grace``, a session
  older than ``agent_max_session``.
- It keeps the licence gauges, and reads devices' states for the live view ("on a call").
- Its ``timeline`` follows Asterisk's queue and contact events into the agents' state
  intervals (``timeline.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from graam_pbx.agents import sessions as sessions_service
from graam_pbx.agents.sessions import QueueSeat
from graam_pbx.agents.timeline import AgentTimeline
from graam_pbx.ami import (
    AmiActionError,
    AmiError,
    AmiNotConnected,
    AmiSupervisor,
    EventBus,
    Message,
    Subscription,
)
from graam_pbx.ami import actions as ami_actions
from graam_pbx.ami.bus import RESYNC_EVENT
from graam_pbx.ami.supervisor import AmiRoutes, OneAsterisk
from graam_pbx.db import session_factory
from graam_pbx.errors import Unavailable
from graam_pbx.metrics import LICENCES_IN_USE, LICENCES_TOTAL, QUEUE_MEMBER_FIXES
from graam_pbx.settings import Settings

log = logging.getLogger(__name__)

# The queue names of queues_tenant.conf.j2.
_QUEUE_NAME = re.compile(r"^t(\d+)-q(\d+)$")
# Device names we ever put in a dialplan function: our SIP usernames' alphabet only.
_AOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# A phone moving to another address re-registers: its old contact is removed around the time
# the new one is made. Look for a remaining contact only once that has settled.
CONTACT_SETTLE = 1.0
ACTIONS_IN_FLIGHT = 32
# A pass requested within this many seconds of the previous one's end waits out the rest of
# it, gathering the requests that arrive meanwhile (a storm of logins: one pass for many,
# instead of one each). A request after a quiet spell is served at once; under a storm, a
# login's member waits at most this long, plus the pass.
MERGE_WINDOW = 0.1
# A queue's members as Asterisk last listed them (``QueueStatus``), with what this worker has
# done to them since, stand for a new listing for this many seconds: under a storm, a tenant's
# queues are listed about once a second instead of once a pass. A change made in Asterisk by
# anyone else is seen at the first pass after that (as before, at the next pass); a
# reconnect, a queue reload, a full pass or any failed action drops what was kept.
MEMBERS_FRESH = 1.0
# What a pass compares of a member.
_MEMBER_FIELDS = ("Paused", "PausedReason", "Penalty", "Membership")
DEVICE_STATE_TIMEOUT = 2.0
STOP_TIMEOUT = 10.0


def queue_name(tenant_id: int, queue_id: int) -> str:
    return f"t{tenant_id}-q{queue_id}"


def interface(sip_username: str) -> str:
    return f"PJSIP/{sip_username}"


def member_name(user_id: int) -> str:
    # Stable and free of display text: queue_log names agents by it (log_membername_as_agent).
    return f"agent-{user_id}"


@dataclass
class ReconcileResult:
    tenants: int | None = None  # None: all
    wanted: int = 0
    added: int = 0
    removed: int = 0
    updated: int = 0
    missing_queues: set[str] = field(default_factory=set)

    @property
    def fixes(self) -> int:
        return self.added + self.removed + self.updated


class AgentWorker:
    """Makes Asterisk's queue members match the agent sessions, and ends sessions by itself."""

    def __init__(
        self,
        engine: AsyncEngine,
        ami: AmiSupervisor,
        bus: EventBus,
        settings: Settings,
        *,
        routes: AmiRoutes | None = None,
    ) -> None:
        self._ami = ami
        self._engine = engine
        # Each tenant's members live on its own Asterisk (its node): reconciled there.
        self._routes: AmiRoutes = routes or OneAsterisk(ami)
        self._bus = bus
        # Its own commits (sessions it ends) announce their tenants to itself.
        self._sessions = session_factory(engine, on_agent_change=self.request)
        # Ringing, on call, wrap-up and unreachable phones, into the agents' timeline.
        self.timeline = AgentTimeline(self._sessions, bus)
        self._grace = settings.agent_unreachable_grace
        self._max_session = timedelta(seconds=settings.agent_max_session)
        self._sweep_interval = settings.agent_sweep_interval
        self._reconcile_interval = settings.agent_reconcile_interval
        self._pending: set[int] = set()
        self._full = False
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._last_full = 0.0
        self._last_pass = -MERGE_WINDOW  # when the last pass ended (monotonic)
        self._unreachable: dict[str, float] = {}  # AOR → when it became unreachable
        # (Asterisk, queue) → (when listed, location → the member's _MEMBER_FIELDS).
        self._members: dict[tuple[int, str], tuple[float, dict[str, dict[str, str]]]] = {}
        self._waiting_for_queues: set[int] = set()  # tenants whose queue Asterisk lacked
        self._subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._checks: set[asyncio.Task[None]] = set()
        self.passes = 0
        # Who hears the tenants of committed logins, logouts and pauses (the live wallboards,
        # beside the timeline's own ``listeners``); each must return at once.
        self.session_listeners: list[Callable[[set[int]], None]] = []

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._subscription = self._bus.subscribe(
            "agent-worker",
            [RESYNC_EVENT, "ContactStatus", "Reload"],
            self._on_event,
        )
        await self.timeline.start()
        self.request(None)
        self._tasks = [
            asyncio.create_task(self._apply_loop(), name="agent-worker-apply"),
            asyncio.create_task(self._sweep_loop(), name="agent-worker-sweep"),
        ]

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._bus.unsubscribe(self._subscription)
            self._subscription = None
        await self.timeline.stop()
        if self._tasks and not self._idle.is_set() and self._ami.state.connected:
            # What was committed before stopping reaches Asterisk if it can.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_TIMEOUT):
                    await self.settled()
        tasks = [*self._tasks, *self._checks]
        self._tasks = []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    # ---- requests -----------------------------------------------------------------------

    def request(self, tenant_ids: Iterable[int] | None) -> None:
        """Reconcile these tenants (None: all) soon. Never blocks."""
        if tenant_ids is None:
            self._full = True
        else:
            tenants = set(tenant_ids)
            self._pending |= tenants
            for listener in self.session_listeners:
                try:
                    listener(tenants)
                except Exception:
                    log.exception("a listener of agent sessions failed")
        self._idle.clear()
        self._wake.set()

    async def settled(self) -> None:
        """Wait until every request made so far has reached Asterisk."""
        await self._idle.wait()

    async def device_states(
        self, sip_usernames: Iterable[str], *, tenant_id: int | None = None
    ) -> dict[str, str]:
        """Asterisk's state of each device now (``NOT_INUSE``, ``INUSE``, ``UNAVAILABLE``…),
        read on ``tenant_id``'s node (its calls are there; None: this process's Asterisk).

        Asked when needed: the shipped manager.conf disables DeviceStateChange events (every
        call makes many). A device whose state cannot be read is left out: every device of a
        tenant whose node is down or unreachable from here.
        """
        try:
            ami = self._ami if tenant_id is None else await self._routes.for_tenant(tenant_id)
        except Unavailable:
            return {}
        names = [name for name in set(sip_usernames) if _AOR.match(name)]
        limit = asyncio.Semaphore(ACTIONS_IN_FLIGHT)

        async def one(name: str) -> tuple[str, str | None]:
            async with limit:
                try:
                    answer = await ami.action(
                        "Getvar",
                        {"Variable": f"DEVICE_STATE({interface(name)})"},
                        timeout=DEVICE_STATE_TIMEOUT,
                    )
                except AmiError:
                    return name, None
                return name, answer.get("Value") or None

        return {name: state for name, state in await asyncio.gather(*map(one, names)) if state}

    # ---- events -------------------------------------------------------------------------

    async def _on_event(self, message: Message) -> None:
        name = message.name
        if name == RESYNC_EVENT:
            self._members.clear()
            self.request(None)
        elif name == "ContactStatus":
            self._on_contact_status(message)
        elif name == "Reload" and "queue" in message.get("Module", "").lower():
            self._on_queues_reloaded()

    def _on_queues_reloaded(self) -> None:
        self._members.clear()
        # Queues Asterisk did not have at the last pass may exist now.
        if self._waiting_for_queues:
            self.request(self._waiting_for_queues)
            self._waiting_for_queues = set()

    def _on_contact_status(self, message: Message) -> None:
        aor = message.get("AOR", "")
        status = message.get("ContactStatus", "")
        if not _AOR.match(aor):
            return
        if status == "Unreachable":
            self._unreachable.setdefault(aor, time.monotonic())
        elif status == "Removed":
            self._unreachable.pop(aor, None)
            task = asyncio.create_task(self._check_removed(aor), name=f"agent-contact-{aor}")
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)
        elif status in ("Reachable", "Created", "Updated", "NonQualified"):
            self._unreachable.pop(aor, None)

    async def _check_removed(self, aor: str) -> None:
        await asyncio.sleep(CONTACT_SETTLE)
        try:
            contacts = await self._ami.action("Getvar", {"Variable": f"PJSIP_AOR({aor},contact)"})
        except AmiError as err:
            log.warning("agent device contacts unknown aor=%s error=%s", aor, err)
            return
        if contacts.get("Value", "").strip():
            return  # another contact of the device is still registered
        await self._end_device(aor, "unregistered")

    async def _end_device(self, aor: str, reason: sessions_service.EndReason) -> None:
        try:
            async with self._sessions() as session, session.begin():
                ended = await sessions_service.end_device_sessions(session, aor, reason)
        except Exception:
            log.exception("ending the sessions of a gone device failed aor=%s", aor)
            return
        for gone in ended:
            log.info(
                "agent session ended tenant=%s agent=%s session=%s reason=%s",
                gone.tenant_id,
                gone.user_id,
                gone.id,
                reason,
            )

    # ---- reconciling queue members ------------------------------------------------------

    async def _apply_loop(self) -> None:
        failing = False
        while True:
            await self._wake.wait()
            quiet = time.monotonic() - self._last_pass
            if quiet < MERGE_WINDOW:
                await asyncio.sleep(MERGE_WINDOW - quiet)
            self._wake.clear()
            full, tenants = self._full, self._pending
            self._full, self._pending = False, set()
            try:
                await self.reconcile(None if full else tenants)
            except AmiNotConnected:
                # Kept for later: the resync after the next connection wakes this loop.
                self._full = self._full or full
                self._pending |= tenants
                continue
            except Exception:
                if not failing:
                    log.exception("queue member reconciliation failed; retrying")
                failing = True
                self._full = self._full or full
                self._pending |= tenants
                await asyncio.sleep(1.0)
                self._wake.set()
                continue
            else:
                if failing:
                    log.info("queue member reconciliation recovered")
                    failing = False
            finally:
                self._last_pass = time.monotonic()
            if not self._wake.is_set():
                self._idle.set()

    async def reconcile(self, tenant_ids: set[int] | None) -> ReconcileResult:
        """Make Asterisk's members of these tenants' queues (None: all) match the sessions."""
        result = ReconcileResult(tenants=None if tenant_ids is None else len(tenant_ids))
        if tenant_ids is not None and not tenant_ids:
            return result
        parts = await self._routes.partition(tenant_ids)
        for ami, _ in parts:
            ami.client_or_raise()
        try:
            for ami, tenants in parts:
                await self._reconcile_on(ami, tenants, full=tenant_ids is None, result=result)
        except BaseException:
            # An action half done (a time-out, a lost connection): list everything again.
            self._members.clear()
            raise
        if tenant_ids is None:
            self._last_full = time.monotonic()
        if result.missing_queues:
            self._waiting_for_queues |= {
                int(m.group(1)) for q in result.missing_queues if (m := _QUEUE_NAME.match(q))
            }
        self.passes += 1
        level = logging.INFO if tenant_ids is None and result.fixes else logging.DEBUG
        log.log(
            level,
            "queue members reconciled tenants=%s wanted=%d added=%d removed=%d updated=%d",
            "all" if tenant_ids is None else len(tenant_ids),
            result.wanted,
            result.added,
            result.removed,
            result.updated,
        )
        return result

    async def _reconcile_on(
        self,
        ami: AmiSupervisor,
        tenant_ids: set[int] | None,
        *,
        full: bool,
        result: ReconcileResult,
    ) -> None:
        """One Asterisk's part: its tenants' seats (None: every tenant's) against its
        members. A full pass lists every queue of that Asterisk, so that members of tenants
        living elsewhere (moved away, deleted) are removed from it."""
        if tenant_ids is not None and not tenant_ids and not full:
            return
        seats, queues = await sessions_service.seats_and_queues(self._engine, tenant_ids)
        actual = await self._asterisk_members(ami, [queue_name(t, q) for t, q in queues], full=full)
        wanted = {
            (queue_name(s.tenant_id, s.queue_id), interface(s.sip_username)): s for s in seats
        }
        result.wanted += len(wanted)
        limit = asyncio.Semaphore(ACTIONS_IN_FLIGHT)

        async def bounded(action: Awaitable[None]) -> None:
            async with limit:
                await action

        work: list[Awaitable[None]] = []
        for key, seat in wanted.items():
            member = actual.get(key)
            if member is None:
                work.append(bounded(self._add(ami, key[0], seat, result)))
            else:
                work.append(bounded(self._correct(ami, key[0], seat, member, result)))
        for (queue, location), member in actual.items():
            if (queue, location) not in wanted and member.get("Membership") == "dynamic":
                work.append(bounded(self._remove(ami, queue, location, result)))
        await asyncio.gather(*work)

    async def _asterisk_members(
        self, ami: AmiSupervisor, queues: list[str], *, full: bool
    ) -> dict[tuple[str, str], dict[str, str]]:
        """The members of these queues (``full``: of every queue of this Asterisk, ours or
        not): as listed within MEMBERS_FRESH seconds where kept, else listed now."""
        now = time.monotonic()
        node = id(ami)
        if full:
            # Every queue of this Asterisk, whatever the database says: and kept anew.
            listed = self._by_queue(await ami_actions.queue_status(ami))
            self._members = {key: kept for key, kept in self._members.items() if key[0] != node}
            for queue in queues:
                self._members[(node, queue)] = (now, listed.get(queue, {}))
        else:
            stale = [
                queue
                for queue in queues
                if now - self._members.get((node, queue), (-MEMBERS_FRESH, {}))[0] >= MEMBERS_FRESH
            ]
            limit = asyncio.Semaphore(ACTIONS_IN_FLIGHT)

            async def one(queue: str) -> list[Message]:
                async with limit:
                    return await ami_actions.queue_status(ami, queue)

            batches = await asyncio.gather(*map(one, stale))
            listed = self._by_queue([event for batch in batches for event in batch])
            for queue in stale:
                self._members[(node, queue)] = (now, listed.get(queue, {}))
            listed = {queue: self._members[(node, queue)][1] for queue in queues}
        return {
            (queue, location): member
            for queue, members in listed.items()
            for location, member in members.items()
        }

    @staticmethod
    def _by_queue(events: Iterable[Message]) -> dict[str, dict[str, dict[str, str]]]:
        """QueueStatus's members of our queues: queue → location → the fields compared."""
        listed: dict[str, dict[str, dict[str, str]]] = {}
        for event in events:
            queue = event.get("Queue", "")
            if event.name != "QueueMember" or not _QUEUE_NAME.match(queue):
                continue
            location = event.get("Location") or event.get("Interface") or ""
            listed.setdefault(queue, {})[location] = {
                name: event.get(name, "") for name in _MEMBER_FIELDS
            }
        return listed

    def _kept(self, ami: AmiSupervisor, queue: str) -> dict[str, dict[str, str]] | None:
        """The members kept of ``queue`` on ``ami``, to note what an action did to them."""
        found = self._members.get((id(ami), queue))
        return None if found is None else found[1]

    async def _add(
        self, ami: AmiSupervisor, queue: str, seat: QueueSeat, result: ReconcileResult
    ) -> None:
        try:
            await ami_actions.queue_add(
                ami,
                queue,
                interface(seat.sip_username),
                penalty=seat.penalty,
                member_name=member_name(seat.user_id),
                state_interface=interface(seat.sip_username),
                paused=seat.paused,
                reason=seat.pause_reason if seat.paused else None,
            )
        except AmiActionError as err:
            if "already there" in err.message.lower():
                # Not as listed: listed again at the next pass.
                self._members.pop((id(ami), queue), None)
                return
            if "no such queue" in err.message.lower():
                result.missing_queues.add(queue)
                return
            raise
        kept = self._kept(ami, queue)
        if kept is not None:
            kept[interface(seat.sip_username)] = {
                "Paused": "1" if seat.paused else "0",
                "PausedReason": (seat.pause_reason or "") if seat.paused else "",
                "Penalty": str(seat.penalty),
                "Membership": "dynamic",
            }
        result.added += 1
        QUEUE_MEMBER_FIXES.labels(action="add").inc()

    async def _remove(
        self, ami: AmiSupervisor, queue: str, location: str, result: ReconcileResult
    ) -> None:
        kept = self._kept(ami, queue)
        try:
            await ami_actions.queue_remove(ami, queue, location)
        except AmiActionError as err:
            if "not there" in err.message.lower() or "no such queue" in err.message.lower():
                if kept is not None:
                    kept.pop(location, None)
                return
            raise
        if kept is not None:
            kept.pop(location, None)
        result.removed += 1
        QUEUE_MEMBER_FIXES.labels(action="remove").inc()

    async def _correct(
        self,
        ami: AmiSupervisor,
        queue: str,
        seat: QueueSeat,
        member: Mapping[str, str],
        result: ReconcileResult,
    ) -> None:
        location = interface(seat.sip_username)
        reason = (seat.pause_reason or "") if seat.paused else ""
        paused_now = member.get("Paused") == "1"
        kept = (self._kept(ami, queue) or {}).get(location)
        if paused_now != seat.paused or (seat.paused and member.get("PausedReason", "") != reason):
            await ami_actions.queue_pause(ami, queue, location, seat.paused, reason or None)
            if kept is not None:
                kept.update(Paused="1" if seat.paused else "0", PausedReason=reason)
            result.updated += 1
            QUEUE_MEMBER_FIXES.labels(action="pause").inc()
        if member.get("Penalty") != str(seat.penalty):
            await ami.action(
                "QueuePenalty", {"Queue": queue, "Interface": location, "Penalty": seat.penalty}
            )
            if kept is not None:
                kept["Penalty"] = str(seat.penalty)
            result.updated += 1
            QUEUE_MEMBER_FIXES.labels(action="penalty").inc()

    # ---- the sweep: session limits, gauges, the periodic full pass ----------------------

    async def _sweep_loop(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                await self.sweep()
            except Exception:
                if not failing:
                    log.exception("agent session sweep failed; retrying")
                failing = True
                continue
            if failing:
                log.info("agent session sweep recovered")
                failing = False

    async def sweep(self) -> None:
        """End sessions past their limits, refresh the gauges, and reconcile all if due."""
        now = time.monotonic()
        gone = [aor for aor, since in self._unreachable.items() if now - since >= self._grace]
        for aor in gone:
            self._unreachable.pop(aor, None)
            await self._end_device(aor, "unreachable")
        async with self._sessions() as session, session.begin():
            ended = [
                *await sessions_service.end_sessions_older_than(session, self._max_session),
                *await sessions_service.end_sessions_without_device(session),
            ]
        for session_row in ended:
            log.info(
                "agent session ended tenant=%s agent=%s session=%s reason=%s",
                session_row.tenant_id,
                session_row.user_id,
                session_row.id,
                session_row.end_reason,
            )
        await self.refresh_gauges()
        if time.monotonic() - self._last_full >= self._reconcile_interval:
            self.request(None)

    async def refresh_gauges(self) -> None:
        async with self._sessions() as session, session.begin():
            usage = await sessions_service.licence_usage(session)
        LICENCES_TOTAL.clear()
        LICENCES_IN_USE.clear()
        for tenant_id, licences, in_use in usage:
            LICENCES_TOTAL.labels(tenant=str(tenant_id)).set(licences)
            LICENCES_IN_USE.labels(tenant=str(tenant_id)).set(in_use)
