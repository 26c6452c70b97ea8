"""Recordings as Asterisk leaves them in its monitor spool, and what they become in the store.

``MixMonitor`` writes each recorded leg under ``<monitor spool>/graam/`` (dialplans/
agent_leg.conf.j2, context ``t<tenant>-record``)::

    t<tenant>/<linkedid>/<uniqueid>~<direction>~<queue or 0>~<agent or 0>~<party>.wav

8 kHz 16-bit mono PCM (Asterisk's ``wav`` format). Asterisk writes the WAV header's sizes
when it closes the file: until then they say less than the file holds, so a file whose header
matches its length is finished (``state``). A file that was never closed (Asterisk stopped
mid-call) is taken as it is once nothing has written to it for ``STALE_AFTER``.

The stored form is Ogg Opus (``MEDIA_TYPE``), mono at the WAV's rate: about a sixth of the
WAV's size, and played by every current browser.
"""

from __future__ import annotations

import io
import os
import re
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from graam_pbx.recordings.policy import Direction

SPOOL_SUBDIR = "graam"  # under Asterisk's monitor directory
ASTERISK_MONITOR = Path("/var/spool/asterisk/monitor")
MEDIA_TYPE = "audio/ogg; codecs=opus"
EXTENSION = ".ogg"
STALE_AFTER = timedelta(minutes=5)
EMPTY_AFTER = timedelta(minutes=1)  # a file with no audio at all is dropped after this

_NAME = re.compile(
    r"^(?P<uniqueid>[A-Za-z0-9_.-]{1,150})~(?P<direction>inbound|outbound|internal)"
    r"~(?P<queue>[0-9]{1,18})~(?P<agent>[0-9]{1,18})~(?P<party>[0-9+]{0,32})\.wav$"
)
_TENANT = re.compile(r"^t(?P<tenant>[0-9]{1,18})$")
_LINKEDID = re.compile(r"^[A-Za-z0-9_.-]{1,150}$")
_HEADER = 44  # RIFF, fmt (16 bytes of PCM format) and the data chunk's header, as Asterisk writes


@dataclass(frozen=True)
class SpoolFile:
    """One recorded leg, as its path names it."""

    path: Path
    tenant_id: int
    linkedid: str
    uniqueid: str
    direction: Direction
    queue_id: int | None
    agent_user_id: int | None
    party_number: str | None


def parse(path: Path) -> SpoolFile | None:
    """The leg a spool path names; None for any other file."""
    name = _NAME.fullmatch(path.name)
    tenant = _TENANT.fullmatch(path.parent.parent.name)
    if name is None or tenant is None or _LINKEDID.fullmatch(path.parent.name) is None:
        return None
    queue, agent = int(name["queue"]), int(name["agent"])
    return SpoolFile(
        path=path,
        tenant_id=int(tenant["tenant"]),
        linkedid=path.parent.name,
        uniqueid=name["uniqueid"],
        direction=Direction(name["direction"]),
        queue_id=queue or None,
        agent_user_id=agent or None,
        party_number=name["party"] or None,
    )


def files(root: Path) -> Iterator[SpoolFile]:
    """Every recorded leg under the spool's ``root`` (``<monitor>/graam``)."""
    try:
        tenants = list(os.scandir(root))
    except FileNotFoundError:
        return
    for tenant in tenants:
        if not tenant.is_dir(follow_symlinks=False):
            continue
        for call in os.scandir(tenant.path):
            if not call.is_dir(follow_symlinks=False):
                continue
            for leg in os.scandir(call.path):
                parsed = parse(Path(leg.path))
                if parsed is not None and leg.is_file(follow_symlinks=False):
                    yield parsed


@dataclass(frozen=True)
class WavState:
    finished: bool  # the header's sizes match the file (Asterisk closed it)
    rate: int
    data_bytes: int  # the audio the file holds
    modified: datetime

    @property
    def duration_ms(self) -> int:
        return self.data_bytes // 2 * 1000 // self.rate if self.rate else 0

    def ready(self, now: datetime) -> bool:
        """Whether the leg can be taken: finished, or left unfinished for ``STALE_AFTER``."""
        return self.finished or now - self.modified >= STALE_AFTER


def state(path: Path) -> WavState | None:
    """What the WAV at ``path`` holds; None when it is not a 16-bit mono PCM WAV."""
    with path.open("rb") as file:
        header = file.read(_HEADER)
        size = os.fstat(file.fileno()).st_size
        modified = datetime.fromtimestamp(os.fstat(file.fileno()).st_mtime, UTC)
    if len(header) < _HEADER or header[:4] != b"RIFF" or header[8:16] != b"WAVEfmt ":
        return None
    fmt, channels, rate, _, _, bits = struct.unpack("<HHIIHH", header[20:36])
    if fmt != 1 or channels != 1 or bits != 16 or header[36:40] != b"data":
        return None
    declared = struct.unpack("<I", header[40:44])[0]
    actual = size - _HEADER
    # Asterisk pads an odd data length with one byte at close.
    finished = declared > 0 and declared in (actual, actual - 1)
    return WavState(finished, rate, actual - actual % 2, modified)


def encode(path: Path, data_bytes: int, rate: int) -> bytes:
    """The leg's audio as Ogg Opus. Blocking (CPU): run in a thread."""
    import numpy
    import soundfile

    with path.open("rb") as file:
        file.seek(_HEADER)
        pcm = file.read(data_bytes)
    samples = numpy.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format="OGG", subtype="OPUS")
    return out.getvalue()


def storage_key(leg: SpoolFile, started_at: datetime) -> str:
    """Where the leg is kept in the store: by tenant and day, named by its channel."""
    day = started_at.astimezone(UTC)
    return f"t{leg.tenant_id}/{day:%Y/%m/%d}/{leg.uniqueid}{EXTENSION}"


def now() -> datetime:
    return datetime.fromtimestamp(time.time(), UTC)
