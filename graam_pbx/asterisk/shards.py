"""Rendering and writing tenants' files, in this process or spread over worker processes.

Rendering is pure Python and writing is mostly kernel time: in one process both share one
core under the GIL. A full render of thousands of tenants is split into shards, one per
core, each rendered and written by a worker process; a change to a few tenants is rendered
right here, where a round trip to a worker would cost more than the work.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from graam_pbx import heap
from graam_pbx.asterisk.render import (
    DEFAULT_AGI_ADDRESS,
    TENANT_FILES,
    environment,
    render_failure,
    tenant_files,
)
from graam_pbx.asterisk.snapshot import TenantConf
from graam_pbx.asterisk.writer import remove_stale, write_changed
from graam_pbx.files import PRIVATE, FileAccess

# Below this many tenants the work stays in this process (one tenant renders in about 1 ms).
SHARD_THRESHOLD = 64
SHARDS_PER_PROCESS = 4


@dataclass(frozen=True, slots=True)
class ShardJob:
    config_dir: Path
    override_dir: Path | None
    agi_address: tuple[str, int]
    tenants: tuple[TenantConf, ...]
    agi_key: bytes | None = field(default=None, repr=False)
    access: FileAccess = PRIVATE


@dataclass(frozen=True, slots=True)
class ShardResult:
    written: frozenset[str]
    render_s: float
    # Tenants that could not be rendered (id → reason): their files were left as they were.
    failed: dict[int, str] = field(default_factory=dict)


def write_tenants(
    env: jinja2.Environment,
    config_dir: Path,
    tenants: Sequence[TenantConf],
    agi_address: tuple[str, int] = DEFAULT_AGI_ADDRESS,
    *,
    agi_key: bytes | None = None,
    access: FileAccess = PRIVATE,
) -> ShardResult:
    """Render these tenants, write the files that changed, prune the ones no longer made.

    A tenant that cannot be rendered (a RenderError, or any exception of a template) keeps
    its previous files and is reported in ``failed``; the others are written all the same.
    """
    rendering = 0.0
    written: set[str] = set()
    failed: dict[int, str] = {}
    for tenant in tenants:
        started = time.perf_counter()
        try:
            files = tenant_files(env, tenant, agi_address=agi_address, agi_key=agi_key)
        except Exception as err:
            failed[tenant.id] = render_failure(err)
            continue
        finally:
            rendering += time.perf_counter() - started
        written |= write_changed(config_dir, files, access)
        written |= remove_stale(config_dir, tenant.id, set(TENANT_FILES))
    return ShardResult(frozenset(written), rendering, failed)


# ---- inside a worker process ----------------------------------------------------------------

_ENVIRONMENTS: dict[Path | None, jinja2.Environment] = {}


def _run_shard(job: ShardJob) -> ShardResult:
    env = _ENVIRONMENTS.get(job.override_dir)
    if env is None:
        env = _ENVIRONMENTS[job.override_dir] = environment(job.override_dir)
    return write_tenants(
        env, job.config_dir, job.tenants, job.agi_address, agi_key=job.agi_key, access=job.access
    )


def _ready() -> int:
    return os.getpid()


# ---- in the control plane -------------------------------------------------------------------


class ShardedWriter:
    """Renders tenants' files with one set of templates, in worker processes (one per core,
    started on first need and kept for the next pass) or, for a few tenants, right here."""

    def __init__(
        self,
        override_dir: Path | None = None,
        agi_address: tuple[str, int] = DEFAULT_AGI_ADDRESS,
        *,
        processes: int | None = None,
        agi_key: bytes | None = None,
        access: FileAccess = PRIVATE,
    ) -> None:
        self.env = environment(override_dir)  # what this process renders with
        self._override_dir = override_dir  # the workers build the same environment from it
        self._agi_address = agi_address
        self._agi_key = agi_key
        self.access = access
        self.processes = max(1, processes or os.cpu_count() or 1)
        self._pool: Executor | None = None

    async def start(self) -> None:
        """Start the workers now (otherwise the first large pass pays for it)."""
        pool = self._executor()
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(pool, _ready) for _ in range(self.processes)))

    async def stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    async def write(self, config_dir: Path, tenants: Sequence[TenantConf]) -> ShardResult:
        """Every tenant's files written; render time is the sum over shards (CPU time)."""
        written = self.begin(config_dir)
        written.submit(tenants)
        return await written.finish()

    def begin(self, config_dir: Path) -> ShardPass:
        """A pass writing ``config_dir``, fed tenants as they are read (``ShardPass``)."""
        return ShardPass(self, config_dir)

    def _start(
        self, config_dir: Path, tenants: Sequence[TenantConf]
    ) -> list[asyncio.Future[ShardResult]]:
        """The tenants' files under way: here for a few, else in shards over the workers."""
        loop = asyncio.get_running_loop()
        if len(tenants) < SHARD_THRESHOLD:
            return [
                asyncio.ensure_future(
                    asyncio.to_thread(
                        write_tenants,
                        self.env,
                        config_dir,
                        tenants,
                        self._agi_address,
                        agi_key=self._agi_key,
                        access=self.access,
                    )
                )
            ]
        pool = self._executor()
        # Several shards per worker: the first starts while the next ones are still being
        # pickled, and a slow shard does not leave the other core idle.
        count = self.processes * SHARDS_PER_PROCESS
        return [
            loop.run_in_executor(
                pool,
                _run_shard,
                ShardJob(
                    config_dir,
                    self._override_dir,
                    self._agi_address,
                    tuple(tenants[i::count]),
                    self._agi_key,
                    self.access,
                ),
            )
            for i in range(min(count, len(tenants)))
        ]

    def _executor(self) -> Executor:
        if self._pool is None:
            # "spawn": the control plane runs threads, and forking a threaded process can
            # copy a lock held by another thread into the child.
            # Each worker sets its collector as the control plane does (graam_pbx/heap.py):
            # a shard makes hundreds of thousands of objects that live until it is written,
            # and the default thresholds walked them again and again.
            self._pool = ProcessPoolExecutor(
                self.processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=heap.settle_after_startup,
            )
        return self._pool


class ShardPass:
    """One pass of a ShardedWriter over a directory, fed tenants in parts: each part starts
    rendering at once (a full pass hands over each chunk of tenants it reads while it reads
    the next), and ``finish`` waits for all of them."""

    def __init__(self, writer: ShardedWriter, config_dir: Path) -> None:
        self._writer = writer
        self._config_dir = config_dir
        self._running: list[asyncio.Future[ShardResult]] = []
        self.written: frozenset[str] = frozenset()

    def submit(self, tenants: Sequence[TenantConf]) -> None:
        if tenants:
            self._running += self._writer._start(self._config_dir, tenants)

    async def finish(self) -> ShardResult:
        """What every part wrote. All parts are waited for even when one fails, and what the
        others wrote is kept in ``written`` before the first failure is raised: those files
        are owed a reload."""
        outcomes = await asyncio.gather(*self._running, return_exceptions=True)
        results = [r for r in outcomes if isinstance(r, ShardResult)]
        combined = ShardResult(
            frozenset().union(*(r.written for r in results)),
            sum(r.render_s for r in results),
            {tenant: why for r in results for tenant, why in r.failed.items()},
        )
        self.written = combined.written
        errors = [r for r in outcomes if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        return combined
