"""The campaign dialer: leases running campaigns, paces and places their calls, follows them
to their outcome and reconciles what a restart or an AMI reconnection may have lost.

Each tick (``dialer_interval``): take or renew the Postgres lease of every running campaign
(only the lease holder dials a campaign), reconcile open attempts when needed, then per
campaign: its agents (AMI ``QueueStatus``), its measures, the pacer's decision, the attempts
written and committed, and only then one ``Originate`` per attempt, never repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami import AmiError, AmiSupervisor, EventBus, Message, Subscription
from graam_pbx.ami import actions as ami_actions
from graam_pbx.ami.bus import RESYNC_EVENT
from graam_pbx.ami.supervisor import AmiRoutes, OneAsterisk
from graam_pbx.campaigns import measures, outcomes, placing, stats
from graam_pbx.campaigns.models import (
    Campaign,
    CampaignAttempt,
    CampaignMode,
    CampaignStatus,
    Outcome,
)
from graam_pbx.campaigns.pacing import Pacer
from graam_pbx.errors import GraamError, Unavailable
from graam_pbx.metrics import DIALER_CALLS_IN_PROGRESS, DIALER_DECISION_SECONDS
from graam_pbx.settings import Settings

log = logging.getLogger(__name__)

# An attempt younger than this is not reconciled: its channel may not exist yet.
RECONCILE_GRACE_SECONDS = 5.0
# An open attempt is lost only when its channel is missing from two looks this far apart: its
# last events may still be on their way when the first look finds it gone.
RECONCILE_CONFIRM_SECONDS = 3.0
# Besides at start and after every AMI reconnection, open attempts are checked this often.
RECONCILE_INTERVAL_SECONDS = 30.0
# After an OriginateResponse failure, the dial event (which says why) is awaited this long.
ORIGINATE_FAILURE_GRACE_SECONDS = 3.0
# The 30-day abandon rate is counted again this often, not at every tick: over a large
# campaign it scans a month of attempts, and a minute's calls barely move it (the 24-h rate,
# counted at every tick, sees a sudden rise first).
LONG_ABANDON_SECONDS = 60.0
AMI_TIMEOUT = 5.0
STOP_TIMEOUT = 10.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DialerUnavailable(Unavailable):
    """The dialer cannot place a call now (no AMI connection, or not running)."""

    error_id = "dialer-unavailable"


class DialerWorker:
    """Places and follows campaign calls; one per control plane, coordinated by leases."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ami: AmiSupervisor,
        bus: EventBus,
        settings: Settings,
        *,
        routes: AmiRoutes | None = None,
    ) -> None:
        self._sessions = sessions
        self._ami = ami
        # A campaign's calls leave from its tenant's node (its queue and agents are there).
        self._routes: AmiRoutes = routes or OneAsterisk(ami)
        self._bus = bus
        self.node = settings.dialer_node or socket.gethostname()
        self._interval = settings.dialer_interval
        self._lease_seconds = settings.dialer_lease_seconds
        self._calls_per_licence = settings.dialer_calls_per_licence
        self._pacers: dict[int, Pacer] = {}
        self._long_abandon: dict[int, tuple[float, stats.AbandonFigures]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None
        self._reconcile_due = True
        self._last_reconcile = 0.0
        self._missing_since: dict[int, float] = {}  # attempt id → when its channel was missed
        self._failed_originates: dict[str, float] = {}  # channel id → when to end it
        self._tenants_seen: set[int] = set()
        self._failing = False
        self._stopping = False
        self._failing_campaigns: set[int] = set()
        self.ticks = 0
        # The instant the law of calling judges each call at: now. Tests that must run at any
        # hour (the law forbids evenings, weekends and holidays) set a legal instant here.
        self.law_clock: Callable[[], datetime] = _utc_now

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._subscription = self._bus.subscribe(
            "campaign-dialer",
            [RESYNC_EVENT, "UserEvent", "AgentConnect", "OriginateResponse"],
            self._on_event,
        )
        self._reconcile_due = True
        self._missing_since.clear()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="campaign-dialer")

    async def stop(self) -> None:
        """Stop placing calls once the current tick has sent what it committed; calls in
        progress go on in Asterisk and are reconciled at the next start (the lease stays this
        node's until it expires)."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wake.set()
            _, pending = await asyncio.wait([task], timeout=STOP_TIMEOUT)
            if pending:
                task.cancel()
                await asyncio.wait([task])
        if self._subscription is not None:
            await self._bus.unsubscribe(self._subscription)
            self._subscription = None
        self._pacers.clear()
        self._long_abandon.clear()

    def request(self) -> None:
        """Decide now rather than at the next tick. Never blocks."""
        self._wake.set()

    # ---- the loop -----------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.tick()
            except Exception:
                if not self._failing:
                    log.exception("campaign dialer tick failed node=%s", self.node)
                self._failing = True
            else:
                if self._failing:
                    log.info("campaign dialer recovered node=%s", self.node)
                self._failing = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()

    async def tick(self) -> None:
        """One pass: leases, reconciliation, then each leased campaign's calls."""
        self.ticks += 1
        leased = await self._take_leases()
        connected = self._ami.state.connected
        if connected and (
            self._reconcile_due
            or time.monotonic() - self._last_reconcile >= RECONCILE_INTERVAL_SECONDS
        ):
            await self._reconcile()
        await self._end_failed_originates()
        if connected:
            async with self._sessions() as session:
                plans = await placing.load_plans(session, leased)
            for plan in plans:
                if plan.mode == CampaignMode.PREVIEW.value:
                    continue
                started = time.perf_counter()
                try:
                    await self._dial(plan)
                except Exception:
                    # One campaign's failure does not hold the others; said once, not per tick.
                    if plan.id not in self._failing_campaigns:
                        log.exception("campaign dialling failed campaign=%d", plan.id)
                    self._failing_campaigns.add(plan.id)
                else:
                    if plan.id in self._failing_campaigns:
                        log.info("campaign dialling recovered campaign=%d", plan.id)
                    self._failing_campaigns.discard(plan.id)
                finally:
                    DIALER_DECISION_SECONDS.observe(time.perf_counter() - started)
        async with self._sessions() as session, session.begin():
            await outcomes.finish_campaigns(session, leased, datetime.now(UTC))
        for gone in set(self._pacers) - set(leased):
            del self._pacers[gone]
        for gone in set(self._long_abandon) - set(leased):
            del self._long_abandon[gone]
        await self._update_gauges()

    async def _take_leases(self) -> list[int]:
        """Take the running campaigns that are free or whose lease expired, renew this node's
        once half their lease has run (not at every tick: fewer writes), and return the
        running campaigns this node holds."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                text(
                    "UPDATE campaigns SET lease_owner = :me, "
                    "lease_until = now() + make_interval(secs => :lease) "
                    "WHERE status = 'running' AND ("
                    "(lease_owner = :me AND (lease_until IS NULL "
                    "OR lease_until < now() + make_interval(secs => :lease / 2))) "
                    "OR (lease_owner IS DISTINCT FROM :me "
                    "AND (lease_until IS NULL OR lease_until < now())))"
                ),
                {"me": self.node, "lease": self._lease_seconds},
            )
            rows = await session.scalars(
                select(Campaign.id)
                .where(
                    Campaign.status == CampaignStatus.RUNNING.value,
                    Campaign.lease_owner == self.node,
                    Campaign.lease_until >= func.now(),
                )
                .order_by(Campaign.id)
            )
            return [int(i) for i in rows]

    async def _dial(self, plan: placing.CampaignPlan) -> None:
        try:
            ami = await self._routes.for_tenant(plan.tenant_id)
            events = await ami_actions.queue_status(ami, plan.queue_name)
        except AmiError as err:
            log.warning("campaign queue status unknown campaign=%d error=%s", plan.id, err)
            return
        agents = measures.agents_from_queue_status(
            events, plan.queue_name, wrapup_seconds=plan.wrapup_seconds
        )
        now = datetime.now(UTC)
        async with self._sessions() as session:
            mono = time.monotonic()
            cached = self._long_abandon.get(plan.id)
            if cached is None or mono - cached[0] >= LONG_ABANDON_SECONDS:
                long_figures = await measures.long_abandon_figures(session, plan.id, now)
                self._long_abandon[plan.id] = (mono, long_figures)
            else:
                long_figures = cached[1]
            state = await measures.pacing_input(
                session, plan, agents, self._calls_per_licence, now, abandon_long=long_figures
            )
        pacer = self._pacers.setdefault(plan.id, Pacer())
        decision = pacer.decide(state, time.monotonic())
        if decision.calls <= 0:
            return
        async with self._sessions() as session, session.begin():
            placements = await placing.claim_calls(
                session,
                plan,
                decision.calls,
                now,
                law_now=self.law_clock(),
                node=self.node,
                calls_per_licence=self._calls_per_licence,
            )
        if placements:
            log.info(
                "campaign calls placed campaign=%d tenant=%d calls=%d mode=%s ratio=%.2f",
                plan.id,
                plan.tenant_id,
                len(placements),
                decision.mode,
                decision.ratio,
            )
        await asyncio.gather(*(self._send(plan, placement) for placement in placements))

    async def _send(
        self, plan: placing.CampaignPlan, placement: placing.Placement, device: str | None = None
    ) -> bool:
        """The attempt's one Originate; False when Asterisk never got it (attempt failed)."""
        try:
            try:
                ami = await self._routes.for_tenant(plan.tenant_id)
            except GraamError as err:  # the tenant's node is down: Asterisk never got it
                raise placing.NotSent(err.message) from err
            await placing.originate_attempt(ami, plan, placement, agent_device=device)
        except placing.NotSent as err:
            async with self._sessions() as session, session.begin():
                attempt = await placing.end_unsent(session, placement, str(err))
                if attempt is not None:
                    await outcomes.end_attempt(session, attempt, Outcome.FAILED, datetime.now(UTC))
            return False
        return True

    # ---- preview ------------------------------------------------------------------------

    async def dial_preview(
        self,
        tenant_id: int,
        campaign_id: int,
        contact_id: int,
        agent_user_id: int,
        *,
        channel_id: str | None = None,
    ) -> int:
        """Place the preview call of ``contact_id`` for the agent (their phone rings first);
        returns the attempt id. Raises the domain's errors (refused, not ready, not found).
        ``channel_id``: the attempt's, named by a request from another process."""
        if self._task is None or not self._ami.state.connected:
            raise DialerUnavailable("the dialer cannot place calls now")
        refused: placing.CallRefused | None = None
        async with self._sessions() as session, session.begin():
            try:
                placement, plan, device = await placing.claim_preview(
                    session,
                    tenant_id,
                    campaign_id,
                    contact_id,
                    agent_user_id,
                    datetime.now(UTC),
                    law_now=self.law_clock(),
                    channel_id=channel_id,
                )
            except placing.CallRefused as err:
                refused = err  # the refusal recorded by the law is committed, then raised
        if refused is not None:
            raise refused
        if not await self._send(plan, placement, device):
            raise DialerUnavailable("Asterisk did not take the call")
        return placement.attempt_id

    # ---- events -------------------------------------------------------------------------

    async def _on_event(self, message: Message) -> None:
        name = message.event or ""
        if name == RESYNC_EVENT:
            self._reconcile_due = True
            self.request()
            return
        if name == "OriginateResponse":
            channel_id = message.get("Uniqueid") or ""
            if message.get("Response") == "Failure" and channel_id.startswith(
                outcomes.CHANNEL_PREFIX
            ):
                self._failed_originates[channel_id] = (
                    time.monotonic() + ORIGINATE_FAILURE_GRACE_SECONDS
                )
            return
        if name == "UserEvent" and (message.get("UserEvent") or "") not in outcomes.USER_EVENTS:
            return
        if name == "AgentConnect" and not (message.get("Uniqueid") or "").startswith(
            outcomes.CHANNEL_PREFIX
        ):
            return
        async with self._sessions() as session, session.begin():
            ended = await outcomes.apply_event(session, message)
        if ended is not None:
            self.request()

    async def _end_failed_originates(self) -> None:
        now = time.monotonic()
        due = [cid for cid, at in self._failed_originates.items() if at <= now]
        for channel_id in due:
            del self._failed_originates[channel_id]
            async with self._sessions() as session, session.begin():
                await outcomes.end_failed_originate(session, channel_id, datetime.now(UTC))

    # ---- reconciliation -----------------------------------------------------------------

    async def _live_channel_ids(self) -> set[str]:
        # Every node's channels: a campaign call is live wherever its tenant's node is.
        events = [
            event
            for ami, _ in await self._routes.partition(None)
            for event in await ami.action_list("CoreShowChannels", timeout=AMI_TIMEOUT)
        ]
        ids: set[str] = set()
        for event in events:
            for header in ("UniqueID", "Uniqueid", "Linkedid", "LinkedID"):
                value = event.get(header)
                if value:
                    ids.add(value.removesuffix(";2"))
        return ids

    def _followed(self) -> ColumnElement[bool]:
        """The campaigns whose open attempts this node reconciles: its own, and those no
        longer running whose lease lapsed (no dialer renews it: their node may be gone for
        good, a new host name after a redeploy, and their attempts would stay open forever,
        their contacts dialling and the tenant's licences taken). Such a campaign places no
        new call, so two dialers reconciling it against the same Asterisk agree."""
        return or_(
            Campaign.lease_owner == self.node,
            and_(
                Campaign.status != CampaignStatus.RUNNING.value,
                or_(Campaign.lease_until.is_(None), Campaign.lease_until < func.now()),
            ),
        )

    async def _reconcile(self) -> None:
        """Open attempts of this node's campaigns (and of stopped or paused ones no dialer
        holds): a channel alive keeps being followed; one missing twice,
        RECONCILE_CONFIRM_SECONDS apart, ends as lost (never placed again)."""
        async with self._sessions() as session:
            open_attempts = await session.scalar(
                select(func.count())
                .select_from(CampaignAttempt)
                .join(Campaign, Campaign.id == CampaignAttempt.campaign_id)
                .where(CampaignAttempt.ended_at.is_(None), self._followed())
            )
        if not open_attempts:
            self._missing_since.clear()
            self._last_reconcile = time.monotonic()
            self._reconcile_due = False
            return
        try:
            alive = await self._live_channel_ids()
        except AmiError as err:
            log.warning("campaign reconciliation postponed node=%s error=%s", self.node, err)
            return
        mono = time.monotonic()
        now = datetime.now(UTC)
        young = False
        async with self._sessions() as session, session.begin():
            attempts = (
                await session.scalars(
                    select(CampaignAttempt)
                    .join(Campaign, Campaign.id == CampaignAttempt.campaign_id)
                    .where(CampaignAttempt.ended_at.is_(None), self._followed())
                    .order_by(CampaignAttempt.id)
                    .with_for_update(of=CampaignAttempt, skip_locked=True)
                )
            ).all()
            still_open = {a.id for a in attempts}
            for gone in set(self._missing_since) - still_open:
                del self._missing_since[gone]
            for attempt in attempts:
                if (now - attempt.placed_at).total_seconds() < RECONCILE_GRACE_SECONDS:
                    young = True
                    continue
                if attempt.channel_id in alive:
                    self._missing_since.pop(attempt.id, None)
                    continue
                first = self._missing_since.setdefault(attempt.id, mono)
                if mono - first >= RECONCILE_CONFIRM_SECONDS:
                    del self._missing_since[attempt.id]
                    await outcomes.end_attempt(session, attempt, Outcome.LOST, now)
                    log.warning(
                        "campaign attempt lost attempt=%d campaign=%d tenant=%d",
                        attempt.id,
                        attempt.campaign_id,
                        attempt.tenant_id,
                    )
        self._last_reconcile = mono
        self._reconcile_due = young or bool(self._missing_since)

    async def _update_gauges(self) -> None:
        async with self._sessions() as session:
            rows = await session.execute(
                select(CampaignAttempt.tenant_id, func.count())
                .join(Campaign, Campaign.id == CampaignAttempt.campaign_id)
                .where(CampaignAttempt.ended_at.is_(None), Campaign.lease_owner == self.node)
                .group_by(CampaignAttempt.tenant_id)
            )
            counts = {int(tenant): int(n) for tenant, n in rows}
        for tenant in self._tenants_seen | set(counts):
            DIALER_CALLS_IN_PROGRESS.labels(tenant=str(tenant)).set(counts.get(tenant, 0))
        self._tenants_seen |= set(counts)
