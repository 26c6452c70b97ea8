"""Phones registered from sipp and reachable through Asterisk, whichever control plane (the
session's app, or a ``graam-pbx run`` of a test's own) holds the AMI connection."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from graam_pbx.ami import AmiSupervisor, EventBus, Message
from graam_pbx.cluster.supervisors import node_of_event
from tests.e2e.rtp_pcap import rtp_pcap, voice
from tests.e2e.sipp import SCENARIOS, Sipp, SippPool

PHONES_IP = "127.0.0.1"
SPEAKING_SCENARIO = "carrier_press_1_speaks.xml"
VOICE = "caller_voice.pcap"  # the name the scenario plays


async def reachable_phone(
    ami: AmiSupervisor,
    bus: EventBus,
    sipp: SippPool,
    device: dict[str, Any],
    scenario: str = "uas_answer.xml",
    *,
    node: str | None = None,
    keys: Mapping[str, str] | None = None,
) -> Sipp:
    """The device registered from a sipp UAS running ``scenario``, and reachable.

    Asterisk qualifies a new contact at once: the OPTIONS may reach the registering sipp, or
    the UAS that replaced it on the same port; until one answers, Asterisk will not ring it.

    With ``node`` (the phones register with that node, ``ami`` its AMI): every node reads the
    contacts of ps_contacts, so another node may qualify the phone too; only ``node``'s own
    ContactStatus counts (its GraamNode header), and ``node`` is asked to qualify the phone
    once its UAS is up. ``keys`` are the scenario's (``-key``), e.g. where its SDP says its
    media is.
    """
    name = device["sip_username"]
    statuses: asyncio.Queue[str] = asyncio.Queue()

    async def on_status(message: Message) -> None:
        if message.get("AOR") == name and (node is None or node_of_event(message) == node):
            statuses.put_nowait(message.get("ContactStatus", ""))

    subscription = bus.subscribe(f"e2e-contact-{uuid.uuid4().hex}", ["ContactStatus"], on_status)
    try:
        registering = sipp.uac(
            "register.xml", ip=PHONES_IP, service=name, auth=(name, device["password"])
        )
        registration = await registering.run()
        assert registration.ok, registration.describe()
        phone = await sipp.uas(scenario, ip=PHONES_IP, port=registering.port, keys=keys).start()
        if node is not None:
            await ami.command(f"pjsip qualify {name}")
        try:
            async with asyncio.timeout(20):
                while (status := await statuses.get()) != "Reachable":
                    if status == "Unreachable":
                        await ami.command(f"pjsip qualify {name}")
        except TimeoutError:
            ended = await phone.stop()
            raise AssertionError(f"{name} never became reachable:\n{ended.describe()}") from None
        return phone
    finally:
        await bus.unsubscribe(subscription)


def speaking_caller(
    sipp: SippPool, workdir: Path, did: str, *, carrier_ip: str, caller: str = "+33612345678"
) -> Sipp:
    """The carrier's caller who dials ``did``, presses 1 and speaks a minute of tone (not
    started yet): the scenario beside the voice it plays."""
    directory = workdir / "speaking-caller"
    directory.mkdir(exist_ok=True)
    (directory / VOICE).write_bytes(rtp_pcap(voice([(60_000, True)])))
    scenario = directory / SPEAKING_SCENARIO
    shutil.copyfile(SCENARIOS / SPEAKING_SCENARIO, scenario)
    return sipp.uac(str(scenario), ip=carrier_ip, service=did, keys={"caller": caller}, timeout=120)
