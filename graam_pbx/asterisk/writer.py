"""Writing generated files: only those whose content changed, each atomically and readable
by Asterisk's group at most (``graam_pbx.files``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from graam_pbx.files import PRIVATE, FileAccess, write_atomically

# Asterisk's realtime connection (realtime.CONF_FILE), at the top of the generated directory.
REALTIME_CONF = "res_pgsql.conf"
# Which Asterisk reload picks up a generated file, by its name.
RELOAD_OF = {
    "pjsip.conf": "res_pjsip",
    "trunks.conf": "res_pjsip",
    "extensions.conf": "dialplan",
    "queues.conf": "app_queue",
    "queuerules.conf": "app_queue",
    "voicemail.conf": "app_voicemail",
    "musiconhold.conf": "res_musiconhold",
    "res_pgsql.conf": "res_config_pgsql",
}


def write_changed(root: Path, files: Mapping[str, str], access: FileAccess = PRIVATE) -> set[str]:
    """Write the files that differ from what is on disk; the relative paths written.

    A file whose content is unchanged but whose modes or group are not ``access`` (written
    by an older version) gets them, and is not counted as written: nothing to reload.
    Plain ``os`` calls and string paths: a full pass goes through here for every file.
    """
    changed = set()
    directories: set[str] = set()
    base = os.fspath(root)
    for name, text in files.items():
        path = os.path.join(base, name)
        data = text.encode()
        parent = os.path.dirname(name)
        while parent and parent not in directories:
            directories.add(parent)
            parent = os.path.dirname(parent)
        if _same(path, data, access):
            continue
        write_atomically(path, data, access)
        changed.add(name)
    for directory in directories:
        try:
            if not access.applied(os.stat(os.path.join(base, directory)), directory=True):
                access.apply(Path(base, directory), directory=True)
        except FileNotFoundError:
            continue
    return changed


def _same(path: str, data: bytes, access: FileAccess) -> bool:
    """Whether ``path`` holds ``data`` already (given ``access`` if it lacked it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        info = os.fstat(fd)
        if info.st_size != len(data) or _read_all(fd, len(data)) != data:
            return False
        if not access.applied(info):
            access.apply(fd)
        return True
    finally:
        os.close(fd)


def _read_all(fd: int, size: int) -> bytes:
    """The file's first ``size`` bytes, and one more if there are (it grew meanwhile)."""
    chunks = []
    left = size + 1
    while left > 0:
        chunk = os.read(fd, left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


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
    """The Asterisk reloads that written or removed files need.

    A new realtime connection (res_pgsql.conf: the node's first, or another database) is
    followed by one res_pjsip reload: PJSIP's qualify learns every device's AOR from the
    database it now reads (docs/realtime-sip.md). A device change never writes it.
    """
    reloads = set()
    for path in paths:
        name = Path(path).name
        if path.startswith("trunks/"):
            reloads.add("res_pjsip")
        elif name in RELOAD_OF:
            reloads.add(RELOAD_OF[name])
        if path == REALTIME_CONF:
            reloads.add("res_pjsip")
    return reloads
