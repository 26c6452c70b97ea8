"""A device's new contact is qualified at once, asked again while PJSIP is still setting its
AOR up; trunks and other statuses are left alone."""

from __future__ import annotations

import asyncio

from graam_pbx.ami import EventBus, Message
from graam_pbx.ami.bus import NODE_HEADER
from graam_pbx.asterisk.qualify import FirstQualify


class FakeAmi:
    """Answers ``pjsip qualify`` as PJSIP does: nothing until the AOR is set up."""

    node = "local"

    def __init__(self, empty_answers: int) -> None:
        self.commands: list[str] = []
        self._empty = empty_answers
        self.done = asyncio.Event()

    async def command(self, command: str, timeout: float) -> str:
        self.commands.append(command)
        if self._empty > 0:
            self._empty -= 1
            return ""
        self.done.set()
        name = command.rsplit(" ", 1)[-1]
        return f"Qualifying AOR '{name}' on endpoint '{name}'\n"


def status(aor: str, value: str, node: str | None = None) -> Message:
    fields = [("Event", "ContactStatus"), ("AOR", aor), ("ContactStatus", value)]
    return Message(fields + ([(NODE_HEADER, node)] if node else []))


async def test_a_new_contact_is_qualified_until_pjsip_takes_it() -> None:
    bus, ami = EventBus(), FakeAmi(empty_answers=2)
    await bus.start()
    qualify = FirstQualify(ami, bus)  # type: ignore[arg-type]
    await qualify.start()
    try:
        bus.publish(status("trunk-acme", "Created"))  # a trunk's: files, not ours
        bus.publish(status("acme-desk1", "Reachable"))  # already qualified
        bus.publish(status("acme-desk2", "Created", node="nodeb"))  # another node's
        bus.publish(status("acme-desk1", "NonQualified", node="local"))  # a new contact
        async with asyncio.timeout(5):
            await ami.done.wait()
    finally:
        await qualify.stop()
        await bus.stop()
    assert ami.commands == ["pjsip qualify acme-desk1"] * 3
