from __future__ import annotations

import io
import os
import struct
import wave
from datetime import UTC, datetime
from pathlib import Path

import numpy
import soundfile

from graam_pbx.recordings import spool
from graam_pbx.recordings.policy import Direction
from graam_pbx.recordings.store import LocalStore
from graam_pbx.recordings.worker import take
from tests.tones import tone_wav

LEG = "t12/node1-1796505434.12/node1-1796505434.13~inbound~7~31~+33612345678.wav"


def spooled(root: Path, name: str, data: bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_leg_is_named_by_its_tenant_call_channel_direction_queue_agent_and_party(
    tmp_path: Path,
) -> None:
    path = spooled(tmp_path, LEG, tone_wav(440, 1.0))
    spooled(tmp_path, "t12/x/not-a-leg.wav", b"")
    spooled(tmp_path, "elsewhere/y/a~inbound~0~0~.wav", b"")
    (leg,) = spool.files(tmp_path)
    assert leg == spool.SpoolFile(
        path=path,
        tenant_id=12,
        linkedid="node1-1796505434.12",
        uniqueid="node1-1796505434.13",
        direction=Direction.INBOUND,
        queue_id=7,
        agent_user_id=31,
        party_number="+33612345678",
    )


def test_no_queue_no_agent_no_party_are_nones() -> None:
    leg = spool.parse(Path("t1/c/u.1~outbound~0~0~.wav"))
    assert leg is not None
    assert (leg.queue_id, leg.agent_user_id, leg.party_number) == (None, None, None)


def test_a_file_asterisk_is_still_writing_is_not_finished(tmp_path: Path) -> None:
    data = bytearray(tone_wav(440, 1.0))
    data[40:44] = struct.pack("<I", 0)  # the header's sizes are written at close
    path = spooled(tmp_path, LEG, bytes(data))
    state = spool.state(path)
    assert state is not None and not state.finished
    assert state.duration_ms == 1000
    assert not state.ready(state.modified)
    assert state.ready(state.modified + spool.STALE_AFTER)  # never closed: taken anyway


def test_a_closed_file_is_finished(tmp_path: Path) -> None:
    state = spool.state(spooled(tmp_path, LEG, tone_wav(440, 1.5)))
    assert state is not None and state.finished
    assert (state.rate, state.duration_ms) == (8000, 1500)


def test_a_taken_leg_is_ogg_opus_in_the_store_with_its_checksum(tmp_path: Path) -> None:
    path = spooled(tmp_path / "spool", LEG, tone_wav(440, 2.0))
    os.utime(path, (1_800_000_000, 1_800_000_000))
    (leg,) = spool.files(tmp_path / "spool")
    store = LocalStore(tmp_path / "store")
    taken = take(leg, store, datetime.now(UTC))
    assert taken is not None
    assert taken.duration_ms == 2000
    assert taken.key == "t12/2027/01/15/node1-1796505434.13.ogg"
    stored = (tmp_path / "store" / taken.key).read_bytes()
    assert len(stored) == taken.size_bytes < len(tone_wav(440, 2.0)) // 4
    audio, rate = soundfile.read(io.BytesIO(stored), dtype="int16")
    assert rate == 8000 and abs(len(audio) - 16000) <= 160
    assert numpy.abs(audio.astype(numpy.int32)).max() > 4000


def test_a_file_that_is_not_16_bit_mono_pcm_is_refused(tmp_path: Path) -> None:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(b"\0" * 3200)
    assert spool.state(spooled(tmp_path, LEG, out.getvalue())) is None
