"""A device's first registration on a node is qualified at once, as it was with files.

Asterisk's PJSIP qualifies an AOR it knows the moment its first contact registers. With
AORs in Postgres (realtime.py), an AOR appears to PJSIP's qualify only when its first contact
does; PJSIP then loads that contact with the AOR and schedules the AOR's first OPTIONS at a
random time within ``qualify_frequency`` (60 s) rather than at once. Until then the AOR counts
no available contact: the device's state is "unavailable", so queues skip it, and
``ContactStatus`` says nothing but "NonQualified".

So when a contact is created, this asks ``pjsip qualify <device>``: the OPTIONS go out now,
and the contact's status (Reachable or Unreachable) follows as it did with files. PJSIP may
still be setting the AOR up when the event arrives (the command then answers without
"Qualifying AOR"): it is asked again, a few times, shortly after.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from graam_pbx.ami import AmiError, AmiSupervisor, EventBus, Message, Subscription
from graam_pbx.ami.bus import sent_by
from graam_pbx.asterisk.reloads import Backoff

log = logging.getLogger(__name__)

# Device endpoints (and their AORs) are named by sip_username; nothing else is sent to the CLI.
_AOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
QUALIFYING = "Qualifying AOR"
# How a new contact of an AOR PJSIP had not set up shows: "NonQualified" (its AOR loaded with
# it), or "Created".
NEW_CONTACT = ("Created", "NonQualified")
TRUNK_PREFIX = "trunk-"  # pjsip_trunks.conf.j2's endpoint and AOR names
TRIES = 8
RETRY = Backoff(first=0.05, cap=1.0)


class FirstQualify:
    """Qualifies each newly registered contact's device at once (see the module's text)."""

    def __init__(self, ami: AmiSupervisor, bus: EventBus) -> None:
        self._ami = ami
        self._bus = bus
        self._subscription: Subscription | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        self._subscription = self._bus.subscribe(
            f"sip-first-qualify {self._ami.node}", ["ContactStatus"], self._on_status
        )

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._bus.unsubscribe(self._subscription)
            self._subscription = None
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _on_status(self, message: Message) -> None:
        if message.get("ContactStatus") not in NEW_CONTACT or not sent_by(message, self._ami.node):
            return
        aor = message.get("AOR", "")
        # Trunks' AORs are files' (permanent contacts, qualified as configured): devices only.
        if not _AOR.match(aor) or aor.startswith(TRUNK_PREFIX) or aor in self._tasks:
            return
        task = asyncio.create_task(self._qualify(aor), name=f"sip-first-qualify {aor}")
        self._tasks[aor] = task
        task.add_done_callback(lambda _: self._tasks.pop(aor, None))

    async def _qualify(self, aor: str) -> None:
        for attempt in range(1, TRIES + 1):
            try:
                answer = await self._ami.command(f"pjsip qualify {aor}", timeout=10)
            except AmiError as err:
                answer = f"{type(err).__name__}: {err}"
            if QUALIFYING in answer:
                return
            await asyncio.sleep(RETRY.delay(attempt))
        log.info("new contact not qualified at once; PJSIP will in time aor=%s", aor)
