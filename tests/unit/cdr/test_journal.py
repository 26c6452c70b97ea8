"""The CDR worker's local files: journal segments, dead letters, the CSV log and its checkpoint."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest

from graam_pbx.cdr import backfill
from graam_pbx.cdr.journal import Checkpoint, DeadLetters, Journal, JournalFull
from graam_pbx.cdr.parse import CdrRecord, record_from_csv, record_from_event
from tests.unit.cdr.test_parse import DATA, recorded_events, recorded_rows

RECORDS = [record_from_event(message) for message in recorded_events()]


def renumbered(count: int) -> list[CdrRecord]:
    """``count`` distinct records made from the recorded ones."""
    return [
        RECORDS[i % len(RECORDS)]._replace(uniqueid=f"graam-1.{i}", sequence=i)
        for i in range(count)
    ]


def opened(directory: Path, **options: int) -> Journal:
    journal = Journal(directory, max_bytes=options.pop("max_bytes", 1 << 20), **options)
    journal.open()
    return journal


def test_batches_come_back_in_order_across_segments_and_runs(tmp_path: Path) -> None:
    records = renumbered(60)
    journal = opened(tmp_path, segment_bytes=4096)
    for start in range(0, 60, 6):
        journal.append(records[start : start + 6])
    assert len(journal.segments()) > 1

    again = opened(tmp_path, segment_bytes=4096)  # a new process finds them
    read = [record for number in again.segments() for record in again.read(number)]

    assert read == records
    assert again.bytes == journal.bytes


def test_a_torn_last_batch_is_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    journal = opened(tmp_path)
    journal.append(RECORDS[:3])
    journal.append(RECORDS[3:6])
    [number] = journal.segments()
    segment = next(tmp_path.glob("*.jsonl"))
    whole = segment.read_bytes()
    segment.write_bytes(whole[:-25])  # the process died in the middle of the second write

    again = opened(tmp_path)

    assert again.read(number) == RECORDS[:3]
    assert segment.stat().st_size == again.bytes < len(whole)
    again.append(RECORDS[6:8])
    assert [r for n in again.segments() for r in again.read(n)] == RECORDS[:3] + RECORDS[6:8]


def test_a_corrupt_batch_ends_the_segment(tmp_path: Path) -> None:
    journal = opened(tmp_path)
    journal.append(RECORDS[:2])
    journal.append(RECORDS[2:4])
    segment = next(tmp_path.glob("*.jsonl"))
    data = bytearray(segment.read_bytes())
    data[-10] ^= 0x20  # one flipped bit in the second batch
    segment.write_bytes(bytes(data))

    again = opened(tmp_path)

    assert [r for n in again.segments() for r in again.read(n)] == RECORDS[:2]


def test_the_journal_is_bounded_and_says_how_full_it_is(tmp_path: Path) -> None:
    journal = opened(tmp_path, max_bytes=8192)
    journal.append(renumbered(5))
    assert 0 < journal.fill < 1

    with pytest.raises(JournalFull):
        journal.append(renumbered(40))

    assert journal.read(journal.segments()[0]) == renumbered(5)


def test_sealing_sends_appends_to_a_new_segment_and_removing_forgets_one(tmp_path: Path) -> None:
    journal = opened(tmp_path)
    journal.append(RECORDS[:2])
    journal.seal()
    journal.append(RECORDS[2:4])
    first, second = journal.segments()

    journal.remove(first)

    assert journal.segments() == [second]
    assert journal.read(second) == RECORDS[2:4]
    journal.remove(second)
    assert journal.empty
    assert list(tmp_path.glob("*.jsonl")) == []


def test_dead_letters_keep_the_reason_and_the_content(tmp_path: Path) -> None:
    letters = DeadLetters(tmp_path / "dead-letter.jsonl")

    assert letters.add("bad-time", "StartEpoch 'x' is not epoch seconds", "ami", [["a", "b"]])
    assert letters.add("bad-layout", "expected 25 fields", "csv", ["x\x00y", "é"])

    assert [(e["reason"], e["source"], e["content"]) for e in letters.entries()] == [
        ("bad-time", "ami", [["a", "b"]]),
        ("bad-layout", "csv", ["x\x00y", "é"]),
    ]
    assert letters.count == 2


def test_dead_letters_stop_at_their_bound(tmp_path: Path) -> None:
    letters = DeadLetters(tmp_path / "dead-letter.jsonl", max_bytes=300)

    assert letters.add("bad-text", "x" * 100, "ami", [])
    assert not letters.add("bad-text", "x" * 300, "ami", [])
    assert len(letters.entries()) == 1


def test_the_checkpoint_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "csv-checkpoint.json"
    assert Checkpoint.load(path) is None
    Checkpoint(1, 2, 3).save(path)

    assert Checkpoint.load(path) == Checkpoint(1, 2, 3)
    path.write_text("{not json")
    assert Checkpoint.load(path) is None


# ---- the CSV log ------------------------------------------------------------------------------


def read_all(log: Path, checkpoint: Checkpoint | None) -> tuple[list[list[str]], Checkpoint | None]:
    rows: list[list[str]] = []
    last = checkpoint
    for part in backfill.plan(log, checkpoint):
        offset = part.offset
        while chunk := backfill.read_chunk(dataclasses.replace(part, offset=offset), max_bytes=700):
            rows.extend(chunk.rows)
            last = chunk.checkpoint
            offset = last.offset
    return rows, last


def test_the_log_is_read_from_the_checkpoint_to_the_end(tmp_path: Path) -> None:
    log = tmp_path / "graam-cdr.csv"
    shutil.copyfile(DATA / "asterisk_cdr_log.csv", log)
    rows, checkpoint = read_all(log, None)
    assert rows == recorded_rows()

    with log.open("a") as out:
        out.write('"graam-cdr-1","half a row')  # Asterisk is still writing it
    more, after = read_all(log, checkpoint)
    assert more == []
    assert after == checkpoint

    with log.open("a") as out:
        out.write('"\n')
    more, after = read_all(log, checkpoint)
    assert more == [["graam-cdr-1", "half a row"]]
    assert after is not None and after.offset == log.stat().st_size


def test_a_rotated_log_is_finished_before_the_new_one_is_read(tmp_path: Path) -> None:
    log = tmp_path / "graam-cdr.csv"
    rows = recorded_rows()
    lines = (DATA / "asterisk_cdr_log.csv").read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:4]))
    _, checkpoint = read_all(log, None)
    with log.open("a") as out:
        out.write("".join(lines[4:7]))
    log.rename(tmp_path / "graam-cdr.csv.1")  # the operator's rotation
    log.write_text("".join(lines[7:]))  # Asterisk's next CDR starts a new file

    after_rotation, _ = read_all(log, checkpoint)

    assert after_rotation == rows[4:]


def test_a_log_rotated_twice_since_the_checkpoint_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "graam-cdr.csv"
    shutil.copyfile(DATA / "asterisk_cdr_log.csv", log)
    _, checkpoint = read_all(log, None)
    os.unlink(log)  # rotated away and deleted; the new file may get the same inode
    lines = (DATA / "asterisk_cdr_log.csv").read_text().splitlines(keepends=True)
    log.write_text("".join(lines[5:]))

    again, _ = read_all(log, checkpoint)

    assert again == recorded_rows()[5:]


def test_a_broken_line_is_one_refused_row_not_a_lost_chunk(tmp_path: Path) -> None:
    log = tmp_path / "graam-cdr.csv"
    lines = (DATA / "asterisk_cdr_log.csv").read_text().splitlines(keepends=True)
    log.write_text(lines[0] + '"graam-cdr-1","x\x00y",\n' + lines[1])

    rows, _ = read_all(log, None)
    parsed = []
    for row in rows:
        try:
            parsed.append(record_from_csv(row, "graam").uniqueid)
        except ValueError:
            parsed.append(None)

    assert parsed == ["graam-1795406879.3", None, "graam-1795406879.2"]
