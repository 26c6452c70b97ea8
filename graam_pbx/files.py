"""Files only their owner (and Asterisk's group, when named) may read.

Generated Asterisk files hold secrets (SIP HA1 digests, voicemail PINs, carrier passwords, the
FastAGI keys): each is written ``0640`` with the group Asterisk runs as
(``GRAAM_ASTERISK_GROUP``), or ``0600`` when there is no such group, and the directories made
for them ``0750`` / ``0700``. Nobody else can read them. Every file the control plane writes
for Asterisk goes through ``write_atomically`` here.
"""

from __future__ import annotations

import contextlib
import grp
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from graam_pbx.settings import Settings


@dataclass(frozen=True, slots=True)
class FileAccess:
    """Who may read written files: their owner (the control plane), and ``gid`` when set."""

    file_mode: int = 0o600
    dir_mode: int = 0o700
    gid: int | None = None

    def applied(self, info: os.stat_result, *, directory: bool = False) -> bool:
        """Whether a file (or directory) already has these modes and group."""
        mode = self.dir_mode if directory else self.file_mode
        return stat.S_IMODE(info.st_mode) == mode and self.gid in (None, info.st_gid)

    def apply(self, path: Path | int, *, directory: bool = False) -> None:
        """Give ``path`` (or an open descriptor) these modes and group."""
        if self.gid is not None:
            os.chown(path, -1, self.gid)
        os.chmod(path, self.dir_mode if directory else self.file_mode)


# Asterisk's configuration: no other user reads it (the default, and without a group).
PRIVATE = FileAccess()
# Tenants' prompts: sound files without secrets, played by Asterisk whatever its user.
PUBLIC = FileAccess(file_mode=0o644, dir_mode=0o755)
DEFAULT_ASTERISK_GROUP = "asterisk"


class AsteriskGroupError(ValueError):
    """The configured group cannot be given the generated files."""


def asterisk_access(group: str | None, *, required: bool = False) -> FileAccess:
    """Generated files ``0640`` with ``group`` (Asterisk's), or ``0600`` when ``group`` is
    empty or, unless ``required``, not a group of this host.

    The control plane must be able to give files that group: as root, or as a member of it.
    """
    if not group:
        return PRIVATE
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        if required:
            raise AsteriskGroupError(
                f"GRAAM_ASTERISK_GROUP names {group!r}, which is not a group of this host"
            ) from None
        return PRIVATE
    if os.geteuid() != 0 and gid != os.getegid() and gid not in os.getgroups():
        raise AsteriskGroupError(
            f"the control plane's user must be a member of group {group!r} to give Asterisk "
            "its generated files (or set GRAAM_ASTERISK_GROUP)"
        )
    return FileAccess(file_mode=0o640, dir_mode=0o750, gid=gid)


def configured_access(settings: Settings) -> FileAccess:
    """The access of generated files under ``settings``: a group named explicitly must
    exist; the default one (``asterisk``) is used when this host has it."""
    return asterisk_access(
        settings.asterisk_group, required="asterisk_group" in settings.model_fields_set
    )


def make_directories(directory: Path, access: FileAccess = PRIVATE) -> None:
    """Make ``directory`` and its missing parents with ``access``; existing ones are left."""
    missing = []
    for candidate in (directory, *directory.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    for candidate in reversed(missing):
        try:
            candidate.mkdir()
        except FileExistsError:
            continue  # made meanwhile (another writer): left as it is
        access.apply(candidate, directory=True)


def write_atomically(path: Path | str, data: bytes, access: FileAccess = PRIVATE) -> None:
    """Readers see the old file or the new one, never half of one; it has ``access`` from
    its first byte (made with it, before the rename).

    The temporary name is fixed per process: one applier writes a directory at a time, and
    a leftover from a crash is simply overwritten. No fsync: the files are derived data,
    rendered again at every start. Plain ``os`` calls: a full pass writes tens of thousands
    of files through here.
    """
    directory, name = os.path.split(os.fspath(path))
    temp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    try:
        fd = os.open(temp, flags, access.file_mode)
    except FileNotFoundError:
        make_directories(Path(directory), access)
        fd = os.open(temp, flags, access.file_mode)
    try:
        try:
            # The mode asked of open() is reduced by the umask, and a leftover keeps its own.
            access.apply(fd)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(temp, os.path.join(directory, name))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
