"""Voicemail messages as Asterisk's app_voicemail stores them (file storage), read-only.

A box's messages live under ``<spool>/<context>/<box>/<folder>/``: ``msgNNNN.txt`` (what
Asterisk knows of the message) beside its audio, ``msgNNNN.wav``. The numbers are an index
that Asterisk keeps contiguous and renumbers whenever a message leaves a folder; the stable
name of a message is the ``msg_id`` Asterisk writes into its ``.txt`` and keeps when it moves
the message. Moving and removing are left to Asterisk (AMI ``VoicemailMove`` and
``VoicemailRemove``), which locks the folder, renumbers and refreshes the MWI counts itself;
this module only reads.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ASTERISK_SPOOL = Path("/var/spool/asterisk/voicemail")  # where Debian's Asterisk keeps them

# Asterisk's folders, in the order a user sees them; new messages are in INBOX (or Urgent).
FOLDERS = (
    "INBOX",
    "Urgent",
    "Old",
    "Work",
    "Family",
    "Friends",
    "Cust1",
    "Cust2",
    "Cust3",
    "Cust4",
    "Cust5",
)
NEW_FOLDERS = frozenset({"INBOX", "Urgent"})
READ_FOLDER = "Old"

# app_voicemail's generate_msg_id: "<epoch seconds>-<counter as 8 hex digits>".
MSG_ID_PATTERN = r"^[0-9]{1,20}-[0-9a-f]{1,16}$"
_MSG_ID = re.compile(MSG_ID_PATTERN)
_MSG_FILE = re.compile(r"^msg([0-9]{4})\.txt$")
# callerid as Asterisk writes it: "Name" <number>, or the number (or name) alone.
_CALLER = re.compile(r'^\s*(?:"(?P<quoted>[^"]*)"|(?P<bare>[^<]*?))\s*<(?P<number>[^>]*)>\s*$')


class MalformedMessage(ValueError):
    """A msgNNNN.txt that does not describe a message (no msg_id, no time)."""


@dataclass(frozen=True)
class MessageInfo:
    """What a msgNNNN.txt says about one message."""

    msg_id: str
    caller_id: str  # as Asterisk wrote it, e.g. '"Alice" <201>' or '+33612345678'
    caller_name: str | None
    caller_number: str | None
    duration: int  # seconds
    received_at: datetime
    urgent: bool
    original_box: str | None


@dataclass(frozen=True)
class StoredMessage:
    """A message found in a box's folder: its description and where its files are."""

    info: MessageInfo
    folder: str
    index: int  # the NNNN of msgNNNN: changes whenever Asterisk renumbers the folder
    path: Path  # msgNNNN.txt

    @property
    def msg_id(self) -> str:
        return self.info.msg_id

    @property
    def read(self) -> bool:
        return self.folder not in NEW_FOLDERS

    @property
    def audio_path(self) -> Path:
        return self.path.with_suffix(".wav")


def is_msg_id(value: str) -> bool:
    """Whether ``value`` has the shape of an id Asterisk gives a message."""
    return _MSG_ID.fullmatch(value) is not None


def split_caller_id(caller_id: str) -> tuple[str | None, str | None]:
    """(name, number) of a callerid value; ``Unknown`` and empty parts are None."""
    text = caller_id.strip()
    if not text or text.lower() == "unknown":
        return None, None
    match = _CALLER.match(text)
    if match is None:
        # A bare value: a number when it looks like one, else a name.
        if re.fullmatch(r"\+?[0-9*#]+", text):
            return None, text
        return text, None
    name = (match.group("quoted") or match.group("bare") or "").strip() or None
    number = match.group("number").strip() or None
    return name, number


def parse_message_info(text: str) -> MessageInfo:
    """The ``[message]`` section of a msgNNNN.txt; raises MalformedMessage when unusable."""
    fields: dict[str, str] = {}
    section: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            continue
        if section != "message":
            continue
        key, sep, value = line.partition("=")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    msg_id = fields.get("msg_id", "")
    if not is_msg_id(msg_id):
        raise MalformedMessage(f"no usable msg_id: {msg_id!r}")
    try:
        origtime = int(fields.get("origtime", ""))
        received_at = datetime.fromtimestamp(origtime, UTC)
    except (ValueError, OverflowError, OSError):
        raise MalformedMessage(f"no usable origtime: {fields.get('origtime')!r}") from None
    try:
        duration = max(0, int(fields.get("duration", "0") or "0"))
    except ValueError:
        duration = 0
    caller_id = fields.get("callerid", "")
    name, number = split_caller_id(caller_id)
    return MessageInfo(
        msg_id=msg_id,
        caller_id=caller_id,
        caller_name=name,
        caller_number=number,
        duration=duration,
        received_at=received_at,
        urgent=fields.get("flag", "").lower() == "urgent",
        original_box=fields.get("origmailbox") or None,
    )


def box_dir(spool: Path, tenant_id: int, box_number: str) -> Path:
    """Where Asterisk keeps a box's folders (its voicemail context is ``t<tenant>``)."""
    if not box_number.isdigit():
        raise ValueError(f"not a box number: {box_number!r}")
    return spool / f"t{tenant_id}" / box_number


def read_folder(directory: Path, folder: str) -> list[StoredMessage]:
    """The messages of one folder, by index; unreadable or malformed ones are left out."""
    try:
        names = [entry.name for entry in (directory / folder).iterdir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    found: list[StoredMessage] = []
    for name in names:
        match = _MSG_FILE.match(name)
        if match is None:
            continue
        path = directory / folder / name
        try:
            info = parse_message_info(path.read_text(encoding="utf-8", errors="replace"))
        except (OSError, MalformedMessage):
            # Renumbered or removed by Asterisk since the listing, or not a message of ours.
            continue
        found.append(StoredMessage(info=info, folder=folder, index=int(match.group(1)), path=path))
    found.sort(key=lambda message: message.index)
    return found


def read_box(directory: Path, folders: tuple[str, ...] = FOLDERS) -> list[StoredMessage]:
    """Every message of a box, newest first (one msg_id once, should a move be under way)."""
    messages: dict[str, StoredMessage] = {}
    for folder in folders:
        for message in read_folder(directory, folder):
            messages.setdefault(message.msg_id, message)
    return sorted(messages.values(), key=lambda m: (m.info.received_at, m.msg_id), reverse=True)


def find_message(directory: Path, msg_id: str) -> StoredMessage | None:
    """One message of a box by its msg_id, in whichever folder it is now."""
    for folder in FOLDERS:
        for message in read_folder(directory, folder):
            if message.msg_id == msg_id:
                return message
    return None


@dataclass(frozen=True)
class VoicemailSpool:
    """Asterisk's voicemail spool as this host sees it; file work runs off the event loop."""

    root: Path

    def box_dir(self, tenant_id: int, box_number: str) -> Path:
        return box_dir(self.root, tenant_id, box_number)

    async def messages(
        self, tenant_id: int, box_number: str, folders: tuple[str, ...] = FOLDERS
    ) -> list[StoredMessage]:
        return await asyncio.to_thread(read_box, self.box_dir(tenant_id, box_number), folders)

    async def find(self, tenant_id: int, box_number: str, msg_id: str) -> StoredMessage | None:
        return await asyncio.to_thread(find_message, self.box_dir(tenant_id, box_number), msg_id)

    async def audio(self, message: StoredMessage) -> bytes | None:
        """The message's WAV, read whole (five minutes of 8 kHz PCM is under 5 MB); None
        when it is gone (removed, or renumbered since it was found)."""
        return await asyncio.to_thread(_read_audio, message)


def _read_audio(message: StoredMessage) -> bytes | None:
    # Renumbered between finding it and reading it, msgNNNN may be another message: its id is
    # checked before and after the audio is read.
    try:
        if not _still_there(message):
            return None
        audio = message.audio_path.read_bytes()
        return audio if _still_there(message) else None
    except OSError:
        return None


def _still_there(message: StoredMessage) -> bool:
    try:
        info = parse_message_info(message.path.read_text(encoding="utf-8", errors="replace"))
    except MalformedMessage:
        return False
    return info.msg_id == message.msg_id
