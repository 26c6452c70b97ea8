"""A phone's media, played by the test itself: it speaks a tone to Asterisk and keeps every
sample Asterisk sends it, decoded, so a test can tell who hears whom (``tone_detect.py``).

A phone's SDP (``uas_answer_media.xml``, ``carrier_queue_hold.xml``) names the peer's port.
The peer speaks to Asterisk's media address of its call once the test names it
(``speak_to``: read over AMI, ``CHANNEL(rtp,src)``), or once Asterisk has sent it a first
packet, back to where that came from and in its codec (G.711 µ-law or A-law). A bridge of
two phones forwards only what it receives: its two peers are told where to speak.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
from collections.abc import AsyncIterator
from typing import Any, cast

from tests.e2e.rtp_pcap import FRAME_SAMPLES, PAYLOAD_TYPE_PCMU, SAMPLE_RATE, ulaw
from tests.e2e.sipp import free_udp_port
from tests.e2e.tone_detect import ToneLog

PAYLOAD_TYPE_PCMA = 8
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE


def _ulaw_sample(code: int) -> int:
    """G.711 µ-law to a 16-bit linear sample."""
    code = ~code & 0xFF
    magnitude = (((code & 0x0F) << 3) + 0x84) << ((code & 0x70) >> 4)
    return 0x84 - magnitude if code & 0x80 else magnitude - 0x84


def _alaw_sample(code: int) -> int:
    """G.711 A-law to a 16-bit linear sample."""
    code ^= 0x55
    magnitude = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    if segment == 0:
        magnitude += 8
    else:
        magnitude = (magnitude + 0x108) << (segment - 1)
    return magnitude if code & 0x80 else -magnitude


_ALAW_SEGMENT_ENDS = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def alaw(sample: int) -> int:
    """A 16-bit linear sample as G.711 A-law."""
    value = sample >> 3
    if value >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        value = -value - 1
    segment = next((i for i, end in enumerate(_ALAW_SEGMENT_ENDS) if value <= end), 8)
    if segment >= 8:
        return 0x7F ^ mask
    code = segment << 4
    code |= (value >> 1 if segment < 2 else value >> segment) & 0x0F
    return code ^ mask


_DECODE = {
    PAYLOAD_TYPE_PCMU: [_ulaw_sample(code) for code in range(256)],
    PAYLOAD_TYPE_PCMA: [_alaw_sample(code) for code in range(256)],
}
_ENCODE = {PAYLOAD_TYPE_PCMU: ulaw, PAYLOAD_TYPE_PCMA: alaw}


class RtpPeer(asyncio.DatagramProtocol):
    """One phone's media port: speaks ``hertz`` (None: silence) and keeps what it hears."""

    def __init__(self, hertz: float | None, level: int = 6000) -> None:
        self.hertz = hertz
        self.level = level
        self.samples: list[int] = []  # every sample Asterisk sent, decoded, in arrival order
        self.tones = ToneLog(self.samples)
        self._transport: asyncio.DatagramTransport | None = None
        self._speaking: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A datagram endpoint's transport (the selector loop's is not a DatagramTransport
        # subclass, though it is one).
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        payload_type = data[1] & 0x7F
        table = _DECODE.get(payload_type)
        if table is None:  # telephone-event, comfort noise: not audio
            return
        self.samples.extend(table[code] for code in data[12 + 4 * (data[0] & 0x0F) :])
        self.speak_to((addr[0], addr[1]), payload_type)

    def speak_to(self, remote: tuple[str, int], payload_type: int = PAYLOAD_TYPE_PCMA) -> None:
        """Start speaking to ``remote`` (nothing when already speaking): A-law, which every
        phone's SDP here offers, unless Asterisk's first packet said otherwise."""
        if self._speaking is None:
            self._speaking = asyncio.get_running_loop().create_task(
                self._speak(remote, payload_type)
            )

    def mark(self) -> int:
        """Where what is heard from now on starts in ``samples``."""
        return len(self.samples)

    def _frames(self, payload_type: int) -> list[bytes]:
        """A second of the tone (or of silence) as 20 ms payloads; a whole number of periods
        of any tone of whole hertz, so it loops without a click."""
        encode = _ENCODE[payload_type]
        samples = [
            int(self.level * math.sin(2 * math.pi * self.hertz * i / SAMPLE_RATE))
            if self.hertz
            else 0
            for i in range(SAMPLE_RATE)
        ]
        coded = bytes(encode(sample) for sample in samples)
        return [coded[i : i + FRAME_SAMPLES] for i in range(0, SAMPLE_RATE, FRAME_SAMPLES)]

    async def _speak(self, remote: tuple[str, int], payload_type: int) -> None:
        frames = self._frames(payload_type)
        loop = asyncio.get_running_loop()
        started = loop.time()
        sequence = 0
        while self._transport is not None and not self._transport.is_closing():
            marker = 0x80 if sequence == 0 else 0
            header = struct.pack(
                "!BBHII",
                0x80,
                marker | payload_type,
                sequence & 0xFFFF,
                (sequence * FRAME_SAMPLES) & 0xFFFFFFFF,
                0x47524143,
            )
            self._transport.sendto(header + frames[sequence % len(frames)], remote)
            sequence += 1
            # Paced by the clock, as a phone's sound card paces it.
            await asyncio.sleep(max(0.0, started + sequence * FRAME_SECONDS - loop.time()))

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._speaking is not None:
            self._speaking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._speaking


@contextlib.asynccontextmanager
async def rtp_peer(ip: str, hertz: float | None) -> AsyncIterator[tuple[RtpPeer, int]]:
    """A peer on a free port of ``ip`` (an even one, its RTCP neighbour free), and the port."""
    port = free_udp_port(ip, pair=True)
    _transport, peer = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: RtpPeer(hertz), local_addr=(ip, port)
    )
    try:
        yield peer, port
    finally:
        await peer.close()
