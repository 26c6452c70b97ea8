"""The config applier: renders changed tenants, writes what changed, reloads only that.

One task applies at a time. Requests that arrive while it works are merged into the next
pass, so ten changes in a second make one or two reloads, never ten; and it never uses
``core reload`` (a large reload floods Asterisk's task processors, and while one is over its
high-water mark PJSIP drops new registrations and calls).

A change is live only when Asterisk said so: every reload is sent again (after a short
back-off) until Asterisk answers that it was done, "already in progress" included. A tenant
(or a trunk) that cannot be rendered keeps its previous files and is reported (log, metric,
audit, ``config_generations``), while every other tenant's change is written and reloaded;
it is tried again at its next change and every little while, never in a loop holding the
others up. Each tenant's applied generation is recorded once its files are live.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from graam_pbx import metrics
from graam_pbx.ami import AmiSupervisor, EventBus, Message, Subscription
from graam_pbx.ami.bus import RESYNC_EVENT, sent_by
from graam_pbx.asterisk import dtls, hold_music, realtime, status
from graam_pbx.asterisk.changes import ALL_TENANTS
from graam_pbx.asterisk.qualify import FirstQualify
from graam_pbx.asterisk.reloads import (
    RELOAD_COMMANDS,
    Backoff,
    ReloadFailed,
    ReloadOutcome,
    reload_until_done,
)
from graam_pbx.asterisk.render import (
    DEFAULT_AGI_ADDRESS,
    TOP_FILES,
    prompt_path,
    trunk_file,
    trunk_files,
    trunks_index,
)
from graam_pbx.asterisk.shards import ShardedWriter, ShardPass
from graam_pbx.asterisk.sip_cache import SipCache
from graam_pbx.asterisk.snapshot import (
    HeldTenants,
    Snapshot,
    SnapshotReader,
    TenantConf,
    held_by_node,
    prompt_audio,
)
from graam_pbx.asterisk.writer import (
    existing_tenants,
    reloads_for,
    remove_tenants,
    remove_trunks,
    write_changed,
)
from graam_pbx.files import PRIVATE, PUBLIC, FileAccess, write_atomically

log = logging.getLogger(__name__)

__all__ = ["RELOAD_COMMANDS", "ApplyResult", "ConfigApplier"]

# How long one pass keeps trying a reload before it gives up (the pass is then tried again
# from the start, the reload still owed), and the back-off between those passes.
RELOAD_DEADLINE = 30.0
PASS_BACKOFF = Backoff(first=0.5, cap=10.0)
# A new device's introduction to PJSIP (_introduce_devices) reads every endpoint of the node,
# which grows with their square: 0.3-0.5 s at 2,000 endpoints, 65-90 s at 20,000
# (python -m bench.config_render measures it).
INTRODUCE_TIMEOUT = 300.0
# A tenant that cannot be rendered is tried again after this, doubled each time; failing
# trunks every half of its cap (every pass renders them anyway).
FAILED_RETRY = Backoff(first=5.0, cap=60.0)
# A pass reads its tenants this many at a time, each chunk rendered while the next is read
# (bench.config_render: 10,000 tenants, chunks of 500 against one read of all).
SNAPSHOT_CHUNK = 500

# Told when a tenant starts failing (with why) and when it recovers (None): the audit log.
FailureReport = Callable[[int, str | None], Coroutine[None, None, None]]


@dataclass
class ApplyResult:
    tenants: int = 0
    written: set[str] = field(default_factory=set)
    reloads: set[str] = field(default_factory=set)
    snapshot_s: float = 0.0
    files_s: float = 0.0  # rendering and writing, wall time
    render_cpu_s: float = 0.0  # rendering alone, summed over the processes that did it
    reload_s: dict[str, float] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)  # tenants not rendered: why
    trunks_failed: dict[int, str] = field(default_factory=dict)  # trunks not rendered: why
    rendered: set[int] = field(default_factory=set)  # tenants written (or removed) as asked


class ConfigApplier:
    """Keeps Asterisk's generated configuration equal to the database."""

    def __init__(
        self,
        engine: AsyncEngine,
        config_dir: Path,
        *,
        sounds_dir: Path | None = None,
        ami: AmiSupervisor | None = None,
        bus: EventBus | None = None,
        override_dir: Path | None = None,
        agi_address: tuple[str, int] = DEFAULT_AGI_ADDRESS,
        agi_key: bytes | None = None,
        file_access: FileAccess = PRIVATE,
        settle_delay: float = 0.05,
        reload_deadline: float = RELOAD_DEADLINE,
        on_failure: FailureReport | None = None,
        asterisk_db_url: str | None = None,
        node: str | None = None,
        shards: ShardedWriter | None = None,
    ) -> None:
        self._engine = engine
        # The node whose files these are: only the tenants it holds are written (those
        # living there and those it stands by for). None: every tenant (no node table).
        self._node = node
        self.config_dir = config_dir
        self.sounds_dir = sounds_dir
        self._ami = ami
        self._bus = bus
        # agi_key: the feature codes' FastAGI URLs carry each tenant's key (agi_auth);
        # file_access: generated files hold secrets, readable by Asterisk's group at most.
        # The rendering workers: this applier's own, or another's (one pool serves every
        # node's applier of a process: asterisk/nodes.py); the owner starts and stops them.
        self._owns_shards = shards is None
        self._shards = shards or ShardedWriter(
            override_dir, agi_address, agi_key=agi_key, access=file_access
        )
        self.file_access = file_access
        self._settle_delay = settle_delay
        self._pending: set[int] = set()
        self._full = False
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._unreloaded: set[str] = set()  # reloads owed: files written, reload not done yet
        self._reload_deadline = reload_deadline
        self._on_failure = on_failure
        # Devices' SIP objects are read by Asterisk from Postgres (realtime.py): the
        # connection it uses is generated at every full pass, its role made when ours.
        self._asterisk_db_url = asterisk_db_url
        self._agi_key = agi_key
        self._realtime_conf: str | None = None
        self._realtime_failure: str | None = None
        # Devices the node's PJSIP qualify knows, by tenant, and those still to introduce
        # (in order, each once), introduced beside the passes (_introduce_devices).
        self._node_devices: dict[int, set[str]] = {}
        self._introductions: dict[str, None] = {}
        self._introducer: asyncio.Task[None] | None = None
        # Devices' first registrations on the node are qualified at once (qualify.py).
        self._first_qualify = (
            FirstQualify(ami, bus) if ami is not None and bus is not None else None
        )
        # Devices' endpoints and AORs cached by the node, expired as they change
        # (sip_cache.py), and all of them at each resync (below: expiries were missed while
        # AMI was away).
        self._sip_cache = SipCache(ami) if ami is not None and bus is not None else None
        # What failed to render, as last reported (reported again only when it changes).
        self._failing: dict[int, str] = {}
        self._failing_trunks: dict[int, str] = {}
        self._retries: dict[int, int] = {}  # failing tenant → failed tries in a row
        self._retry_at: dict[int, float] = {}  # failing tenant → when to try it again
        self._trunk_retry_at: float | None = None
        self._reports: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None
        self.applied = 0

    @property
    def shards(self) -> ShardedWriter:
        """The rendering workers this applier writes with."""
        return self._shards

    @property
    def ami(self) -> AmiSupervisor | None:
        """The AMI connection of the node whose files these are (None: files only)."""
        return self._ami

    # ---- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self.request(None)
        if self._first_qualify is not None:
            await self._first_qualify.start()
        if self._sip_cache is not None:
            await self._sip_cache.start()
        if self._bus is not None:
            self._subscription = self._bus.subscribe(
                f"config-applier {self._node or ''}".strip(), [RESYNC_EVENT], self._on_resync
            )
        self._task = asyncio.create_task(self._run(), name="config-applier")

    async def prepare(self) -> None:
        """Start the rendering workers now rather than on the first large pass."""
        await self._shards.start()

    async def stop(self) -> None:
        if self._subscription is not None and self._bus is not None:
            await self._bus.unsubscribe(self._subscription)
        task, self._task = self._task, None
        if task is not None:
            if self._pending or self._full:
                # Finish what was committed before stopping: files must match the database.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(10):
                        await self.settled()
            task.cancel()
            await asyncio.wait([task])
        if self._reports:
            await asyncio.wait(self._reports, timeout=5)
        introducer, self._introducer = self._introducer, None
        if introducer is not None:
            introducer.cancel()
            await asyncio.wait([introducer])
        if self._first_qualify is not None:
            await self._first_qualify.stop()
        if self._sip_cache is not None:
            await self._sip_cache.stop()
        if self._owns_shards:
            await self._shards.stop()

    # ---- requests ---------------------------------------------------------------------------

    def request(self, tenant_ids: Iterable[int] | None) -> None:
        """Ask for these tenants (None: everything) to be applied soon. Never blocks."""
        if tenant_ids is None:
            self._full = True
        else:
            ids = set(tenant_ids)
            if ALL_TENANTS in ids:
                self._full = True
            self._pending |= ids - {ALL_TENANTS}
        self._idle.clear()
        self._wake.set()

    def expire_devices(self, ids: frozenset[str] | None) -> None:
        """Have the node forget its copies of these devices' AORs (None:
        every device's), which changed in Postgres. Never blocks."""
        if self._sip_cache is not None:
            self._sip_cache.expire(ids)

    async def settled(self) -> None:
        """Wait until every request made so far is applied, its new devices introduced."""
        await self._idle.wait()
        introducer = self._introducer
        if introducer is not None:
            await asyncio.wait([introducer])

    async def _on_resync(self, message: Message) -> None:
        # After a reconnect: anything written while Asterisk was away still needs its reload.
        # (Every node's resync reaches the shared bus: only this node's concerns this one.)
        if self._ami is None or sent_by(message, self._ami.node):
            if self._sip_cache is not None:
                self._sip_cache.expire(None, again=False)
            self.request(None)

    # ---- the work ---------------------------------------------------------------------------

    async def _run(self) -> None:
        failing: str | None = None
        attempt = 0
        while True:
            await self._wait_for_work()
            await asyncio.sleep(self._settle_delay)  # merge a burst of commits into one pass
            self._wake.clear()
            full, tenants = self._full, self._pending
            self._full, self._pending = False, set()
            try:
                await self.apply(None if full else tenants)
            except Exception as err:
                # Asterisk would not reload (or the database would not answer): the whole
                # pass is tried again, the tenants still pending, the reloads still owed.
                attempt += 1
                why = f"{type(err).__name__}: {err}"[:500]
                if failing != why:
                    log.error("config apply failed; retrying error=%s", why, exc_info=err)
                failing = why
                metrics.CONFIG_APPLY_FAILURES.inc()
                await self._refresh_pending()
                self._full = self._full or full
                self._pending |= tenants
                await asyncio.sleep(PASS_BACKOFF.delay(attempt))
                self._wake.set()
                continue
            if failing is not None:
                log.info("config apply recovered after=%d retries", attempt)
                failing, attempt = None, 0
            if not self._wake.is_set():
                self._idle.set()

    async def _wait_for_work(self) -> None:
        """Until a request comes, or a failing tenant's or trunk's next try is due."""
        while not self._wake.is_set():
            due = [*self._retry_at.values()]
            if self._trunk_retry_at is not None:
                due.append(self._trunk_retry_at)
            loop = asyncio.get_running_loop()
            if due:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(min(due)):
                        await self._wake.wait()
            else:
                await self._wake.wait()
            now = loop.time()
            again = [tenant for tenant, at in self._retry_at.items() if at <= now]
            for tenant in again:
                del self._retry_at[tenant]
            if self._trunk_retry_at is not None and self._trunk_retry_at <= now:
                self._trunk_retry_at = None
                self.request(())  # every pass renders the trunks
            if again:
                self.request(again)

    async def apply(self, tenant_ids: set[int] | None = None) -> ApplyResult:
        """Render and write these tenants (None: all), then reload what changed.

        With AMI (a real apply), the tenants' generations are read in the same snapshot and
        marked applied once every reload succeeded; a failure of the pass marks them failing.
        """
        result = ApplyResult()
        tracked = self._ami is not None
        started = time.perf_counter()
        scope, home = await self._scope(tenant_ids)
        files = self._shards.begin(self.config_dir)
        try:
            snapshot, generations = await self._read(scope, home, files, tracked=tracked)
        except BaseException:
            await self._abandon(files)
            raise
        result.snapshot_s = time.perf_counter() - started
        if tenant_ids is None:
            await self._prepare_realtime()
        try:
            started = time.perf_counter()
            written = await self._write_files(snapshot, tenant_ids, result, files)
            result.files_s = time.perf_counter() - started
            # Owed from now on: if the rest of the pass fails, the next pass finds these files
            # unchanged and would not reload them otherwise.
            self._unreloaded |= reloads_for(written)
            if self.sounds_dir is not None:
                await self._sync_sounds(snapshot)
            result.tenants = len(snapshot.tenants)
            result.written = written
            result.reloads, self._unreloaded = self._unreloaded, set()
            await self._reload(result)
            await self._introduce_devices(snapshot, tenant_ids)
        except Exception as err:
            self._unreloaded |= reloads_for(files.written)
            if tracked:
                why = f"{type(err).__name__}: {err}"[:500]
                with contextlib.suppress(Exception):
                    async with self._engine.begin() as connection:
                        await status.mark_failing(
                            connection, {g.tenant_id: why for g in generations}
                        )
            raise
        if tracked:
            await self._record(generations, result)
        self._note_failures(result)
        self.applied += 1
        return result

    async def _read(
        self, scope: set[int] | None, home: set[int] | None, files: ShardPass, *, tracked: bool
    ) -> tuple[Snapshot, list[status.Generation]]:
        """The snapshot of ``scope`` (None: every tenant) and, when ``tracked``, the
        generations of ``home`` (None: every tenant's), in one view. Tenants are read
        ``SNAPSHOT_CHUNK`` at a time and each chunk is handed to ``files`` at once: the
        workers render one chunk while this process reads the next."""
        async with self._engine.connect() as connection:
            reader = await SnapshotReader.open(connection)
            rows = await reader.tenant_rows(None if scope is None else sorted(scope))
            whole = scope is None and len(rows) <= SNAPSHOT_CHUNK
            tenants: list[TenantConf] = []
            for first in range(0, len(rows), SNAPSHOT_CHUNK):
                chunk = await reader.tenants(rows[first : first + SNAPSHOT_CHUNK], whole=whole)
                files.submit(chunk)
                tenants += chunk
            trunks = await reader.trunks()
            generations = await status.read_generations(connection, home) if tracked else []
            await connection.rollback()
        return Snapshot(tuple(tenants), trunks), generations

    async def _abandon(self, files: ShardPass) -> None:
        """A pass that stops early: what its workers already wrote is owed a reload."""
        with contextlib.suppress(Exception):
            await files.finish()
        self._unreloaded |= reloads_for(files.written)

    async def _scope(self, tenant_ids: set[int] | None) -> tuple[set[int] | None, set[int] | None]:
        """Which of ``tenant_ids`` (None: all) this node's files hold, and which of those
        live here (their generations are this applier's to record; a standby's copy is not
        what makes a change live). A tenant asked for and not held has its files removed:
        it moved to another node."""
        if self._node is None:
            return tenant_ids, tenant_ids
        async with self._engine.connect() as connection:
            held = await held_by_node(connection, self._node)
            await connection.rollback()
        if held is not None and held.every:
            return tenant_ids, tenant_ids
        held = held or HeldTenants(frozenset(), frozenset())
        holds = held.home | held.standby
        if tenant_ids is None:
            return set(holds), set(held.home)
        return tenant_ids & holds, tenant_ids & held.home

    async def _write_files(
        self,
        snapshot: Snapshot,
        tenant_ids: set[int] | None,
        result: ApplyResult,
        files: ShardPass,
    ) -> set[str]:
        """Write every file that changed and prune what no tenant makes any more.

        A tenant or trunk that cannot be rendered is left out (its files stay as they are)
        and noted in ``result``.
        """
        trunks = trunk_files(self._shards.env, snapshot, result.trunks_failed)
        # A trunk that cannot be rendered keeps its previous file, if it had one.
        kept = {
            trunk
            for trunk in result.trunks_failed
            if (self.config_dir / trunk_file(trunk)).exists()
        }
        index = trunks_index({t.id for t in snapshot.trunks} - set(result.trunks_failed) | kept)
        common = dict(TOP_FILES, **trunks, **{"trunks.conf": index})
        if self._realtime_conf is not None:
            common[realtime.CONF_FILE] = self._realtime_conf
        written = await asyncio.to_thread(write_changed, self.config_dir, common, self.file_access)
        if tenant_ids is None:
            # Browser phones' media certificate: kept at each full pass (read at each call).
            await asyncio.to_thread(dtls.ensure, self.config_dir, self.file_access)
        keep = set(trunks) | {trunk_file(trunk) for trunk in kept}
        written |= await asyncio.to_thread(remove_trunks, self.config_dir, keep)
        shards = await files.finish()  # the snapshot's tenants, submitted as they were read
        result.render_cpu_s = shards.render_s
        result.failed = dict(shards.failed)
        live = {tenant.id for tenant in snapshot.tenants}
        asked = existing_tenants(self.config_dir) if tenant_ids is None else tenant_ids
        removed = await asyncio.to_thread(remove_tenants, self.config_dir, asked - live)
        result.rendered = (live - set(result.failed)) | (asked - live)
        return written | shards.written | removed

    async def _introduce_devices(self, snapshot: Snapshot, tenant_ids: set[int] | None) -> None:
        """Make the node's PJSIP qualify know each new device's AOR now, not at its first
        REGISTER.

        PJSIP learns realtime AORs when it synchronizes (at its load, and at the res_pjsip
        reload that follows a new res_pgsql.conf): after a full pass it knows every device.
        An AOR it does not know yet is set up at its first contact, and that set-up reads
        every endpoint while the REGISTER waits (docs/realtime-sip.md). So a device that
        appears in a later pass is introduced, once, with ``pjsip reload qualify aor``: a
        synchronization of that AOR's qualify state, not a module reload. It still reads
        every endpoint (Asterisk 22 does so for each AOR new to it, whichever way it
        learns it), which takes about a minute at 20,000 endpoints: so introductions run
        one at a time beside the passes (``_introduce``), never holding a pass or its
        generations. A failure only leaves the set-up to the device's first REGISTER.
        """
        present = {
            tenant.id: {device.sip_username for device in tenant.devices}
            for tenant in snapshot.tenants
        }
        if tenant_ids is None:
            self._node_devices = present
            return
        new: list[str] = []
        for tenant in tenant_ids:
            known = self._node_devices.get(tenant, set())
            now = present.get(tenant, set())
            new += sorted(now - known)
            if now:
                self._node_devices[tenant] = now
            else:
                self._node_devices.pop(tenant, None)
        if self._ami is None or not new:
            return
        self._introductions.update(dict.fromkeys(new))
        if self._introducer is None or self._introducer.done():
            self._introducer = asyncio.create_task(
                self._introduce(self._ami), name="pjsip-introductions"
            )

    async def _introduce(self, ami: AmiSupervisor) -> None:
        """Introduce the queued devices one by one: PJSIP runs each on its one management
        queue anyway, and one at a time leaves room there for registrations."""
        while self._introductions:
            name = next(iter(self._introductions))
            del self._introductions[name]
            try:
                await ami.command(f"pjsip reload qualify aor {name}", timeout=INTRODUCE_TIMEOUT)
            except Exception as err:
                log.warning("device not introduced to PJSIP aor=%s error=%s", name, err)

    async def _prepare_realtime(self) -> None:
        """Asterisk's connection to the SIP views: its role (when ours to make) and the text
        of res_pgsql.conf. A failure is logged once and leaves the previous text in place:
        the rest of the configuration is still applied."""
        try:
            if self._asterisk_db_url is not None:
                database = realtime.given_database(self._asterisk_db_url)
            else:
                database = realtime.managed_database(self._engine.url, self._agi_key)
                async with self._engine.begin() as connection:
                    await realtime.ensure_role(connection, database)
            self._realtime_conf = realtime.res_pgsql_conf(database)
        except Exception as err:
            why = f"{type(err).__name__}: {err}"[:500]
            if why != self._realtime_failure:
                log.error(
                    "asterisk realtime connection not prepared; set GRAAM_ASTERISK_DB_URL "
                    "or give the control plane's role CREATEROLE error=%s",
                    why,
                )
            self._realtime_failure = why
            metrics.CONFIG_APPLY_FAILURES.inc()
            return
        if self._realtime_failure is not None:
            log.info("asterisk realtime connection prepared again")
        self._realtime_failure = None

    async def _record(self, generations: list[status.Generation], result: ApplyResult) -> None:
        """Every tenant of the pass that rendered is live at its snapshot's generation."""
        applied = {
            g.tenant_id: g.committed for g in generations if g.tenant_id not in result.failed
        }
        async with self._engine.begin() as connection:
            await status.mark_applied(connection, applied)
            await status.mark_failing(connection, result.failed)
            await status.set_trunk_failures(connection, result.trunks_failed)
            pending = await status.pending_tenants(connection)
        metrics.CONFIG_PENDING_TENANTS.set(pending)
        now = datetime.now(UTC)
        for generation in generations:
            if generation.tenant_id in applied and generation.pending_since is not None:
                lag = (now - generation.pending_since).total_seconds()
                metrics.CONFIG_APPLY_LAG.observe(max(0.0, lag))

    async def _refresh_pending(self) -> None:
        """``graam_config_pending_tenants`` while passes fail (the database may be away)."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5), self._engine.connect() as connection:
                metrics.CONFIG_PENDING_TENANTS.set(await status.pending_tenants(connection))

    def _note_failures(self, result: ApplyResult) -> None:
        """Log, count and audit what could not be rendered, once per failure; schedule the
        next try of each failing tenant and trunk."""
        loop = asyncio.get_running_loop()
        for tenant, why in result.failed.items():
            metrics.CONFIG_RENDER_FAILURES.labels(tenant=str(tenant)).inc()
            self._retries[tenant] = self._retries.get(tenant, 0) + 1
            self._retry_at[tenant] = loop.time() + FAILED_RETRY.delay(self._retries[tenant])
            if self._failing.get(tenant) != why:
                log.error("tenant configuration cannot be rendered tenant=%d error=%s", tenant, why)
                self._failing[tenant] = why
                self._report(tenant, why)
        for tenant in [t for t in self._failing if t in result.rendered]:
            log.info("tenant configuration renders again tenant=%d", tenant)
            del self._failing[tenant]
            self._retries.pop(tenant, None)
            self._retry_at.pop(tenant, None)
            self._report(tenant, None)
        for trunk, why in result.trunks_failed.items():
            metrics.CONFIG_RENDER_FAILURES.labels(tenant="trunks").inc()
            if self._failing_trunks.get(trunk) != why:
                log.error("trunk configuration cannot be rendered trunk=%d error=%s", trunk, why)
        for trunk in set(self._failing_trunks) - set(result.trunks_failed):
            log.info("trunk configuration renders again trunk=%d", trunk)
        self._failing_trunks = dict(result.trunks_failed)
        self._trunk_retry_at = loop.time() + FAILED_RETRY.cap / 2 if result.trunks_failed else None

    def _report(self, tenant: int, why: str | None) -> None:
        if self._on_failure is None:
            return
        task = asyncio.create_task(
            self._on_failure(tenant, why), name=f"config-failure-report tenant={tenant}"
        )
        self._reports.add(task)
        task.add_done_callback(self._reported)

    def _reported(self, task: asyncio.Task[None]) -> None:
        # The report runs detached: its failure (the database away) is logged here, not lost.
        self._reports.discard(task)
        if not task.cancelled() and (err := task.exception()) is not None:
            log.error("config failure not audited task=%s error=%s", task.get_name(), err)

    async def _sync_sounds(self, snapshot: Snapshot) -> None:
        """Each tenant's prompts as files Asterisk plays; audio is read only when missing."""
        assert self.sounds_dir is not None  # noqa: S101 - checked by the caller
        for tenant in snapshot.tenants:
            directory = self.sounds_dir / f"t{tenant.id}"
            wanted = {
                Path(prompt_path(tenant.id, p.id, p.sha256)).name + ".wav": p
                for p in tenant.prompts
            }
            present = {p.name for p in directory.glob("*.wav")} if directory.is_dir() else set()
            for name in sorted(set(wanted) - present):
                prompt = wanted[name]
                async with self._engine.connect() as connection:
                    audio = await prompt_audio(connection, prompt.id)
                if audio is not None and hashlib.sha256(audio).hexdigest() == prompt.sha256:
                    await asyncio.to_thread(write_atomically, directory / name, audio, PUBLIC)
            for name in present - set(wanted):
                (directory / name).unlink(missing_ok=True)
            # Hold music classes are made of the prompts just synced; Asterisk scans a
            # class's directory only when res_musiconhold reloads.
            if await asyncio.to_thread(hold_music.sync_classes, directory, tenant):
                self._unreloaded.add("res_musiconhold")

    async def _reload(self, result: ApplyResult) -> None:
        """Each reload until Asterisk says it was done; what is left is owed on failure."""
        if not result.reloads:
            return
        if self._ami is None:
            self._unreloaded |= result.reloads
            return
        ami = self._ami
        owed = sorted(result.reloads)

        async def send(command: str) -> str:
            return await ami.command(command, timeout=60)

        def retried(reload: str, outcome: ReloadOutcome, answer: str, attempt: int) -> None:
            metrics.CONFIG_RELOAD_RETRIES.labels(reload=reload, outcome=outcome.value).inc()
            if attempt == 1:
                log.info(
                    "asterisk reload not done yet; retrying reload=%s outcome=%s answer=%s",
                    reload,
                    outcome.value,
                    answer[:120],
                )

        while owed:
            reload = owed[0]
            if not ami.state.connected:
                # Nothing to retry against: the pass fails now and AMI's resync asks for
                # a full pass as soon as Asterisk is back.
                self._unreloaded |= set(owed)
                raise ReloadFailed(reload, ReloadOutcome.ERROR, "AMI is not connected", 0)
            started = time.perf_counter()
            try:
                tries = await reload_until_done(
                    send, reload, deadline=self._reload_deadline, on_retry=retried
                )
            except BaseException:
                self._unreloaded |= set(owed)
                raise
            owed.pop(0)
            result.reload_s[reload] = time.perf_counter() - started
            log.info("asterisk reloaded reload=%s tries=%d", reload, tries)
