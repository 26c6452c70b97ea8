"""Which of the sandbox's Debian packages a cached root lacks, read from its dpkg status."""

from __future__ import annotations

from pathlib import Path

from graam_pbx.sandbox.asterisk import ROOT_PACKAGES, missing_packages

STATUS = """Package: asterisk
Status: install ok installed
Version: 1:22.10.1
Description: Open Source Private Branch Exchange (PBX)
 Asterisk is an Open Source PBX and telephony toolkit.
 Package: asterisk-moh-opsound-gsm

Package: asterisk-moh-opsound-gsm
Status: deinstall ok config-files
Version: 2.03-2
"""


def _root(tmp_path: Path, status: str) -> Path:
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text(status)
    return tmp_path


def test_hold_music_is_one_of_the_packages() -> None:
    assert "asterisk-moh-opsound-gsm" in ROOT_PACKAGES


def test_a_removed_package_or_a_name_in_a_description_is_missing(tmp_path: Path) -> None:
    assert missing_packages(_root(tmp_path, STATUS)) == ["asterisk-moh-opsound-gsm"]


def test_a_root_with_everything_installed_lacks_nothing(tmp_path: Path) -> None:
    status = "\n".join(f"Package: {name}\nStatus: install ok installed\n" for name in ROOT_PACKAGES)
    assert missing_packages(_root(tmp_path, status)) == []


def test_no_root_lacks_everything(tmp_path: Path) -> None:
    assert missing_packages(tmp_path / "absent") == list(ROOT_PACKAGES)
