"""Moves finished recordings from Asterisk's spool into the store and registers them; purges
recordings past their tenant's retention.

A pass lists the spool (``spool.files``) and takes every leg that is finished: encoded,
checksummed, written to the store (durably), registered in ``recordings`` (one row per
channel: a leg taken twice, after a crash between the store and the spool's cleanup, is
registered once), then removed from the spool. Passes run at start (what ended while the
control plane was down), whenever a channel hangs up (AMI ``Hangup``), after an AMI
reconnect, and every ``scan_interval``. The purge runs every ``purge_interval``.

With several Asterisk nodes, every other node's spool is seen under
``<GRAAM_NODES_FILES_DIR>/<node>/recordings`` (mounted as that node's
``/var/spool/asterisk/monitor/graam``, docs/nodes.md): each pass lists the configured spool
and every such directory present, whether the node is up or not (a node's finished recordings
are on disk whatever its state).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami import EventBus, Message
from graam_pbx.ami.passes import PassRunner
from graam_pbx.recordings import spool
from graam_pbx.recordings.models import DEFAULT_RETENTION_DAYS, Recording
from graam_pbx.recordings.store import RecordingStore
from graam_pbx.tenants.models import Tenant

log = logging.getLogger(__name__)

NODE_SUBDIR = "recordings"  # a node's spool under <GRAAM_NODES_FILES_DIR>/<node>/

PURGE_BATCH = 500
# A leg whose channel has hung up is finished by Asterisk a moment later (its recording thread
# closes the file): looked at again this often, this many times, before the periodic scan.
SETTLE_RETRY = 0.2
SETTLE_TRIES = 50


@dataclass(frozen=True)
class Taken:
    """A leg encoded and stored, ready to register."""

    leg: spool.SpoolFile
    started_at: datetime
    duration_ms: int
    size_bytes: int
    sha256: str
    key: str


def take(leg: spool.SpoolFile, store: RecordingStore, now: datetime) -> Taken | None:
    """Encode and store one leg when it is ready; None when it is not (still written, or a
    leg with no audio at all, dropped once ``spool.EMPTY_AFTER`` old: never bridged).
    Blocking: run in a thread."""
    state = spool.state(leg.path)
    if state is None:
        raise ValueError(f"{leg.path}: not a 16-bit mono PCM WAV")
    if not state.ready(now):
        if state.data_bytes == 0 and now - state.modified >= spool.EMPTY_AFTER:
            leg.path.unlink(missing_ok=True)  # never bridged: nothing was recorded
        return None
    started_at = state.modified - timedelta(milliseconds=state.duration_ms)
    data = spool.encode(leg.path, state.data_bytes, state.rate)
    key = spool.storage_key(leg, started_at)
    store.put(key, data)
    return Taken(
        leg, started_at, state.duration_ms, len(data), hashlib.sha256(data).hexdigest(), key
    )


class RecordingCollector(PassRunner):
    """The background component that registers finished recordings and purges old ones."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        spool_root: Path | None,
        store: RecordingStore,
        *,
        nodes_files_dir: Path | None = None,
        scan_interval: float = 30.0,
        purge_interval: float = 3600.0,
        name: str = "recordings",
    ) -> None:
        super().__init__(bus, name, ["Hangup"], scan_interval)
        self._sessions = sessions
        self._root = spool_root
        self._nodes_files_dir = nodes_files_dir
        self._store = store
        self._purge_interval = purge_interval
        self._next_purge = 0.0  # the loop's time of the next purge: at the first pass
        self._settling = False  # a hung-up channel's leg is not finished yet: look again soon
        self._failing: set[str] = set()  # legs whose failure was logged once
        self._hung_up: dict[str, int] = {}  # channels hung up → passes left to look again

    def roots(self) -> list[Path]:
        """The spools a pass lists: the configured one, then every other node's. Blocking (a
        directory listing): called in a thread."""
        roots = [] if self._root is None else [self._root]
        if self._nodes_files_dir is not None:
            roots.extend(sorted(self._nodes_files_dir.glob(f"*/{NODE_SUBDIR}")))
        return roots

    def _ready(self) -> bool:
        if self._root is None and self._nodes_files_dir is None:
            log.warning(
                "recordings: Asterisk's monitor spool is not known here "
                "(set GRAAM_RECORDINGS_SPOOL_DIR); recordings stay in Asterisk's spool"
            )
            return False
        self._next_purge = 0.0
        return True

    def request(self) -> None:
        """Look at the spool as soon as possible."""
        self._wake_soon()

    def _on_event(self, message: Message) -> None:
        uniqueid = message.get("Uniqueid", "")
        if uniqueid:
            self._hung_up[uniqueid] = SETTLE_TRIES
        self._wake_soon()

    def _next_wait(self) -> float:
        return SETTLE_RETRY if self._settling else self._scan_interval

    async def _pass(self, woken: bool) -> None:
        self._settling = await self.collect() < 0
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_purge:
            await self.purge()
            self._next_purge = loop.time() + self._purge_interval

    async def collect(self) -> int:
        """One pass over the spool: how many legs were registered; -1 when a leg whose
        channel has hung up is not finished yet (look again soon)."""
        legs = await asyncio.to_thread(
            lambda: [leg for root in self.roots() for leg in spool.files(root)]
        )
        registered = 0
        unsettled = False
        for leg in legs:
            if self._stopping:
                break
            try:
                taken = await self._collect_one(leg)
                registered += taken
                tries = self._hung_up.get(leg.uniqueid)
                if not taken and tries:
                    self._hung_up[leg.uniqueid] = tries - 1
                    unsettled = True
            except Exception as err:
                if leg.uniqueid not in self._failing:
                    self._failing.add(leg.uniqueid)
                    log.error("recordings: %s not registered: %s", leg.path, err)
        # Only channels with a leg in the spool are remembered from one pass to the next.
        spooled = {leg.uniqueid for leg in legs}
        self._hung_up = {u: n for u, n in self._hung_up.items() if n and u in spooled}
        return -1 if unsettled else registered

    async def _collect_one(self, leg: spool.SpoolFile) -> int:
        now = spool.now()
        try:
            taken = await asyncio.to_thread(take, leg, self._store, now)
        except FileNotFoundError:
            return 0  # taken by another pass meanwhile
        if taken is None:
            return 0
        async with self._sessions() as session, session.begin():
            exists = await session.scalar(select(Tenant.id).where(Tenant.id == leg.tenant_id))
            if exists is None:
                raise ValueError(f"no tenant {leg.tenant_id}")
            await session.execute(
                insert(Recording)
                .values(
                    tenant_id=leg.tenant_id,
                    linkedid=leg.linkedid,
                    uniqueid=leg.uniqueid,
                    direction=leg.direction.value,
                    queue_id=leg.queue_id,
                    agent_user_id=leg.agent_user_id,
                    party_number=leg.party_number,
                    started_at=taken.started_at,
                    duration_ms=taken.duration_ms,
                    size_bytes=taken.size_bytes,
                    sha256=taken.sha256,
                    media_type=spool.MEDIA_TYPE,
                    storage_key=taken.key,
                )
                .on_conflict_do_nothing(index_elements=["uniqueid"])
            )
        await asyncio.to_thread(_remove_leg, leg.path)
        self._failing.discard(leg.uniqueid)
        log.info(
            "recording registered tenant_id=%s linkedid=%s uniqueid=%s duration_ms=%s",
            leg.tenant_id,
            leg.linkedid,
            leg.uniqueid,
            taken.duration_ms,
        )
        return 1

    async def purge(self) -> int:
        """Delete every recording older than its tenant's retention: the file, then the row
        (a row whose file is already gone is deleted at the next purge)."""
        purged = 0
        while not self._stopping:
            async with self._sessions() as session:
                rows = (
                    await session.execute(
                        text(
                            "SELECT r.id, r.storage_key FROM recordings r "
                            "LEFT JOIN recording_settings s ON s.tenant_id = r.tenant_id "
                            "WHERE r.started_at < now() - make_interval(days => "
                            "coalesce(s.retention_days, :default_days)) LIMIT :batch"
                        ),
                        {"default_days": DEFAULT_RETENTION_DAYS, "batch": PURGE_BATCH},
                    )
                ).all()
            if not rows:
                break
            for _, key in rows:
                await asyncio.to_thread(self._store.delete, key)
            async with self._sessions() as session, session.begin():
                await session.execute(
                    delete(Recording).where(Recording.id.in_([row_id for row_id, _ in rows]))
                )
            purged += len(rows)
        if purged:
            log.info("recordings purged past their retention count=%s", purged)
        return purged


def _remove_leg(path: Path) -> None:
    """The spool's copy, and its call's directory once empty."""
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()
