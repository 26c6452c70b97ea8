"""Reading Asterisk's voicemail spool: msgNNNN.txt as app_voicemail writes it."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graam_pbx.voicemail.boxes import box_of_mailbox
from graam_pbx.voicemail.mail import BoxAddress, SmtpRelay, compose
from graam_pbx.voicemail.spool import (
    MalformedMessage,
    find_message,
    parse_message_info,
    read_box,
    split_caller_id,
)

# What app_voicemail 22 writes (leave_voicemail), then appends once the recording is over.
MESSAGE_TXT = """;
; Message Information file
;
[message]
origmailbox=820
context=t12-dest
exten=vm-820
rdnis=unknown
priority=3
callerchan=PJSIP/trunk-carrier-00000004
callerid="Alice Martin" <+33612345678>
origdate=Thu Dec  3 09:40:12 AM UTC 2026
origtime=1796290812
category=
msg_id=1796290812-0000000a
flag=
duration=4
"""


def test_a_message_file_gives_its_id_caller_time_and_length() -> None:
    info = parse_message_info(MESSAGE_TXT)
    assert info.msg_id == "1796290812-0000000a"
    assert info.caller_id == '"Alice Martin" <+33612345678>'
    assert info.caller_name == "Alice Martin"
    assert info.caller_number == "+33612345678"
    assert info.duration == 4
    assert info.received_at == datetime(2026, 12, 3, 9, 40, 12, tzinfo=UTC)
    assert info.urgent is False
    assert info.original_box == "820"


def test_an_urgent_message_is_flagged() -> None:
    info = parse_message_info(MESSAGE_TXT.replace("flag=\n", "flag=Urgent\n"))
    assert info.urgent is True


def test_a_message_still_being_recorded_has_no_duration_yet() -> None:
    # The file exists before the recording ends; duration is appended at the end.
    text = MESSAGE_TXT.split("flag=")[0]
    assert parse_message_info(text).duration == 0


@pytest.mark.parametrize(
    ("caller_id", "name", "number"),
    [
        ('"Alice" <201>', "Alice", "201"),
        ("Bob <+33100000000>", "Bob", "+33100000000"),
        ("<0612345678>", None, "0612345678"),
        ("+33612345678", None, "+33612345678"),
        ("Unknown", None, None),
        ("", None, None),
        ("Reception", "Reception", None),
    ],
)
def test_caller_ids_split_into_name_and_number(
    caller_id: str, name: str | None, number: str | None
) -> None:
    assert split_caller_id(caller_id) == (name, number)


@pytest.mark.parametrize(
    "text",
    [
        "",
        MESSAGE_TXT.replace("msg_id=1796290812-0000000a\n", ""),
        MESSAGE_TXT.replace("msg_id=1796290812-0000000a", "msg_id=../../etc/passwd"),
        MESSAGE_TXT.replace("origtime=1796290812", "origtime=yesterday"),
        MESSAGE_TXT.replace("[message]", "[other]"),
    ],
)
def test_a_file_that_is_not_a_message_is_refused(text: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_message_info(text)


@given(st.text())
def test_any_text_parses_or_is_refused_cleanly(text: str) -> None:
    try:
        info = parse_message_info(text)
    except MalformedMessage:
        return
    assert info.duration >= 0


def _store(directory: Path, folder: str, index: int, msg_id: str, origtime: int) -> None:
    path = directory / folder
    path.mkdir(parents=True, exist_ok=True)
    text = MESSAGE_TXT.replace("1796290812-0000000a", msg_id).replace(
        "origtime=1796290812", f"origtime={origtime}"
    )
    (path / f"msg{index:04d}.txt").write_text(text)
    (path / f"msg{index:04d}.wav").write_bytes(b"RIFF")


def test_a_box_lists_every_folder_newest_first_and_skips_what_is_not_a_message(
    tmp_path: Path,
) -> None:
    _store(tmp_path, "INBOX", 0, "1796290900-00000002", 1796290900)
    _store(tmp_path, "Old", 0, "1796290800-00000001", 1796290800)
    _store(tmp_path, "Old", 1, "1796291000-00000003", 1796291000)
    (tmp_path / "INBOX" / "msg0001.txt").write_text("garbage")
    (tmp_path / "tmp").mkdir()
    (tmp_path / "INBOX" / ".lock").write_text("")

    messages = read_box(tmp_path)
    assert [(m.folder, m.index, m.msg_id) for m in messages] == [
        ("Old", 1, "1796291000-00000003"),
        ("INBOX", 0, "1796290900-00000002"),
        ("Old", 0, "1796290800-00000001"),
    ]
    assert [m.read for m in messages] == [True, False, True]
    found = find_message(tmp_path, "1796290900-00000002")
    assert found is not None and found.audio_path == tmp_path / "INBOX" / "msg0000.wav"
    assert find_message(tmp_path, "1796290900-000000ff") is None
    assert read_box(tmp_path / "no-such-box") == []


def test_mwi_mailboxes_name_their_tenant_and_box() -> None:
    assert box_of_mailbox("820@t12") == (12, "820")
    assert box_of_mailbox("820@default") is None
    assert box_of_mailbox("820") is None


def test_the_email_names_the_caller_and_carries_the_wav() -> None:
    relay = SmtpRelay(host="127.0.0.1", port=25, sender="pbx@acme.example")
    box = BoxAddress(tenant_id=12, box_id=3, number="820", name="Support", email="a@acme.example")
    audio = b"RIFF\x00\x00\x00\x00WAVEfmt "
    raw = compose(relay, box, parse_message_info(MESSAGE_TXT), audio).as_bytes()

    mail: Message = message_from_bytes(raw)
    assert mail["To"] == "a@acme.example"
    assert mail["From"] == "pbx@acme.example"
    assert "Alice Martin (+33612345678)" in mail["Subject"]
    assert mail["Message-ID"] == "<vm.t12.b3.1796290812-0000000a@acme.example>"
    (attachment,) = [part for part in mail.walk() if part.get_filename()]
    assert attachment.get_content_type() == "audio/wav"
    assert attachment.get_payload(decode=True) == audio
