"""The config applier: renders changed tenants, writes what changed, reloads only that.

One task applies at a time. Requests that arrive while it works are merged into the next
pass, so ten changes in a second make one or two reloads, never ten; and it never uses
``core reload`` (a large reload floods Asterisk's task processors, and while one is over its
high-water mark PJSIP drops new registrations and calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from graam_pbx.ami import AmiError, AmiSupervisor, EventBus, Message, Subscription
from graam_pbx.ami.bus import RESYNC_EVENT
from graam_pbx.asterisk.changes import ALL_TENANTS
from graam_pbx.asterisk.render import (
    DEFAULT_AGI_ADDRESS,
    common_files,
    prompt_path,
)
from graam_pbx.asterisk.shards import ShardedWriter
from graam_pbx.asterisk.snapshot import Snapshot, load_snapshot, prompt_audio
from graam_pbx.asterisk.writer import (
    existing_tenants,
    reloads_for,
    remove_tenants,
    write_atomically,
    write_changed,
)

log = logging.getLogger(__name__)

# What each reload is, as an Asterisk CLI command (sent over AMI).
RELOAD_COMMANDS = {
    "res_pjsip": "module reload res_pjsip.so",
    "dialplan": "dialplan reload",
    "app_queue": "module reload app_queue.so",
    "app_voicemail": "module reload app_voicemail.so",
}


@dataclass
class ApplyResult:
    tenants: int = 0
    written: set[str] = field(default_factory=set)
    reloads: set[str] = field(default_factory=set)
    snapshot_s: float = 0.0
    files_s: float = 0.0  # rendering and writing, wall time
    render_cpu_s: float = 0.0  # rendering alone, summed over the processes that did it
    reload_s: dict[str, float] = field(default_factory=dict)


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
        settle_delay: float = 0.05,
    ) -> None:
        self._engine = engine
        self.config_dir = config_dir
        self.sounds_dir = sounds_dir
        self._ami = ami
        self._bus = bus
        self._shards = ShardedWriter(override_dir, agi_address)
        self._settle_delay = settle_delay
        self._pending: set[int] = set()
        self._full = False
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._unreloaded: set[str] = set()  # reloads owed since Asterisk was unreachable
        self._task: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None
        self.applied = 0

    # ---- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self.request(None)
        if self._bus is not None:
            self._subscription = self._bus.subscribe(
                "config-applier", [RESYNC_EVENT], self._on_resync
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

    async def settled(self) -> None:
        """Wait until every request made so far is applied."""
        await self._idle.wait()

    async def _on_resync(self, message: Message) -> None:
        # After a reconnect: anything written while Asterisk was away still needs its reload.
        self.request(None)

    # ---- the work ---------------------------------------------------------------------------

    async def _run(self) -> None:
        failing = False
        while True:
            await self._wake.wait()
            await asyncio.sleep(self._settle_delay)  # merge a burst of commits into one pass
            self._wake.clear()
            full, tenants = self._full, self._pending
            self._full, self._pending = False, set()
            try:
                await self.apply(None if full else tenants)
            except Exception:
                if not failing:
                    log.exception("config apply failed; retrying")
                failing = True
                self._full = self._full or full
                self._pending |= tenants
                await asyncio.sleep(1.0)
                self._wake.set()
                continue
            if failing:
                log.info("config apply recovered")
                failing = False
            if not self._wake.is_set():
                self._idle.set()

    async def apply(self, tenant_ids: set[int] | None = None) -> ApplyResult:
        """Render and write these tenants (None: all), then reload what changed."""
        result = ApplyResult()
        started = time.perf_counter()
        async with self._engine.connect() as connection:
            snapshot = await load_snapshot(
                connection, None if tenant_ids is None else sorted(tenant_ids)
            )
            await connection.rollback()
        result.snapshot_s = time.perf_counter() - started
        started = time.perf_counter()
        written, result.render_cpu_s = await self._write_files(snapshot, tenant_ids)
        result.files_s = time.perf_counter() - started
        if self.sounds_dir is not None:
            await self._sync_sounds(snapshot)
        result.tenants = len(snapshot.tenants)
        result.written = written
        result.reloads = reloads_for(written) | self._unreloaded
        self._unreloaded = set()
        await self._reload(result)
        self.applied += 1
        return result

    async def _write_files(
        self, snapshot: Snapshot, tenant_ids: set[int] | None
    ) -> tuple[set[str], float]:
        """Write every file that changed and prune what no tenant makes any more."""
        common = common_files(self._shards.env, snapshot)
        written = await asyncio.to_thread(write_changed, self.config_dir, common)
        shards = await self._shards.write(self.config_dir, snapshot.tenants)
        live = {tenant.id for tenant in snapshot.tenants}
        asked = existing_tenants(self.config_dir) if tenant_ids is None else tenant_ids
        removed = await asyncio.to_thread(remove_tenants, self.config_dir, asked - live)
        return written | shards.written | removed, shards.render_s

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
                    await asyncio.to_thread(write_atomically, directory / name, audio)
            for name in present - set(wanted):
                (directory / name).unlink(missing_ok=True)

    async def _reload(self, result: ApplyResult) -> None:
        if not result.reloads:
            return
        if self._ami is None:
            self._unreloaded |= result.reloads
            return
        for reload in sorted(result.reloads):
            started = time.perf_counter()
            try:
                output = await self._ami.command(RELOAD_COMMANDS[reload], timeout=60)
            except AmiError as err:
                log.warning("asterisk reload postponed reload=%s error=%s", reload, err)
                self._unreloaded.add(reload)
                continue
            result.reload_s[reload] = time.perf_counter() - started
            log.info("asterisk reloaded reload=%s output=%s", reload, output.strip()[:120])
