"""Asterisk's memory copies of devices' endpoints and AORs, expired when a device changes.

PJSIP's qualify sends OPTIONS to every registered phone once a minute, and each one read the
phone's endpoint and AOR from Postgres (two ``res_config_pgsql`` statements, each planned
anew): with 5,100 phones, about 0.3 of a core in Postgres all the time. Asterisk now keeps
the endpoints and AORs it reads in memory caches (``asterisk_conf/sorcery.conf``:
``graam-endpoints``, ``graam-aors``). The endpoint cache must be the first endpoint wizard:
listed after the files' wizard, PJSIP left the cached devices' state unpublished (no
``ContactStatus``, the device unavailable with a reachable contact). Auths are never cached,
so a password is always checked against Postgres.

A cached entry must not outlive the row it copies. Whatever writes a device's row in
``sip_device_rows`` (its triggers, whatever the writer) sends the device's id on
``graam_sip_devices`` at commit (migration ``0038_sip_devices_changed``); the acting process
hears it (``listener``) and has each node's ``SipCache`` expire those entries:

- **at once**, with ``SorceryMemoryCacheExpireObject`` per cache and device (more than
  ``EXPIRE_ALL_ABOVE`` devices, or ``*``: ``SorceryMemoryCacheExpire``, every entry);
- **again ``AGAIN_AFTER_S`` later**: a lookup that read the row before the commit may put the
  old copy in the cache after the first expiry;
- **every entry** when it starts, whenever the node's AMI connects (expiries were missed
  while it was away: its applier's resync asks for it) and whenever the LISTEN connects
  (notifications were missed while it was down; a new active worker's first connection
  included).

Asterisk also refreshes an entry read after 10 minutes in the cache, and drops one unread for
an hour (``object_lifetime_stale``, ``object_lifetime_maximum``): a bound, not the mechanism.
An expiry that Asterisk refuses because the entry is not cached is what it should be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from graam_pbx.ami import AmiError, AmiSupervisor
from graam_pbx.ami.errors import AmiActionError
from graam_pbx.cluster.signals import EVERYTHING, Listener

log = logging.getLogger(__name__)

CHANNEL = "graam_sip_devices"  # migration 0038's channel
CACHES = ("graam-endpoints", "graam-aors")  # sorcery.conf's cache names
AGAIN_AFTER_S = 1.0
EXPIRE_ALL_ABOVE = 50  # devices in one round past which every entry is expired at once
NOT_CACHED = "could not be expired"  # Asterisk's answer for an entry it does not hold
LISTENER_NAME = "graam-sip-cache"


def decode(payload: str) -> frozenset[str] | None:
    """The devices (SIP usernames) a notification names; None: every device."""
    if payload == EVERYTHING:
        return None
    return frozenset(part for part in payload.split(",") if part)


class SipCache:
    """One node's cached endpoints and AORs, expired as the module's text says."""

    def __init__(self, ami: AmiSupervisor) -> None:
        self._ami = ami
        self._ids: set[str] = set()
        self._everything = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._again: set[asyncio.TimerHandle] = set()
        self._refused: str | None = None
        self.rounds = 0  # rounds of expiries sent (tests wait on it)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"sip-cache {self._ami.node}")
        self.expire(None, again=False)

    async def stop(self) -> None:
        for handle in self._again:
            handle.cancel()
        self._again.clear()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def expire(self, ids: Iterable[str] | None, *, again: bool = True) -> None:
        """Expire these devices' entries (None: every entry) now, and again shortly after."""
        devices = None if ids is None else frozenset(ids)
        self._add(devices)
        if again and self._task is not None:
            loop = asyncio.get_running_loop()
            handle: asyncio.TimerHandle | None = None

            def later() -> None:
                if handle is not None:
                    self._again.discard(handle)
                self._add(devices)

            handle = loop.call_later(AGAIN_AFTER_S, later)
            self._again.add(handle)

    def _add(self, devices: frozenset[str] | None) -> None:
        if devices is None:
            self._everything = True
        else:
            self._ids |= devices
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            everything, ids = self._everything, self._ids
            self._everything, self._ids = False, set()
            if not everything and not ids:
                continue
            try:
                if everything or len(ids) > EXPIRE_ALL_ABOVE:
                    await self._expire_all()
                else:
                    await self._expire_each(sorted(ids))
            except AmiError as err:
                # Not connected: the connection's resync expires every entry when it is back.
                log.debug("sip cache expiry not sent node=%s: %s", self._ami.node, err)
            self.rounds += 1

    async def _expire_all(self) -> None:
        for cache in CACHES:
            await self._send("SorceryMemoryCacheExpire", {"Cache": cache})

    async def _expire_each(self, ids: list[str]) -> None:
        for device in ids:
            for cache in CACHES:
                await self._send(
                    "SorceryMemoryCacheExpireObject", {"Cache": cache, "Object": device}
                )

    async def _send(self, action: str, fields: dict[str, str]) -> None:
        try:
            await self._ami.action(action, fields, timeout=5)
        except AmiActionError as err:
            if NOT_CACHED in err.message:
                return
            # An Asterisk without the caches (an older sorcery.conf) reads Postgres each time.
            if err.message != self._refused:
                log.warning(
                    "sip cache expiry refused node=%s action=%s: %s",
                    self._ami.node,
                    action,
                    err.message,
                )
            self._refused = err.message


def listener(database_url: str, expire: Callable[[frozenset[str] | None], None]) -> Listener:
    """The LISTEN that hands each notification's devices to ``expire`` (every device when it
    connects: what was sent while it was down is unknown)."""
    return Listener(
        database_url,
        {CHANNEL: lambda payload: expire(decode(payload))},
        on_connected=lambda: expire(None),
        name=LISTENER_NAME,
    )
