"""Generated files hold secrets: nobody but their owner (and Asterisk's group) reads them."""

from __future__ import annotations

import grp
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from graam_pbx.asterisk.render import environment, tenant_files
from graam_pbx.asterisk.shards import SHARD_THRESHOLD, ShardedWriter
from graam_pbx.asterisk.writer import write_changed
from graam_pbx.files import (
    PRIVATE,
    AsteriskGroupError,
    FileAccess,
    asterisk_access,
    configured_access,
    write_atomically,
)
from graam_pbx.settings import Settings
from tests.unit.asterisk.sample import sample_snapshot, sample_tenant

AGI = ("127.0.0.1", 4573)
KEY = b"k" * 32
# A group this process may give files: its own (any group, as root).
OWN_GROUP = FileAccess(file_mode=0o640, dir_mode=0o750, gid=os.getegid())


def walk(root: Path) -> Iterator[tuple[Path, os.stat_result]]:
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(directory) / name
            yield path, path.lstat()


def assert_private(root: Path, access: FileAccess) -> int:
    """Every file and directory under ``root`` has ``access`` exactly; the files counted."""
    files = 0
    for path, info in walk(root):
        directory = stat.S_ISDIR(info.st_mode)
        assert stat.S_IMODE(info.st_mode) & stat.S_IRWXO == 0, path
        assert access.applied(info, directory=directory), (path, oct(info.st_mode))
        files += not directory
    return files


@pytest.fixture(autouse=True)
def _permissive_umask() -> Iterator[None]:
    # The modes must not depend on the umask of whoever runs the control plane.
    previous = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.parametrize("access", [PRIVATE, OWN_GROUP], ids=["private", "group"])
@pytest.mark.parametrize("tenants", [3, SHARD_THRESHOLD + 5], ids=["here", "workers"])
async def test_written_tenants_are_readable_by_their_owner_and_group_only(
    tmp_path: Path, access: FileAccess, tenants: int
) -> None:
    snapshot = tuple(sample_tenant(tenant_id) for tenant_id in range(100, 100 + tenants))
    writer = ShardedWriter(agi_address=AGI, processes=2, agi_key=KEY, access=access)
    try:
        result = await writer.write(tmp_path / "graam", snapshot)
    finally:
        await writer.stop()
    assert not result.failed
    assert assert_private(tmp_path / "graam", access) == len(result.written)
    # What is in them: SIP digests, voicemail PINs, the FastAGI key.
    text = (tmp_path / "graam" / "tenants" / "t100" / "extensions.conf").read_text()
    assert "?key=" in text


def test_a_file_an_older_version_left_readable_is_closed_without_a_rewrite(
    tmp_path: Path,
) -> None:
    tenant = sample_snapshot().tenants[0]
    files = tenant_files(environment(), tenant, agi_address=AGI, agi_key=KEY)
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        path.parent.chmod(0o755)
        path.write_text(text)
        path.chmod(0o644)
    assert write_changed(tmp_path, files, OWN_GROUP) == set()  # nothing to reload
    assert assert_private(tmp_path / "tenants", OWN_GROUP) == len(files)


def test_a_leftover_temporary_file_does_not_lend_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "pjsip.conf"
    leftover = tmp_path / f".pjsip.conf.{os.getpid()}.tmp"
    leftover.write_text("old")
    leftover.chmod(0o666)
    write_atomically(path, b"password = x\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not leftover.exists()


def test_a_link_in_place_of_the_temporary_file_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("untouched")
    (tmp_path / f".pjsip.conf.{os.getpid()}.tmp").symlink_to(target)
    with pytest.raises(OSError):
        write_atomically(tmp_path / "pjsip.conf", b"password = x\n")
    assert target.read_text() == "untouched"


def test_the_asterisk_group_is_used_when_it_exists() -> None:
    own = grp.getgrgid(os.getegid()).gr_name
    assert asterisk_access(own) == OWN_GROUP
    assert asterisk_access("") == PRIVATE
    assert asterisk_access("no-such-group-here") == PRIVATE
    with pytest.raises(AsteriskGroupError, match="not a group"):
        asterisk_access("no-such-group-here", required=True)


def test_a_group_named_in_the_settings_must_exist() -> None:
    with pytest.raises(AsteriskGroupError):
        configured_access(Settings(asterisk_group="no-such-group-here"))
    assert configured_access(Settings(asterisk_group="")) == PRIVATE
    default = Settings()
    expected = asterisk_access("asterisk")  # this host's asterisk group, if it has one
    assert configured_access(default) == expected
