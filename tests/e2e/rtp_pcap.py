"""RTP recordings that sipp plays (``play_pcap_audio``) as the voice of a called party.

Debian's sip-tester ships one G.711 A-law sample of speech, too long and too steady to tell a
person from an answering machine; these are written here instead, in G.711 µ-law (payload
type 0, the first codec of the trunks' offer): a person says "allô ?" a few times with long
pauses, a machine speaks a long greeting of many short words. Asterisk's ``AMD()`` measures
words as stretches of frames louder than its silence threshold (256), so a tone at a few
thousand is a word and µ-law's zero is silence.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms per RTP packet
PAYLOAD_TYPE_PCMU = 0
ULAW_SILENCE = 0xFF
# Where the recording says it was sent: sipp keeps the ports' offsets and sends to the remote
# media address of each call, so these only need to be constant.
_SOURCE_PORT = 16000
_DESTINATION_PORT = 6000
_LOOPBACK = bytes([127, 0, 0, 1])

# (milliseconds, loud) stretches of each party's voice. The dialplan's AMD() analyses at most
# one second, starting a little after the answer: whenever it starts, a person gives it at
# most two short words and a pause longer than its after-greeting silence (a person, or not
# sure), never an initial silence long enough for a machine; a machine gives it a word every
# 200 ms, so its word count is reached well within the second.
PERSON = [(100, False), (400, True), *[(600, False), (300, True)] * 3, (8_000, False)]
MACHINE = [(60, False), *[(120, True), (80, False)] * 25, (3_000, False)]

PERSON_PCAP = "campaign_person.pcap"
MACHINE_PCAP = "campaign_machine.pcap"


def ulaw(sample: int) -> int:
    """One 16-bit linear sample as G.711 µ-law (ITU-T G.711, with its bias and clip)."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32_635) + 0x84
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not magnitude & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def voice(stretches: list[tuple[int, bool]], hertz: float = 420.0, level: int = 6000) -> bytes:
    """µ-law samples: a tone where ``loud``, silence elsewhere."""
    samples = bytearray()
    for milliseconds, loud in stretches:
        count = milliseconds * SAMPLE_RATE // 1000
        if not loud:
            samples += bytes([ULAW_SILENCE]) * count
            continue
        start = len(samples)
        samples += bytes(
            ulaw(int(level * math.sin(2 * math.pi * hertz * (start + i) / SAMPLE_RATE)))
            for i in range(count)
        )
    return bytes(samples)


def _ipv4_checksum(header: bytes) -> int:
    words: tuple[int, ...] = struct.unpack(f"!{len(header) // 2}H", header)
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _packet(payload: bytes, ip_id: int) -> bytes:
    """An Ethernet frame carrying one UDP datagram between loopback ports."""
    udp = struct.pack("!HHHH", _SOURCE_PORT, _DESTINATION_PORT, 8 + len(payload), 0) + payload
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ip_id, 0, 64, 17, 0, _LOOPBACK, _LOOPBACK
    )
    header = header[:10] + struct.pack("!H", _ipv4_checksum(header)) + header[12:]
    return b"\x00" * 12 + b"\x08\x00" + header + udp


def rtp_pcap(samples: bytes, ssrc: int = 0x47524141) -> bytes:
    """A pcap (Ethernet link type) of the samples as RTP packets of 20 ms, timed 20 ms apart."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65_535, 1))
    for index in range(0, len(samples) // FRAME_SAMPLES):
        chunk = samples[index * FRAME_SAMPLES : (index + 1) * FRAME_SAMPLES]
        marker = 0x80 if index == 0 else 0
        rtp = struct.pack(
            "!BBHII",
            0x80,
            marker | PAYLOAD_TYPE_PCMU,
            index & 0xFFFF,
            index * FRAME_SAMPLES,
            ssrc,
        )
        frame = _packet(rtp + chunk, index & 0xFFFF)
        microseconds = index * 20_000
        out += struct.pack(
            "<IIII", microseconds // 1_000_000, microseconds % 1_000_000, len(frame), len(frame)
        )
        out += frame
    return bytes(out)


def write_voices(directory: Path) -> None:
    """The person's and the machine's recordings in ``directory``, where the far end's
    scenario, copied beside them, finds them."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / PERSON_PCAP).write_bytes(rtp_pcap(voice(PERSON)))
    (directory / MACHINE_PCAP).write_bytes(rtp_pcap(voice(MACHINE)))


PAYLOAD_TYPE_EVENTS = 101  # telephone-event, as the scenarios' SDP offers it
_EVENTS = {**{str(digit): digit for digit in range(10)}, "*": 10, "#": 11}


def dtmf_pcap(digits: str, *, later: int = 0, ssrc: int = 0x47524142) -> bytes:
    """A pcap of ``digits`` as RFC 4733 events: each 100 ms long (a packet every 20 ms, the
    last three marked as its end, as phones send them), 100 ms apart.

    An event is known by its RTP timestamp: a receiver takes a second play of the same pcap
    for a repeat of events already ended, and ignores it. ``later``: the pcap's place among
    others played in one call (0, 1, …), which gives it sequence numbers and timestamps of
    its own."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65_535, 1))
    sequence = later * 1000
    at = 0  # microseconds
    for number, digit in enumerate(digits):
        timestamp = (later * 100 + number) * 1600  # 200 ms per digit, in 8 kHz units
        for step in range(1, 8):
            end = step >= 5
            duration = min(step, 5) * FRAME_SAMPLES
            payload = struct.pack("!BBH", _EVENTS[digit], (0x80 if end else 0) | 10, duration)
            marker = 0x80 if step == 1 else 0
            rtp = struct.pack(
                "!BBHII", 0x80, marker | PAYLOAD_TYPE_EVENTS, sequence, timestamp, ssrc
            )
            frame = _packet(rtp + payload, sequence)
            out += struct.pack("<IIII", at // 1_000_000, at % 1_000_000, len(frame), len(frame))
            out += frame
            sequence += 1
            at += 20_000 if step < 5 else 0  # the end is sent three times at once
        at += 100_000
    return bytes(out)
