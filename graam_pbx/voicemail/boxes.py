"""Passes over voicemail boxes, woken by Asterisk's ``MessageWaiting`` for one box.

The components that read the boxes' spool after Asterisk announced a change (the e-mail
notifier, the ``voicemail.left`` events) share this: an event (``Mailbox: 820@t12``) asks for
that box; a resync, the start or a periodic scan asks for every box; a pass takes what was
asked since the last one.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from graam_pbx.ami import RESYNC_EVENT, EventBus, Message
from graam_pbx.ami.passes import PassRunner

_MAILBOX = re.compile(r"^(?P<number>[0-9]+)@t(?P<tenant>[0-9]+)$")

BoxKey = tuple[int, str]  # (tenant id, box number)


def box_of_mailbox(mailbox: str) -> BoxKey | None:
    """(tenant, box number) of an AMI ``Mailbox`` value such as ``820@t12``; None otherwise."""
    match = _MAILBOX.fullmatch(mailbox.strip())
    if match is None:
        return None
    return int(match.group("tenant")), match.group("number")


class BoxPasses(PassRunner):
    """Passes over the boxes asked for since the last pass (None: every box)."""

    def __init__(self, bus: EventBus, name: str, scan_interval: float) -> None:
        super().__init__(bus, name, ["MessageWaiting"], scan_interval)
        self._everything = True  # the first pass looks at every box
        self._boxes: set[BoxKey] = set()

    def request(self, boxes: Collection[BoxKey] | None = None) -> None:
        """Look at these boxes (None: every box) as soon as possible."""
        if boxes is None:
            self._everything = True
        else:
            self._boxes.update(boxes)
        self._wake_soon()

    def _on_event(self, message: Message) -> None:
        if message.event == RESYNC_EVENT:
            self.request(None)
            return
        box = box_of_mailbox(message.get("Mailbox", ""))
        if box is not None:
            self.request([box])

    def _asked(self, woken: bool) -> set[BoxKey] | None:
        """The boxes asked for since the last pass (None: every box; so is a periodic scan,
        which catches up missed events and retries)."""
        if not woken:
            self._everything = True
        everything, boxes = self._everything, self._boxes
        self._everything, self._boxes = False, set()
        return None if everything else boxes
