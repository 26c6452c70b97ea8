"""Callers waiting in a queue hear music: Debian's for ``default``, the tenant's own for its
classes. Proven on the real Asterisk: its own listing of classes and files, the AMI event of
the class it started, and the RTP a carrier receives while nobody answers."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami.protocol import Message
from graam_pbx.asterisk.applier import ConfigApplier
from tests.conftest import RunningApp
from tests.e2e.sipp import SippPool, free_udp_port
from tests.e2e.test_calls import (
    CALLER,
    CARRIER_IP,
    ami_events,
    created,
    new_number,
    new_trunk,
    route_number,
)
from tests.factories import TenantWorld, make_world, unique
from tests.tones import tone_wav

Sessions = async_sessionmaker[AsyncSession]
PCMA = 8
DEBIAN_MOH = "/usr/share/asterisk/moh"  # asterisk-moh-opsound-gsm, asterisk_conf/musiconhold.conf


async def cli(pbx: RunningApp, command: str) -> str:
    return await pbx.runtime.ami.command(command)


def files_of(listing: str, moh_class: str) -> list[str]:
    """The files ``moh show files`` lists under one class."""
    section = re.search(
        rf"^Class: {re.escape(moh_class)}\s*$(.*?)(?=^Class: |\Z)", listing, re.M | re.S
    )
    return re.findall(r"File: (\S+)", section.group(1)) if section else []


async def eventually_listed(pbx: RunningApp, moh_class: str, timeout: float = 15) -> list[str]:
    """The files of ``moh_class`` once Asterisk lists the class with files."""
    async with asyncio.timeout(timeout):
        while not (files := files_of(await cli(pbx, "moh show files"), moh_class)):
            await asyncio.sleep(0.1)
    return files


class RtpListener(asyncio.DatagramProtocol):
    """The carrier's media port: every RTP packet Asterisk sends to the caller."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.arrived = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.packets.append(data)
        self.arrived.set()

    def sounding(self) -> list[bytes]:
        """A-law payloads that are not silence (silence is one or two codes around 0xD5)."""
        payloads = []
        for packet in self.packets:
            if len(packet) < 12 or packet[1] & 0x7F != PCMA:
                continue
            payload = packet[12 + 4 * (packet[0] & 0x0F) :]
            if len(set(payload)) >= 16:
                payloads.append(payload)
        return payloads

    async def wait_for_sound(self, packets: int, timeout: float = 15) -> None:
        try:
            async with asyncio.timeout(timeout):
                while len(self.sounding()) < packets:
                    self.arrived.clear()
                    await self.arrived.wait()
        except TimeoutError:
            first = self.packets[0][:40].hex() if self.packets else "none"
            raise AssertionError(
                f"{len(self.sounding())} packets of sound of {len(self.packets)} received "
                f"within {timeout:g} s (first: {first})"
            ) from None


async def queue_on_a_number(
    client: httpx.AsyncClient, world: TenantWorld, music_on_hold: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A queue nobody answers, playing ``music_on_hold``, on a new number of the tenant."""
    queue = await created(
        await client.post(
            "/api/v1/queues",
            headers=world.admin.headers,
            json={"name": unique("q"), "music_on_hold": music_on_hold},
        )
    )
    number = await new_number(client, world)
    await route_number(client, world, number, {"type": "queue", "id": queue["id"]})
    await new_trunk(client, world, CARRIER_IP)
    return queue, number


async def held_call(pbx: RunningApp, sipp: SippPool, did: str) -> tuple[Message, RtpListener]:
    """The carrier calls ``did`` and waits in its queue: the MusicOnHoldStart Asterisk reports
    for the caller, and what the caller received until 50 packets (1 s) of sound came."""
    loop = asyncio.get_running_loop()
    rtp_port = free_udp_port(CARRIER_IP, pair=True)
    transport, listener = await loop.create_datagram_endpoint(
        RtpListener, local_addr=(CARRIER_IP, rtp_port)
    )
    try:
        async with ami_events(pbx, "MusicOnHoldStart") as events:
            caller = await sipp.uac(
                "carrier_queue_hold.xml",
                ip=CARRIER_IP,
                service=did,
                keys={"caller": CALLER, "rtp_ip": CARRIER_IP, "rtp_port": str(rtp_port)},
            ).start()
            started = await events.wait_for(lambda event: True, timeout=20)
        await listener.wait_for_sound(50)
        await pbx.runtime.ami.action("Hangup", {"Channel": started["Channel"]})
        result = await caller.wait()
        assert result.ok, result.describe()
    finally:
        transport.close()
    return started, listener


async def test_the_default_class_plays_debians_hold_music(pbx: RunningApp) -> None:
    classes = await cli(pbx, "moh show classes")
    assert re.search(r"^Class: default\s*$", classes, re.M), classes
    assert f"Directory: {DEBIAN_MOH}" in classes
    files = files_of(await cli(pbx, "moh show files"), "default")
    assert files, "the default class has no files"
    assert all(f.startswith(f"{DEBIAN_MOH}/") for f in files), files


async def test_a_caller_in_a_queue_hears_the_default_music(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    _, number = await queue_on_a_number(client, world, "default")
    await applier.settled()
    started, listener = await held_call(pbx, sipp, number["e164"])
    assert started["Class"] == "default", started
    assert len(listener.sounding()) >= 50


async def test_a_tenants_own_class_is_made_of_its_prompts_and_played(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    prompts = []
    for hertz in (440, 660):
        uploaded = await client.post(
            "/api/v1/prompts",
            headers=world.admin.headers,
            data={"name": unique("tone")},
            files={"file": ("tone.wav", tone_wav(hertz), "audio/wav")},
        )
        prompts.append(await created(uploaded))
    moh = await created(
        await client.post(
            "/api/v1/moh-classes",
            headers=world.admin.headers,
            json={"name": "jazz", "prompt_ids": [p["id"] for p in prompts]},
        )
    )
    asterisk_class = f"t{world.tenant_id}-jazz"
    assert moh["asterisk_class"] == asterisk_class
    _, number = await queue_on_a_number(client, world, "jazz")
    await applier.settled()

    files = await eventually_listed(pbx, asterisk_class)
    names = [Path(f).name for f in files]
    assert names == [f"{i:02d}-p{p['id']}-{p['sha256'][:12]}" for i, p in enumerate(prompts)]
    assert all(f.startswith(f"/var/lib/asterisk/graam-sounds/t{world.tenant_id}/") for f in files)

    started, listener = await held_call(pbx, sipp, number["e164"])
    assert started["Class"] == asterisk_class, started
    assert len(listener.sounding()) >= 50


async def test_new_music_for_a_class_is_live_and_a_deleted_class_is_gone(
    pbx: RunningApp, client: httpx.AsyncClient, sessions: Sessions, applier: ConfigApplier
) -> None:
    world = await make_world(client, sessions)
    first, second = [
        await created(
            await client.post(
                "/api/v1/prompts",
                headers=world.admin.headers,
                data={"name": unique("tone")},
                files={"file": ("tone.wav", tone_wav(hertz), "audio/wav")},
            )
        )
        for hertz in (500, 700)
    ]
    moh = await created(
        await client.post(
            "/api/v1/moh-classes",
            headers=world.admin.headers,
            json={"name": "calm", "prompt_ids": [first["id"]]},
        )
    )
    asterisk_class = f"t{world.tenant_id}-calm"
    await applier.settled()
    assert [Path(f).name for f in await eventually_listed(pbx, asterisk_class)] == [
        f"00-p{first['id']}-{first['sha256'][:12]}"
    ]

    url = f"/api/v1/moh-classes/{moh['id']}"
    changed = await client.patch(
        url, headers=world.admin.headers, json={"prompt_ids": [second["id"]]}
    )
    assert changed.status_code == 200, changed.text
    await applier.settled()
    wanted = [f"00-p{second['id']}-{second['sha256'][:12]}"]
    async with asyncio.timeout(15):
        while [
            Path(f).name for f in files_of(await cli(pbx, "moh show files"), asterisk_class)
        ] != wanted:
            await asyncio.sleep(0.1)

    assert (await client.delete(url, headers=world.admin.headers)).status_code == 204
    await applier.settled()
    async with asyncio.timeout(15):
        while f"Class: {asterisk_class}" in await cli(pbx, "moh show classes"):
            await asyncio.sleep(0.1)
