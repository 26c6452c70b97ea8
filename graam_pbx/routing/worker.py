"""Resolves trunks' host names in the background, so that Asterisk never has to.

Asterisk resolves an identify ``match`` host name at every ``res_pjsip`` reload, blocking
for as long as DNS takes, and drops the identify section when it fails. The generated
configuration therefore names addresses only; for a trunk known by a host name, they are
the ones this worker found, stored on the trunk (``resolved_addresses``, of
``resolved_host``). The row is written only when the answer changes (never its version: an
operator's ETag stays valid), and then the configuration is applied again. A failed lookup
keeps the addresses found before: a passing DNS fault never stops a carrier's calls.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx import sip_values
from graam_pbx.metrics import TRUNK_RESOLUTIONS
from graam_pbx.routing.models import Trunk

log = logging.getLogger(__name__)

Resolve = Callable[[str, int], Awaitable[list[str]]]
LOOKUPS_AT_ONCE = 8


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address of ``host`` (A and AAAA) as the system resolver answers, as CIDR."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_DGRAM, proto=socket.IPPROTO_UDP
    )
    networks: list[str] = []
    for _family, _type, _proto, _name, address in infos:
        network = sip_values.network(str(address[0]).split("%", 1)[0])
        if network not in networks:
            networks.append(network)
    return sorted(networks)


class TrunkResolver:
    """Keeps each enabled trunk's ``resolved_addresses`` equal to what its host name resolves to.

    A trunk whose host changed (or was just made) is looked up within ``tick`` seconds; every
    trunk again each ``interval``. ``on_change`` hears that stored addresses changed (only the
    trunks' files depend on them).
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        on_change: Callable[[], None] | None,
        *,
        interval: float,
        timeout: float,
        tick: float = 2.0,
        resolve: Resolve = resolve_host,
    ) -> None:
        self._sessions = sessions
        self._on_change = on_change
        self._interval = interval
        self._timeout = timeout
        self._tick = tick
        self._resolve = resolve
        self._looked_up: dict[int, tuple[str, float]] = {}  # trunk → (host, when)
        self._failing: set[int] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="trunk-resolver")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def _run(self) -> None:
        broken = False
        while True:
            try:
                await self.resolve_due()
            except Exception:
                if not broken:
                    log.exception("trunk host resolution failed; retrying")
                broken = True
            else:
                if broken:
                    log.info("trunk host resolution recovered")
                broken = False
            await asyncio.sleep(self._tick)

    async def resolve_due(self) -> int:
        """Look up every trunk that is due; returns how many trunks' addresses changed."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(
                        Trunk.id,
                        Trunk.host,
                        Trunk.port,
                        Trunk.resolved_host,
                        Trunk.resolved_addresses,
                    ).where(Trunk.enabled.is_(True))
                )
            ).all()
        now = time.monotonic()
        due = []
        for trunk_id, host, port, resolved_host, addresses in rows:
            if sip_values.is_ip(host):
                continue
            last_host, last_time = self._looked_up.get(trunk_id, (None, 0.0))
            fresh = last_host == host and now - last_time < self._interval
            if fresh and resolved_host == host:
                continue
            due.append((trunk_id, host, port, resolved_host, list(addresses)))
        if not due:
            return 0
        limit = asyncio.Semaphore(LOOKUPS_AT_ONCE)

        async def one(trunk_id: int, host: str, port: int) -> list[str] | None:
            async with limit:
                return await self._lookup(trunk_id, host, port)

        answers = await asyncio.gather(*(one(t, h, p) for t, h, p, _, _ in due))
        changed = 0
        for (trunk_id, host, _port, resolved_host, before), found in zip(due, answers, strict=True):
            self._looked_up[trunk_id] = (host, time.monotonic())
            if found is None:
                if resolved_host == host:
                    continue  # keep what an earlier lookup of this name found
                found = []
            if resolved_host == host and found == before:
                continue
            changed += await self._store(trunk_id, host, found)
        if changed and self._on_change is not None:
            self._on_change()
        return changed

    async def _lookup(self, trunk_id: int, host: str, port: int) -> list[str] | None:
        try:
            async with asyncio.timeout(self._timeout):
                found = await self._resolve(host, port)
        except (OSError, TimeoutError, ValueError) as err:
            TRUNK_RESOLUTIONS.labels(outcome="failed").inc()
            if trunk_id not in self._failing:
                self._failing.add(trunk_id)
                log.warning(
                    "trunk host does not resolve trunk_id=%d host=%s error=%s",
                    trunk_id,
                    host,
                    str(err) or type(err).__name__,
                )
            return None
        TRUNK_RESOLUTIONS.labels(outcome="resolved").inc()
        if trunk_id in self._failing:
            self._failing.discard(trunk_id)
            log.info("trunk host resolves again trunk_id=%d host=%s", trunk_id, host)
        return found

    async def _store(self, trunk_id: int, host: str, addresses: list[str]) -> int:
        # A bulk UPDATE: the version (the operator's ETag) does not move, and nothing is
        # written when the host changed meanwhile (the next pass looks the new one up).
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(Trunk)
                .where(Trunk.id == trunk_id, Trunk.host == host)
                .values(resolved_addresses=addresses, resolved_host=host)
                .execution_options(synchronize_session=False)
            )
        stored = int(getattr(result, "rowcount", 0) or 0)
        if stored:
            log.info(
                "trunk host resolved trunk_id=%d host=%s addresses=%s",
                trunk_id,
                host,
                ",".join(addresses) or "-",
            )
        return stored
