"""Writing generated files: atomically, only those whose content changed, readable by
Asterisk's group at most.

Generated files hold secrets (SIP HA1 digests, voicemail PINs, carrier passwords, the FastAGI
keys): each is written ``0640`` with the group Asterisk runs as (``GRAAM_ASTERISK_GROUP``), or
``0600`` when there is no such group, and the directories made for them ``0750`` / ``0700``.
Nobody else can read them.
"""

from __future__ import annotations

import grp
import os
import shutil
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from graam_pbx.settings import Settings

# Which Asterisk reload picks up a generated file, by its name.
RELOAD_OF = {
    "pjsip.conf": "res_pjsip",
    "trunks.conf": "res_pjsip",
    "extensions.conf": "dialplan",
    "queues.conf": "app_queue",
    "queuerules.conf": "app_queue",
    "voicemail.conf": "app_voicemail",
    "musiconhold.conf": "res_musiconhold",
}


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


def write_atomically(path: Path, data: bytes, access: FileAccess = PRIVATE) -> None:
    """Readers see the old file or the new one, never half of one; it has ``access`` from
    its first byte (made with it, before the rename).

    The temporary name is fixed per process: one applier writes a directory at a time, and
    a leftover from a crash is simply overwritten. No fsync: the files are derived data,
    rendered again at every start.
    """
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    try:
        fd = os.open(temp, flags, access.file_mode)
    except FileNotFoundError:
        make_directories(path.parent, access)
        fd = os.open(temp, flags, access.file_mode)
    try:
        with os.fdopen(fd, "wb") as out:
            # The mode asked of open() is reduced by the umask, and a leftover keeps its own.
            access.apply(out.fileno())
            out.write(data)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_changed(root: Path, files: Mapping[str, str], access: FileAccess = PRIVATE) -> set[str]:
    """Write the files that differ from what is on disk; the relative paths written.

    A file whose content is unchanged but whose modes or group are not ``access`` (written
    by an older version) gets them, and is not counted as written: nothing to reload.
    """
    changed = set()
    directories: set[Path] = set()
    for name, text in files.items():
        path = root / name
        data = text.encode()
        directories |= {root / parent for parent in Path(name).parents if parent != Path(".")}
        try:
            with path.open("rb") as current:
                same = current.read() == data
                if same and not access.applied(os.fstat(current.fileno())):
                    access.apply(current.fileno())
            if same:
                continue
        except FileNotFoundError:
            pass
        write_atomically(path, data, access)
        changed.add(name)
    for directory in directories:
        try:
            if not access.applied(directory.stat(), directory=True):
                access.apply(directory, directory=True)
        except FileNotFoundError:
            continue
    return changed


def remove_tenants(root: Path, tenant_ids: Iterable[int]) -> set[str]:
    """Delete the directories of tenants that no longer have configuration."""
    removed = set()
    for tenant_id in tenant_ids:
        directory = root / "tenants" / f"t{tenant_id}"
        if directory.is_dir():
            removed |= {f"tenants/t{tenant_id}/{p.name}" for p in directory.iterdir()}
            shutil.rmtree(directory)
    return removed


def remove_stale(root: Path, tenant_id: int, current: set[str]) -> set[str]:
    """Delete files of a tenant's directory that this version no longer generates."""
    directory = root / "tenants" / f"t{tenant_id}"
    stale = {p for p in directory.glob("*.conf") if p.name not in current}
    for path in stale:
        path.unlink()
    return {f"tenants/t{tenant_id}/{p.name}" for p in stale}


def existing_tenants(root: Path) -> set[int]:
    """Tenant ids that have a directory of generated files."""
    tenants = root / "tenants"
    if not tenants.is_dir():
        return set()
    return {
        int(p.name[1:]) for p in tenants.iterdir() if p.name[:1] == "t" and p.name[1:].isdigit()
    }


def remove_trunks(root: Path, keep: set[str]) -> set[str]:
    """Delete the files of trunks no longer configured (``keep``: relative paths to keep)."""
    removed = set()
    directory = root / "trunks"
    for path in directory.glob("*.conf") if directory.is_dir() else []:
        name = str(path.relative_to(root))
        if name not in keep:
            path.unlink()
            removed.add(name)
    return removed


def reloads_for(paths: Iterable[str]) -> set[str]:
    """The Asterisk reloads that written or removed files need."""
    reloads = set()
    for path in paths:
        name = Path(path).name
        if path.startswith("trunks/"):
            reloads.add("res_pjsip")
        elif name in RELOAD_OF:
            reloads.add(RELOAD_OF[name])
    return reloads
