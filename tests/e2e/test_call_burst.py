"""Many calls at once through the real Asterisk: none fails, none is retransmitted, and every
socket of their media is on loopback.

A carrier (sipp, from 127.0.0.2) calls a tenant's number that answers, plays a one-second
announcement and hangs up. Before the sandbox had a hosts file and explicit media addresses,
Asterisk looked its own host name up at every call (through DNS, then A.ROOT-SERVERS.NET),
logged two ERRORs and two WARNINGs, held a SIP thread meanwhile and let INVITEs go
unanswered: at 20 calls/s sipp retransmitted hundreds of them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.asterisk.applier import ConfigApplier
from tests.conftest import Asterisk, RunningApp
from tests.e2e.announcements import announced_number
from tests.e2e.sipp import Sipp, SippPool
from tests.e2e.test_calls import CALLER, CARRIER_IP

Sessions = async_sessionmaker[AsyncSession]
Address = tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]

CALLS = 100
RATE = 20  # calls per second: about 20 calls up at once
ANNOUNCEMENT_SECONDS = 1.0


@pytest.fixture
async def announced_did(
    pbx: RunningApp, client: httpx.AsyncClient, sessions: Sessions, applier: ConfigApplier
) -> str:
    """A number of a tenant of its own that answers, plays one second and hangs up."""
    _, e164 = await announced_number(
        client,
        sessions,
        applier,
        prompt_name="burst",
        seconds=ANNOUNCEMENT_SECONDS,
        carrier_ip=CARRIER_IP,
    )
    return e164


# ---- Asterisk's sockets, as `ss -uanp` would list them ---------------------------------------


def udp_sockets(pid: int) -> list[Address]:
    """The local address of every UDP socket process ``pid`` holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("udp", "udp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                found.append(_address(fields[1]))
    return found


def _address(local: str) -> Address:
    """``0100007F:2710`` (each 32-bit word in host order, little-endian here)."""
    host, port = local.split(":")
    words = [bytes.fromhex(host[i : i + 8])[::-1] for i in range(0, len(host), 8)]
    return ipaddress.ip_address(b"".join(words)), int(port, 16)


def rtp_ports(asterisk: Asterisk) -> range:
    """The port range of the sandbox's rtp.conf."""
    conf = (asterisk.sandbox.etc_dir / "rtp.conf").read_text()
    bounds = dict(re.findall(r"^(rtpstart|rtpend)\s*=\s*(\d+)", conf, re.MULTILINE))
    return range(int(bounds["rtpstart"]), int(bounds["rtpend"]) + 1)


@dataclass
class MediaSockets:
    """Every RTP/RTCP socket seen in Asterisk while calls were up."""

    seen: set[Address]

    @property
    def off_loopback(self) -> set[Address]:
        return {address for address in self.seen if not address[0].is_loopback}


async def watch_media(asterisk: Asterisk, caller: Sipp) -> MediaSockets:
    """Asterisk's sockets in its RTP port range, sampled until ``caller`` ends."""
    pid = asterisk.sandbox.running_pid()
    assert pid is not None
    ports = rtp_ports(asterisk)
    media = MediaSockets(set())
    while caller.running:
        media.seen.update(a for a in udp_sockets(pid) if a[1] in ports)
        await asyncio.sleep(0.05)
    return media


def log_size(asterisk: Asterisk) -> int:
    path = asterisk.sandbox.log_dir / "messages.log"
    return path.stat().st_size if path.exists() else 0


def logged_since(asterisk: Asterisk, offset: int) -> list[str]:
    """ERROR and WARNING lines Asterisk logged after ``offset``."""
    with (asterisk.sandbox.log_dir / "messages.log").open("rb") as log:
        log.seek(offset)
        text = log.read().decode("utf-8", "replace")
    return [line for line in text.splitlines() if re.search(r"\] (ERROR|WARNING)\[", line)]


# ---- the tests -------------------------------------------------------------------------------


async def test_a_burst_of_calls_is_answered_without_a_failure_or_a_retransmission(
    asterisk: Asterisk, sipp: SippPool, announced_did: str
) -> None:
    offset = log_size(asterisk)
    burst = await sipp.uac(
        "carrier_call_answered.xml",
        ip=CARRIER_IP,
        service=announced_did,
        keys={"caller": CALLER},
        calls=CALLS,
        rate=RATE,
        timeout=120,
    ).start()
    media = await watch_media(asterisk, burst)
    result = await burst.wait()

    assert result.ok, result.describe()
    assert result.count("SuccessfulCall") == CALLS, result.stats
    assert result.count("FailedCall") == 0, result.stats
    assert result.count("Retransmissions") == 0, result.screen
    # What Asterisk retransmitted to sipp (a 200 OK whose ACK it waited for) counts too.
    assert set(result.retransmissions().values()) == {0}, result.screen
    assert media.seen, "no RTP socket of Asterisk seen while the calls were up"
    assert media.off_loopback == set(), media.off_loopback
    # No name lookup at any call: nothing logged (it was two ERRORs and two WARNINGs each).
    assert logged_since(asterisk, offset) == []


async def test_media_is_bound_to_and_announced_on_loopback(
    asterisk: Asterisk, sipp: SippPool, announced_did: str
) -> None:
    call = await sipp.uac(
        "carrier_call_answered.xml", ip=CARRIER_IP, service=announced_did, keys={"caller": CALLER}
    ).start()
    media = await watch_media(asterisk, call)
    result = await call.wait()
    assert result.ok, result.describe()

    # RTP and RTCP of the call: bound to the media address, never a wildcard or the
    # machine's own address.
    assert {address for address, _ in media.seen} == {ipaddress.ip_address("127.0.0.1")}, media
    assert len(media.seen) >= 2, media  # RTP and RTCP at least
    # The carrier's own SDP says 127.0.0.2: this is Asterisk's answer.
    assert "\nc=IN IP4 127.0.0.1" in result.messages, result.describe()
    pid = asterisk.sandbox.running_pid()
    assert pid is not None
    assert (ipaddress.ip_address("127.0.0.1"), asterisk.sip_port) in udp_sockets(pid)
